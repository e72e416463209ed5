#include "exit_guard.h"

#include <cstdlib>
#include <mutex>
#include <unordered_set>
#include <vector>

namespace gguf_serve {
namespace {

std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex();  // leaked on purpose: must outlive every destructor
  return *mu;
}

std::unordered_set<EngineThread*>& Registry() {
  static auto* set = new std::unordered_set<EngineThread*>();
  return *set;
}

}  // namespace

void StopAllEngineThreads() {
  std::vector<EngineThread*> threads;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    threads.assign(Registry().begin(), Registry().end());
  }
  for (EngineThread* t : threads) t->StopThread();
}

namespace {
void StopAllAtExit() { StopAllEngineThreads(); }
}  // namespace

void InstallExitGuard() {
  static bool installed = false;
  if (!installed) {
    installed = true;
    std::atexit(StopAllAtExit);
  }
}

void InstallExitGuardAfterCompute() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(StopAllAtExit); });
}

void RegisterEngineThread(EngineThread* thread) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().insert(thread);
}

void UnregisterEngineThread(EngineThread* thread) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().erase(thread);
}

}  // namespace gguf_serve
