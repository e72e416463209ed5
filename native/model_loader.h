#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

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
  };

  // Returns { promise, abort }.
  static Napi::Value Start(Napi::Env env, const Options& options, Napi::Function on_progress);

 private:
  ModelLoader(Napi::Env env, Options options, Napi::Function on_progress);
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;
  static bool OnLlamaProgress(float progress, void* self);
  void Settle(Napi::Env env, bool ok, const std::string& message, const char* code);

  Options options_;
  Napi::Promise::Deferred deferred_;
  Napi::ThreadSafeFunction progress_;
  bool has_progress_ = false;
  float last_progress_ = -1.0f;
  std::shared_ptr<std::atomic<bool>> aborted_;
  ModelHandle handle_;
};

}  // namespace gguf_serve
