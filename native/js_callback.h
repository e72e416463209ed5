#pragma once
#include <napi.h>

namespace gguf_serve {

// Runs JavaScript-touching code that native code starts on its own (a thread-safe-function call,
// an async worker's completion). Its environment may be terminating (a worker being ended): then
// every Node-API call fails, node-addon-api turns each failure into a C++ exception, and one that
// escapes a C callback aborts the whole process. Here a real JavaScript exception is thrown on
// to JavaScript (an uncaught exception, as for any callback) and a failure because the
// environment is going away is dropped: nothing escapes.
template <typename Body>
void RunJsCallback(napi_env env, Body&& body) noexcept {
  try {
    body();
  } catch (const Napi::Error& e) {
    try {
      napi_value value = e.Value();
      if (value != nullptr) napi_throw(env, value);  // status ignored: a dying environment refuses it
    } catch (...) {
    }
  } catch (...) {
  }
}

}  // namespace gguf_serve
