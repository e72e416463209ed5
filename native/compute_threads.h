#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>

// ggml's CPU backend computes a graph with an OpenMP team of the calling thread; the team's
// worker threads then stay parked in that thread's pool. libgomp counts the parked workers of
// every pool, and once they outnumber the CPUs it cuts the spin of every barrier to ~100
// iterations: each step of a graph then sleeps and wakes on a futex, which made a small
// embedding decode up to twice as slow on a 2-core machine as soon as both the chat scheduler
// and the embedder had computed once (two pools, though only one was ever busy). An engine
// thread that has been idle a while therefore gives its workers back, so only engines at work
// count; an engine that is busy keeps them (no thread start per decode).
namespace gguf_serve {

// How long an engine thread waits for work before it releases its compute workers.
constexpr std::chrono::milliseconds kComputeThreadsIdleRelease{200};

// Ends the calling thread's OpenMP worker threads (a later decode starts new ones). Nothing
// happens without libgomp (other OpenMP runtimes pause every team of the process, not one).
void ReleaseComputeThreads();

// cv.wait(lock, ready), releasing the caller's compute workers once it has waited
// kComputeThreadsIdleRelease without work.
template <typename Ready>
void WaitForWork(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Ready ready) {
  if (cv.wait_for(lock, kComputeThreadsIdleRelease, ready)) return;
  lock.unlock();  // joining the workers takes a moment: submitters are not held up meanwhile
  ReleaseComputeThreads();
  lock.lock();
  cv.wait(lock, ready);
}

}  // namespace gguf_serve
