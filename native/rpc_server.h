#pragma once
#include <napi.h>

// `gguf-serve rpc-server`: ggml's RPC server, the worker side of `serve --rpc`.
namespace gguf_serve {

// rpc.startServer({ endpoint, threads, cacheDir? }) -> { devices, stopped }: serves on its own
// thread. `stopped` settles only when ggml's server returns (it could not listen); the server has
// no stop call, so the process ends with rpc.exitNow when it is told to stop.
Napi::Value StartRpcServerJs(const Napi::CallbackInfo& info);

}  // namespace gguf_serve
