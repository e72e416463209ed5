#pragma once

// process.exit() runs C++ static destructors (ggml's among them) without tearing down the
// Node environment first, so cleanup hooks do not run and an engine thread could still be inside
// llama_decode while ggml's globals are destroyed. Every engine thread registers here; one atexit
// handler, installed after ggml's statics exist, stops them all first.
namespace gguf_serve {

class EngineThread {
 public:
  virtual ~EngineThread() = default;
  // Stops the thread and waits for it; safe to call more than once and from any thread.
  virtual void StopThread() = 0;
};

void InstallExitGuard();
// Stops every engine thread of the process now. JavaScript calls it from the main thread's
// process 'exit' event, which comes before any static destructor: an atexit handler alone
// runs after the destructors of ggml globals that a decode still in progress (a warm-up at
// start-up) creates, too late.
void StopAllEngineThreads();
// ggml builds some globals lazily during the first compute; handlers registered before them run
// after their destructors. Engine threads call this after a decode: it registers once more.
void InstallExitGuardAfterCompute();
void RegisterEngineThread(EngineThread* thread);
void UnregisterEngineThread(EngineThread* thread);

}  // namespace gguf_serve
