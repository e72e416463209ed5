#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "model.h"

namespace gguf_serve {

// Loads a GGUF file on a libuv worker thread. Progress reaches JS through a thread-safe
// function; abort() flips a flag that the progress callback turns into llama.cpp's own abort.
class ModelLoader : public Napi::AsyncWorker {
 public:
  struct Options {
    std::string path;
    bool vocab_only = false;
    int gpu_layers = 0;
    // `serve --rpc`: the layers offloaded (gpu_layers) go to these ggml RPC workers' devices, then
    // to this machine's GPUs when local_gpus is set, split by tensor_split (one share per device,
    // in that order). Empty: llama.cpp's default devices.
    std::vector<std::string> rpc_servers;
    bool local_gpus = false;
    std::vector<float> tensor_split;

    // Model.load's options object: { vocabOnly, gpuLayers, rpcServers, localGpus, tensorSplit }.
    static Options FromJs(Napi::Env env, const std::string& path, Napi::Value value);
  };

  // Returns { promise, abort }.
  static Napi::Value Start(Napi::Env env, const Options& options, Napi::Function on_progress);

 private:
  ModelLoader(Napi::Env env, Options options, Napi::Function on_progress);
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;
  static bool OnLlamaProgress(float progress, void* self);
  // The devices and split of an RPC load into params (pointers into devices_ and split_); false
  // with SetError() when the split does not match the devices.
  bool PlaceOnDevices(llama_model_params& params);
  void Settle(Napi::Env env, bool ok, const std::string& message, const char* code);

  Options options_;
  Napi::Promise::Deferred deferred_;
  Napi::ThreadSafeFunction progress_;
  bool has_progress_ = false;
  float last_progress_ = -1.0f;
  std::shared_ptr<std::atomic<bool>> aborted_;
  ModelHandle handle_;
  std::vector<ggml_backend_dev_t> devices_;
  std::vector<float> split_;
};

}  // namespace gguf_serve
