#!/usr/bin/env bash
# Packs what a bare GPU machine (no network, no Node) needs to build and test gguf-serve into
# .devbundle/ (gitignored): this machine's node binary, node_modules (without the TypeScript
# compiler: lib/ travels compiled), the vendored llama.cpp source and the shared test models.
# Run after `npm install` here; then bench/gpu/check.sh runs there (see bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.devbundle
rm -rf "$out" && mkdir -p "$out"
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$out/node.xz"
tar -cf - --exclude=node_modules/@typescript --exclude=node_modules/.cache node_modules | xz -T0 -6 > "$out/node_modules.tar.xz"
# tools/ui stays: the tools' CMake adds it even with the web UI off.
tar -C vendor -cf - --exclude=llama.cpp/.git --exclude=llama.cpp/models --exclude=llama.cpp/docs \
  --exclude=llama.cpp/tests --exclude=llama.cpp/benches llama.cpp | xz -T0 -6 > "$out/llama.cpp.tar.xz"
cp -r "${GGUF_SERVE_SHARED_MODELS:-../shared/models}" "$out/shared-models"
du -sh "$out"/*
