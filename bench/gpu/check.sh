#!/usr/bin/env bash
# On a lent GPU machine (bare: no Node, no network), from the repository root with .devbundle/
# (bench/gpu/pack.sh) and lib/ carried:  bench/gpu/check.sh build test bench
#   build  CUDA build of the addon plus llama-server / llama-bench from the same tree
#          (GGUF_SERVE_GPU=cuda GGUF_SERVE_PEERS=1), and the benchmark models generated meanwhile
#   package  instead of build: the CUDA prebuild (npm run prebuild; --gpu-only when a CPU prebuild
#          was carried in prebuilds/) with the peers from its tree, then test/package-install.test.js
#          with GGUF_SERVE_TEST_GPU=1: the packed tarball installed without a compiler, its CUDA
#          build passed over (with the reason logged) while CUDA is hidden and used while it is not.
#          test and bench after it load that prebuilt binary (the loader tries prebuilds/*/gpu first)
#   test   the whole test suite with every model offloaded (GGUF_SERVE_GPU_LAYERS=-1)
#   bench  the load harness against the CUDA peers, all layers on the GPU
# Logs and results go to $OUT (the device tool brings them back), a summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=.devbundle
OUT=${OUT:-/tmp/gguf-serve-gpu}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
note() { echo "$*" | tee -a "$summary"; }
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }

if ! command -v node >/dev/null; then
  mkdir -p /tmp/gguf-serve-node && unxz_to "$B/node.xz" > /tmp/gguf-serve-node/node && chmod +x /tmp/gguf-serve-node/node
  export PATH=/tmp/gguf-serve-node:$PATH
fi
[ -d node_modules/tap ] || unxz_to "$B/node_modules.tar.xz" | tar -xf -
[ -f vendor/llama.cpp/CMakeLists.txt ] || unxz_to "$B/llama.cpp.tar.xz" | tar -C vendor -xf -
export GGUF_SERVE_SHARED_MODELS=${GGUF_SERVE_SHARED_MODELS:-$PWD/$B/shared-models}
export GGUF_SERVE_GPU=${GGUF_SERVE_GPU:-cuda}  # vulkan: the same stages on a Vulkan device
command -v nvcc >/dev/null || export PATH=$PATH:/usr/local/cuda/bin
note "== $(date -u +%FT%TZ) $(node --version) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1) $(nproc) cores"

models() {
  node -e "const m=require('./lib/gguf/llama-model.js');(async()=>{for(const [shape,type] of [['llama-110m','q8_0'],['llama-1b','q4_0']])console.log(await m.ensureBenchModel({shape,type}))})()"
}

for stage in "$@"; do
  t0=$(date +%s)
  case $stage in
    build)
      models > "$OUT/models.log" 2>&1 &
      gen=$!
      GGUF_SERVE_PEERS=1 node scripts/build-native.js > "$OUT/build.log" 2>&1
      rc=$?
      wait $gen; note "models: rc $? $(tr '\n' ' ' < "$OUT/models.log")"
      note "build: rc $rc in $(( $(date +%s) - t0 )) s; $(ls -la build/Release/gguf_serve.node build/bin/llama-server build/bin/llama-bench 2>&1 | awk '{print $5, $NF}' | tr '\n' ' ')"
      [ $rc -eq 0 ] || { tail -40 "$OUT/build.log"; exit 1; }
      node -e "const b=require('./lib/engine/binding.js').loadBinding();const i=b.systemInfo();console.log('gpuOffload',i.gpuOffload,JSON.stringify(i.devices))" 2>&1 | tee -a "$summary"
      ;;
    package)
      models > "$OUT/models.log" 2>&1 &
      gen=$!
      only=; ls prebuilds/*-*/*.node >/dev/null 2>&1 && only=--gpu-only
      # The GPU at hand only (90 = H100/H200), where a release builds ggml's whole list: minutes saved.
      GGUF_SERVE_CUDA_ARCHITECTURES=${GGUF_SERVE_CUDA_ARCHITECTURES:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)} \
        GGUF_SERVE_PEERS=1 node scripts/prebuild.js $only > "$OUT/prebuild.log" 2>&1
      rc=$?
      wait $gen; note "models: rc $? $(tr '\n' ' ' < "$OUT/models.log")"
      note "prebuild ${only:-(cpu and cuda)}: rc $rc in $(( $(date +%s) - t0 )) s; $(du -sh prebuilds | cut -f1); $(ls -la prebuilds/*/gpu/ 2>&1 | awk '{print $5, $NF}' | tr '\n' ' ')"
      [ $rc -eq 0 ] || { tail -40 "$OUT/prebuild.log"; exit 1; }
      GGUF_SERVE_TEST_GPU=1 node_modules/.bin/tap test/package-install.test.js > "$OUT/package-test.log" 2>&1
      note "package test: rc $? in $(( $(date +%s) - t0 )) s; $(grep -aE '^# \{ total' "$OUT/package-test.log" | tail -1); $(grep -aE '# (tarball|install)' "$OUT/package-test.log" | tr -s ' ' | tr '\n' ' ')"
      { grep -aE '^ +not ok' "$OUT/package-test.log" || true; } | head -20 | tee -a "$summary"
      ;;
    test)
      GGUF_SERVE_GPU_LAYERS=-1 node_modules/.bin/tap > "$OUT/test.log" 2>&1
      rc=$?
      note "test: rc $rc in $(( $(date +%s) - t0 )) s; $(grep -E '^# \{ total' "$OUT/test.log" | tail -1)"
      { grep -E '^not ok|^ +not ok' "$OUT/test.log" || true; } | head -40 | tee -a "$summary" || true
      ;;
    bench)
      for spec in "llama-110m q8_0" "llama-1b q4_0"; do
        set -- $spec
        node lib/cli.js bench --shape "$1" --type "$2" --gpu-layers=-1 --concurrency 1,8,32 --requests 32 --rounds 2 --reps 3 \
          --peer-server build/bin/llama-server --peer-bench build/bin/llama-bench --json "$OUT/bench-$1-$2.json" --no-svg \
          > "$OUT/bench-$1-$2.log" 2>&1
        note "bench $1 $2: rc $? in $(( $(date +%s) - t0 )) s"
        tail -32 "$OUT/bench-$1-$2.log" | tee -a "$summary"
      done
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
