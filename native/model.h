#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llama.h"

namespace gguf_serve {

// Shared by the Model and every Scheduler/Embedder made from it: the weights are freed when the
// last holder lets go, so disposing a Model never pulls memory from under a running context.
using ModelHandle = std::shared_ptr<llama_model>;

// JS class Model: a loaded GGUF file (weights or vocabulary only), its metadata and tokenizer.
class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object NewInstance(Napi::Env env, ModelHandle handle, const std::string& path);
  // The live Model behind a JS value, or a JS exception when it is not one or is disposed.
  static Model* FromValue(Napi::Env env, Napi::Value value);

  explicit Model(const Napi::CallbackInfo& info);
  ~Model() override;

  const ModelHandle& handle() const { return handle_; }
  const llama_vocab* vocab() const { return llama_model_get_vocab(handle_.get()); }

 private:
  static Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Metadata(const Napi::CallbackInfo& info);
  Napi::Value Tokenize(const Napi::CallbackInfo& info);
  Napi::Value Detokenize(const Napi::CallbackInfo& info);
  Napi::Value TokenPiece(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  llama_model* Checked(Napi::Env env) const;

  ModelHandle handle_;
  std::string path_;
  // Frees the weights at environment teardown (process exit, worker end) if not disposed.
  Napi::Env::CleanupHook<std::function<void()>> cleanup_hook_;
  bool has_cleanup_hook_ = false;
};

// Metadata value of a GGUF key as llama.cpp renders it, or "" when absent.
std::string MetaString(const llama_model* model, const char* key, bool* found = nullptr);

// Token ids from a JS array or Int32Array, each checked against the vocabulary.
std::vector<llama_token> TokensFromValue(Napi::Env env, Napi::Value value, const llama_vocab* vocab, const char* what);

}  // namespace gguf_serve
