#pragma once
#include <napi.h>

// What happens when an RPC worker goes away. ggml-rpc cannot report a lost connection: its
// dispatcher thread calls GGML_ABORT (RPC_STATUS_ASSERT in ggml-rpc.cpp), which ends the process,
// and whichever thread waits for that reply (the scheduler inside llama_decode) waits for good.
// Without patching ggml, the best a server can do is to stay up for everything else: the guard
// (a ggml abort callback) recognises ggml-rpc's connection failures off the JS thread, tells
// JavaScript which failure it was, and parks that thread forever instead of returning into
// abort(). The engine threads waiting on it never return: JavaScript fails their requests, never
// joins or frees them, and ends the process with ExitNow (no exit handlers that would join them).
// Any other abort, and an RPC failure on the JS thread itself, still ends the process as before.
namespace gguf_serve {

// Installs the ggml abort callback once (it chains to a callback installed before it).
void InstallRpcLossGuard();

// rpc.watchLoss(callback(message)): the one listener told about each lost connection (ggml's message).
Napi::Value WatchRpcLossJs(const Napi::CallbackInfo& info);

// rpc.exitNow(code): _Exit(code) after flushing stdio. No atexit handlers, no static destructors:
// they would join (or pull ggml's globals from under) threads that ggml-rpc left waiting forever.
Napi::Value ExitNowJs(const Napi::CallbackInfo& info);

}  // namespace gguf_serve
