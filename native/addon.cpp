// Registers the engine's classes. Everything else (HTTP, OpenAI shapes, prompts) is TypeScript.
#include <napi.h>

#include "addon_data.h"
#include "backends.h"
#include "chat_output_parser.h"
#include "chat_templates.h"
#include "embedder.h"
#include "transcriber.h"
#include "errors.h"
#include "exit_guard.h"
#include "log.h"
#include "model.h"
#include "rpc_client.h"
#include "scheduler.h"

namespace gguf_serve {
namespace {

Napi::Value SetLogLevelJs(const Napi::CallbackInfo& info) {
  LogLevel level;
  if (info.Length() < 1 || !info[0].IsString() || !ParseLogLevel(info[0].As<Napi::String>(), &level)) {
    Throw(info.Env(), kCodeInvalidArgument, "log level must be one of silent, error, warn, info, debug");
  }
  SetLogLevel(level);
  return info.Env().Undefined();
}

Napi::Value StopEngineThreadsJs(const Napi::CallbackInfo& info) {
  StopAllEngineThreads();
  return info.Env().Undefined();
}

Napi::Value SystemInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("llamaSystemInfo", llama_print_system_info());
  // llama_supports_gpu_offload() is true in every build with the RPC backend: ask for a local GPU.
  out.Set("gpuOffload", !LocalGpuDevices().empty());
  out.Set("mmap", llama_supports_mmap());
  // Which CPU kernels run: the variant a CPU-variants build picked for this CPU (null: compiled in).
  std::string variant = CpuVariant();
  out.Set("cpuVariant", variant.empty() ? env.Null() : Napi::String::New(env, variant));
  std::string library = CpuBackendLibrary();
  out.Set("cpuBackendLibrary", library.empty() ? env.Null() : Napi::String::New(env, library));
  Napi::Array devices = Napi::Array::New(env);
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ggml_backend_dev_name(dev));
    d.Set("description", ggml_backend_dev_description(dev));
    devices.Set(static_cast<uint32_t>(i), d);
  }
  out.Set("devices", devices);
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static bool backend_ready = false;  // process-wide, shared by every environment
  static std::string backends_missing;
  if (!backend_ready) {
    InstallLogger();
    // Before anything asks ggml for a device: a CPU-variants build has none until they load.
    backends_missing = LoadBackends();
    llama_backend_init();
    InstallExitGuard();
    backend_ready = true;
  }
  // require() fails with the reason, so the loader passes this binary over and says why.
  if (!backends_missing.empty()) Throw(env, kCodeEngine, backends_missing);
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function model = Model::Define(env);
  data->model_constructor = Napi::Persistent(model);
  exports.Set("Model", model);
  exports.Set("Scheduler", Scheduler::Define(env));
  exports.Set("Embedder", Embedder::Define(env));
  exports.Set("Transcriber", Transcriber::Define(env));
  exports.Set("ChatTemplates", ChatTemplates::Define(env));
  exports.Set("ChatOutputParser", ChatOutputParser::Define(env));
  exports.Set("jsonSchemaToGrammar", Napi::Function::New(env, JsonSchemaToGrammarJs));
  exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevelJs));
  exports.Set("systemInfo", Napi::Function::New(env, SystemInfoJs));
  exports.Set("stopEngineThreads", Napi::Function::New(env, StopEngineThreadsJs));
  exports.Set("rpc", DefineRpc(env));
  return exports;
}

}  // namespace gguf_serve

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return gguf_serve::Init(env, exports); }

NODE_API_MODULE(gguf_serve, InitAddon)
