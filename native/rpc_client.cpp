#include "rpc_client.h"

#include <cstring>

#include "backends.h"
#include "errors.h"
#include "ggml-rpc.h"
#include "js_callback.h"
#include "rpc_loss_guard.h"
#include "rpc_server.h"
#include "transport.h"  // RPC_CONN_CAPS_SIZE: the size of the HELLO message the JS probe sends

namespace gguf_serve {

std::vector<ggml_backend_dev_t> RpcWorkerDevices(const std::string& endpoint) {
  std::vector<ggml_backend_dev_t> out;
  auto add_server = BackendFunction<decltype(&ggml_backend_rpc_add_server)>("RPC", "ggml_backend_rpc_add_server");
  ggml_backend_reg_t reg = add_server ? add_server(endpoint.c_str()) : nullptr;
  if (!reg) return out;
  for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); i++) out.push_back(ggml_backend_reg_dev_get(reg, i));
  return out;
}

std::vector<ggml_backend_dev_t> LocalGpuDevices() {
  std::vector<ggml_backend_dev_t> gpus, igpus;
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) gpus.push_back(dev);
    if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_IGPU) igpus.push_back(dev);
  }
  return gpus.empty() ? igpus : gpus;
}

namespace {

struct DeviceInfo {
  std::string name, description;
  size_t free = 0, total = 0;
};

struct WorkerInfo {
  std::string endpoint;
  std::vector<DeviceInfo> devices;
};

// Adds workers off the JS thread: each is a network round trip, and one that dies meanwhile leaves
// this thread waiting for good (rpc_loss_guard.h), which must not be the JS thread.
class AddServersWorker : public Napi::AsyncWorker {
 public:
  AddServersWorker(Napi::Env env, std::vector<std::string> endpoints)
      : Napi::AsyncWorker(env, "gguf-serve:rpc-add-servers"),
        endpoints_(std::move(endpoints)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  void Execute() override {
    for (const std::string& endpoint : endpoints_) {
      WorkerInfo worker{endpoint, {}};
      for (ggml_backend_dev_t dev : RpcWorkerDevices(endpoint)) {
        DeviceInfo d{ggml_backend_dev_name(dev), ggml_backend_dev_description(dev)};
        ggml_backend_dev_memory(dev, &d.free, &d.total);
        worker.devices.push_back(d);
      }
      if (worker.devices.empty()) {
        SetError("RPC worker " + endpoint + " has no device to compute on");
        return;
      }
      workers_.push_back(std::move(worker));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, workers_.size());
    for (size_t i = 0; i < workers_.size(); i++) {
      Napi::Object w = Napi::Object::New(env);
      w.Set("endpoint", workers_[i].endpoint);
      Napi::Array devices = Napi::Array::New(env, workers_[i].devices.size());
      for (size_t j = 0; j < workers_[i].devices.size(); j++) {
        const DeviceInfo& d = workers_[i].devices[j];
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", d.name);
        o.Set("description", d.description);
        o.Set("memoryFree", static_cast<double>(d.free));
        o.Set("memoryTotal", static_cast<double>(d.total));
        devices.Set(static_cast<uint32_t>(j), o);
      }
      w.Set("devices", devices);
      out.Set(static_cast<uint32_t>(i), w);
    }
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& error) override {
    deferred_.Reject(MakeError(Env(), kCodeEngine, error.Message()).Value());
  }

  std::vector<std::string> endpoints_;
  std::vector<WorkerInfo> workers_;
  Napi::Promise::Deferred deferred_;
};

// Asks each worker for its memory over the connection the models use (not a new one: a worker
// queues new connections while it serves us). A worker gone makes ggml-rpc fail on that
// connection, which the loss guard reports; this thread then waits for good (see rpc.ping).
class PingWorker : public Napi::AsyncWorker {
 public:
  PingWorker(Napi::Env env, std::vector<std::string> endpoints)
      : Napi::AsyncWorker(env, "gguf-serve:rpc-ping"), endpoints_(std::move(endpoints)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  void Execute() override {
    for (const std::string& endpoint : endpoints_) {
      std::vector<ggml_backend_dev_t> devices = RpcWorkerDevices(endpoint);
      size_t free = 0, total = 0;
      if (!devices.empty()) ggml_backend_dev_memory(devices[0], &free, &total);
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

  std::vector<std::string> endpoints_;
  Napi::Promise::Deferred deferred_;
};

std::vector<std::string> EndpointsArg(const Napi::CallbackInfo& info, const char* what) {
  Napi::Env env = info.Env();
  const std::string usage = std::string(what) + ": endpoints must be an array of host:port strings";
  if (info.Length() < 1 || !info[0].IsArray()) Throw(env, kCodeInvalidArgument, usage);
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<std::string> endpoints;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) Throw(env, kCodeInvalidArgument, usage);
    endpoints.push_back(v.As<Napi::String>());
  }
  return endpoints;
}

Napi::Value PingJs(const Napi::CallbackInfo& info) {
  auto* worker = new PingWorker(info.Env(), EndpointsArg(info, "rpc.ping"));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value AddServersJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> endpoints = EndpointsArg(info, "rpc.addServers");
  // Before the first connection: a worker lost from here on parks the thread instead of aborting.
  InstallRpcLossGuard();
  auto* worker = new AddServersWorker(env, std::move(endpoints));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value LocalGpuCountJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(LocalGpuDevices().size()));
}

}  // namespace

Napi::Object DefineRpc(Napi::Env env) {
  Napi::Object rpc = Napi::Object::New(env);
  rpc.Set("addServers", Napi::Function::New(env, AddServersJs));
  rpc.Set("ping", Napi::Function::New(env, PingJs));
  rpc.Set("localGpuCount", Napi::Function::New(env, LocalGpuCountJs));
  rpc.Set("watchLoss", Napi::Function::New(env, WatchRpcLossJs));
  rpc.Set("exitNow", Napi::Function::New(env, ExitNowJs));
  rpc.Set("startServer", Napi::Function::New(env, StartRpcServerJs));
  Napi::Object protocol = Napi::Object::New(env);
  protocol.Set("major", RPC_PROTO_MAJOR_VERSION);
  protocol.Set("minor", RPC_PROTO_MINOR_VERSION);
  protocol.Set("patch", RPC_PROTO_PATCH_VERSION);
  protocol.Set("helloCapsBytes", static_cast<double>(RPC_CONN_CAPS_SIZE));
  rpc.Set("protocol", protocol);
  return rpc;
}

}  // namespace gguf_serve
