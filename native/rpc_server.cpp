#include "rpc_server.h"

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "backends.h"
#include "errors.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "js_callback.h"
#include "rpc_client.h"

namespace gguf_serve {
namespace {

// What upstream's rpc-server serves: this machine's GPUs, else its CPU.
std::vector<ggml_backend_dev_t> ServedDevices() {
  std::vector<ggml_backend_dev_t> devices = LocalGpuDevices();
  if (devices.empty()) {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu) devices.push_back(cpu);
  }
  return devices;
}

}  // namespace

Napi::Value StartRpcServerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) Throw(env, kCodeInvalidArgument, "rpc.startServer: options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  if (!o.Get("endpoint").IsString()) Throw(env, kCodeInvalidArgument, "rpc.startServer: endpoint must be a host:port string");
  if (!o.Get("threads").IsNumber()) Throw(env, kCodeInvalidArgument, "rpc.startServer: threads must be a number");
  std::string endpoint = o.Get("endpoint").As<Napi::String>();
  size_t threads = o.Get("threads").As<Napi::Number>().Uint32Value();
  bool has_cache = o.Get("cacheDir").IsString();
  std::string cache_dir = has_cache ? std::string(o.Get("cacheDir").As<Napi::String>()) : "";

  auto start_server = BackendFunction<decltype(&ggml_backend_rpc_start_server)>("RPC", "ggml_backend_rpc_start_server");
  if (!start_server) Throw(env, kCodeEngine, "this build has no ggml RPC backend (libggml-rpc.so missing beside the addon?)");
  std::vector<ggml_backend_dev_t> devices = ServedDevices();
  if (devices.empty()) Throw(env, kCodeEngine, "no device to serve: this build found neither a GPU nor a CPU backend");
  Napi::Array list = Napi::Array::New(env, devices.size());
  for (size_t i = 0; i < devices.size(); i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ggml_backend_dev_name(devices[i]));
    d.Set("description", ggml_backend_dev_description(devices[i]));
    list.Set(static_cast<uint32_t>(i), d);
  }

  // ggml prints its banner and each connection with printf: line by line through a pipe too.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  // Referenced: the server keeps the process alive, as a listening socket would.
  Napi::ThreadSafeFunction returned = Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); }),
      "gguf-serve:rpc-server", 0, 1);
  std::thread([=]() mutable {
    start_server(endpoint.c_str(), has_cache ? cache_dir.c_str() : nullptr, threads, devices.size(), devices.data());
    // It returns only when it could not start (ggml printed why on stderr).
    returned.BlockingCall([deferred, endpoint](Napi::Env env, Napi::Function) {
      RunJsCallback(env, [&] {
        deferred->Reject(MakeError(env, kCodeEngine, "ggml's RPC server could not serve on " + endpoint).Value());
      });
    });
    returned.Release();
  }).detach();

  Napi::Object out = Napi::Object::New(env);
  out.Set("devices", list);
  out.Set("stopped", deferred->Promise());
  return out;
}

}  // namespace gguf_serve
