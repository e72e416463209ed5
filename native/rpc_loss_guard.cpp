#include "rpc_loss_guard.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "errors.h"
#include "ggml.h"
#include "js_callback.h"

namespace gguf_serve {
namespace {

std::mutex g_mu;
Napi::ThreadSafeFunction g_listener;
bool g_has_listener = false;
ggml_abort_callback_t g_previous = nullptr;
std::thread::id g_js_thread;

// The messages of ggml-rpc's client when a worker stops answering (ggml-rpc.cpp): a reply that
// never came or came broken, and a connection or handshake that failed.
bool IsRpcConnectionFailure(const char* message) {
  return std::strstr(message, "Remote RPC server crashed or returned malformed response") != nullptr ||
         std::strstr(message, "Failed to connect to ") != nullptr ||
         std::strstr(message, "RPC handshake failed for ") != nullptr;
}

void OnGgmlAbort(const char* message) {
  const bool rpc = IsRpcConnectionFailure(message);
  if (!rpc || std::this_thread::get_id() == g_js_thread) {
    // Parking the JS thread would freeze the server with no way to answer: let ggml abort.
    if (rpc) std::fprintf(stderr, "gguf-serve: lost an RPC worker during a call on the JavaScript thread; ggml-rpc ends the process\n");
    if (g_previous) {
      g_previous(message);
    } else {
      std::fprintf(stderr, "%s\n", message);
    }
    return;  // ggml_abort() calls abort() next
  }
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_has_listener) {
      std::string text(message);
      g_listener.NonBlockingCall([text](Napi::Env env, Napi::Function fn) {
        RunJsCallback(env, [&] { fn.Call({Napi::String::New(env, text)}); });
      });
    } else {
      std::fprintf(stderr, "gguf-serve: %s\n", message);
    }
  }
  // Returning would abort the process. This thread is ggml-rpc's dispatcher of the lost worker
  // (or a load waiting on it): nothing it could do next is safe, so it waits here until the exit.
  for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
}

}  // namespace

void InstallRpcLossGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_js_thread = std::this_thread::get_id();
    g_previous = ggml_set_abort_callback(OnGgmlAbort);
  });
}

Napi::Value WatchRpcLossJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) Throw(env, kCodeInvalidArgument, "rpc.watchLoss: callback must be a function");
  InstallRpcLossGuard();
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_has_listener) g_listener.Release();
  g_listener = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "gguf-serve:rpc-loss", 0, 1);
  g_listener.Unref(env);  // watching must not keep the process alive
  g_has_listener = true;
  return env.Undefined();
}

Napi::Value ExitNowJs(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

}  // namespace gguf_serve
