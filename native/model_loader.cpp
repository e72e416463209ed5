#include "model_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "errors.h"
#include "js_callback.h"
#include "log.h"
#include "rpc_client.h"

namespace gguf_serve {

ModelLoader::ModelLoader(Napi::Env env, Options options, Napi::Function on_progress)
    : Napi::AsyncWorker(env, "gguf-serve:model-load"),
      options_(std::move(options)),
      deferred_(Napi::Promise::Deferred::New(env)),
      aborted_(std::make_shared<std::atomic<bool>>(false)) {
  if (!on_progress.IsEmpty()) {
    progress_ = Napi::ThreadSafeFunction::New(env, on_progress, "gguf-serve:model-load-progress", 0, 1);
    has_progress_ = true;
  }
}

Napi::Value ModelLoader::Start(Napi::Env env, const Options& options, Napi::Function on_progress) {
  auto* worker = new ModelLoader(env, options, on_progress);
  Napi::Object result = Napi::Object::New(env);
  result.Set("promise", worker->deferred_.Promise());
  std::shared_ptr<std::atomic<bool>> aborted = worker->aborted_;
  result.Set("abort", Napi::Function::New(env, [aborted](const Napi::CallbackInfo& info) {
               aborted->store(true);
               return info.Env().Undefined();
             }));
  worker->Queue();
  return result;
}

ModelLoader::Options ModelLoader::Options::FromJs(Napi::Env env, const std::string& path, Napi::Value value) {
  Options options;
  options.path = path;
  if (!value.IsObject()) return options;
  Napi::Object o = value.As<Napi::Object>();
  if (o.Has("vocabOnly")) options.vocab_only = o.Get("vocabOnly").ToBoolean();
  if (o.Has("gpuLayers") && o.Get("gpuLayers").IsNumber()) options.gpu_layers = o.Get("gpuLayers").As<Napi::Number>();
  if (o.Get("rpcServers").IsArray()) {
    Napi::Array list = o.Get("rpcServers").As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      if (!list.Get(i).IsString()) Throw(env, kCodeInvalidArgument, "rpcServers must be host:port strings");
      options.rpc_servers.push_back(list.Get(i).As<Napi::String>());
    }
  }
  options.local_gpus = o.Get("localGpus").ToBoolean();
  if (o.Get("tensorSplit").IsArray()) {
    Napi::Array list = o.Get("tensorSplit").As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      if (!list.Get(i).IsNumber()) Throw(env, kCodeInvalidArgument, "tensorSplit must be numbers");
      options.tensor_split.push_back(list.Get(i).As<Napi::Number>().FloatValue());
    }
  }
  return options;
}

bool ModelLoader::PlaceOnDevices(llama_model_params& params) {
  if (options_.rpc_servers.empty()) return true;
  for (const std::string& endpoint : options_.rpc_servers) {
    std::vector<ggml_backend_dev_t> devs = RpcWorkerDevices(endpoint);
    devices_.insert(devices_.end(), devs.begin(), devs.end());
  }
  if (options_.local_gpus) {
    std::vector<ggml_backend_dev_t> gpus = LocalGpuDevices();
    devices_.insert(devices_.end(), gpus.begin(), gpus.end());
  }
  if (devices_.size() > llama_max_devices()) {
    SetError("the RPC workers and local GPUs have " + std::to_string(devices_.size()) + " devices, more than llama.cpp's " +
             std::to_string(llama_max_devices()));
    return false;
  }
  if (!options_.tensor_split.empty() && options_.tensor_split.size() != devices_.size()) {
    SetError("the tensor split has " + std::to_string(options_.tensor_split.size()) + " shares for " +
             std::to_string(devices_.size()) + " devices");
    return false;
  }
  split_.assign(llama_max_devices(), 0.0f);
  std::copy(options_.tensor_split.begin(), options_.tensor_split.end(), split_.begin());
  devices_.push_back(nullptr);  // llama.cpp reads the list up to a null device
  params.devices = devices_.data();
  params.tensor_split = split_.data();
  return true;
}

bool ModelLoader::OnLlamaProgress(float progress, void* user_data) {
  auto* self = static_cast<ModelLoader*>(user_data);
  if (self->aborted_->load()) return false;
  // Report whole percents only: llama.cpp calls this once per tensor.
  if (self->has_progress_ && (progress >= 1.0f || progress - self->last_progress_ >= 0.01f)) {
    self->last_progress_ = progress;
    self->progress_.NonBlockingCall([progress](Napi::Env env, Napi::Function fn) {
      RunJsCallback(env, [&] { fn.Call({Napi::Number::New(env, progress)}); });
    });
  }
  return true;
}

void ModelLoader::Execute() {
  const std::string& path = options_.path;
  // Check the file ourselves first: the clearest messages, and nothing odd reaches llama.cpp.
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    SetError("cannot open model file '" + path + "': " + std::strerror(errno));
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    SetError("model path '" + path + "' is a directory, not a GGUF file");
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    SetError("model path '" + path + "' is not a regular file");
    return;
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    SetError("cannot open model file '" + path + "': " + std::strerror(errno));
    return;
  }
  char magic[4] = {0, 0, 0, 0};
  size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (got != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
    SetError("'" + path + "' is not a GGUF file (it does not start with the GGUF magic bytes)");
    return;
  }

  llama_model_params params = llama_model_default_params();
  params.vocab_only = options_.vocab_only;
  params.n_gpu_layers = options_.gpu_layers;
  params.progress_callback = &ModelLoader::OnLlamaProgress;
  params.progress_callback_user_data = this;
  if (!PlaceOnDevices(params)) return;
  TakeRecentErrors();
  llama_model* model = llama_model_load_from_file(path.c_str(), params);
  if (!model) {
    if (aborted_->load()) {
      SetError("model load aborted");
      return;
    }
    std::string reason = TakeRecentErrors();
    SetError("failed to load model '" + path + "'" + (reason.empty() ? "" : ": " + reason));
    return;
  }
  handle_ = ModelHandle(model, llama_model_free);
}

void ModelLoader::Settle(Napi::Env env, bool ok, const std::string& message, const char* code) {
  // Settle through the progress queue when there is one, so every progress report reaches JS
  // before the promise settles.
  ModelHandle handle = ok ? handle_ : nullptr;
  std::string path = options_.path;
  Napi::Promise::Deferred deferred = deferred_;
  auto settle = [deferred, handle, path, ok, message, code](Napi::Env env) {
    RunJsCallback(env, [&] {
      if (!ok) {
        deferred.Reject(MakeError(env, code, message).Value());
        return;
      }
      try {
        deferred.Resolve(Model::NewInstance(env, handle, path));
      } catch (const Napi::Error& e) {
        deferred.Reject(e.Value());
      }
    });
  };
  if (has_progress_) {
    has_progress_ = false;
    napi_status queued = progress_.NonBlockingCall([settle](Napi::Env env, Napi::Function) { settle(env); });
    progress_.Release();
    if (queued == napi_ok) return;
  }
  settle(env);
}

void ModelLoader::OnOK() {
  if (aborted_->load()) {
    // The load won the race against abort(): honour the abort anyway.
    handle_.reset();
    Settle(Env(), false, "model load aborted", kCodeAborted);
    return;
  }
  Settle(Env(), true, "", nullptr);
}

void ModelLoader::OnError(const Napi::Error& error) {
  Settle(Env(), false, error.Message(), aborted_->load() ? kCodeAborted : kCodeModelLoad);
}

}  // namespace gguf_serve
