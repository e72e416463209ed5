#pragma once
#include <napi.h>
#include <string>

// Every error that reaches JavaScript carries a stable `code` the TypeScript layer maps to its
// error classes (src/engine/errors.ts); messages say what went wrong in the user's terms.
namespace gguf_serve {

inline constexpr const char* kCodeInvalidArgument = "ERR_GGUF_INVALID_ARGUMENT";
inline constexpr const char* kCodeModelLoad = "ERR_GGUF_MODEL_LOAD";
inline constexpr const char* kCodeAborted = "ABORT_ERR";
inline constexpr const char* kCodeDisposed = "ERR_GGUF_DISPOSED";
inline constexpr const char* kCodeOverloaded = "ERR_GGUF_OVERLOADED";
inline constexpr const char* kCodeContextLength = "ERR_GGUF_CONTEXT_LENGTH";
inline constexpr const char* kCodeEngine = "ERR_GGUF_ENGINE";

inline Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (std::string(code) == kCodeAborted) err.Set("name", Napi::String::New(env, "AbortError"));
  return err;
}

[[noreturn]] inline void Throw(Napi::Env env, const char* code, const std::string& message) {
  throw MakeError(env, code, message);
}

}  // namespace gguf_serve
