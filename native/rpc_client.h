#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "ggml-backend.h"

// The client side of ggml's RPC backend (`serve --rpc`): workers are added once, and their
// devices handed to model loads explicitly. They are not registered in ggml's device list, so a
// model loaded without them (the embedding model) never lands on a worker by default.
namespace gguf_serve {

// A worker's devices, in its order; connects on first use (ggml caches the worker by endpoint).
// Call only for a worker known to answer: ggml-rpc aborts the process when it cannot connect.
std::vector<ggml_backend_dev_t> RpcWorkerDevices(const std::string& endpoint);

// This machine's GPUs (integrated ones when there is no discrete GPU); none on a CPU-only build.
std::vector<ggml_backend_dev_t> LocalGpuDevices();

// The `rpc` object of the addon: addServers, watchLoss, exitNow, startServer, protocol.
Napi::Object DefineRpc(Napi::Env env);

}  // namespace gguf_serve
