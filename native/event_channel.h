#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "js_callback.h"

namespace gguf_serve {

// Carries results from an engine thread to JavaScript through ONE thread-safe function.
// Events of a decode step (or several, if JS is busy) are coalesced: at most one call is ever
// pending, so the queue is bounded and a JS callback serves many requests at once.
// The channel is shared (shared_ptr) with the queued call, so it outlives its owner safely.
// Event must have a `bool final` field: true when its request is over.
template <typename Event>
class EventChannel : public std::enable_shared_from_this<EventChannel<Event>> {
 public:
  using Convert = std::function<Napi::Value(Napi::Env, std::vector<Event>&)>;

  static std::shared_ptr<EventChannel> Create(Napi::Env env, Napi::Function on_events, const char* name,
                                              Convert convert) {
    auto channel = std::shared_ptr<EventChannel>(new EventChannel(std::move(convert)));
    channel->tsfn_ = Napi::ThreadSafeFunction::New(env, on_events, name, 0, 1);
    channel->tsfn_.Unref(env);  // only requests in flight keep the process alive
    return channel;
  }

  // Engine thread.
  void Post(std::vector<Event>&& events) {
    if (events.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (released_) return;
    for (auto& e : events) pending_.push_back(std::move(e));
    if (call_pending_) return;
    call_pending_ = true;
    std::shared_ptr<EventChannel> self = this->shared_from_this();
    tsfn_.NonBlockingCall([self](Napi::Env env, Napi::Function fn) { self->Deliver(env, fn); });
  }

  // JS thread: a request was submitted; keep the event loop alive until its final event.
  void Retain(Napi::Env env) {
    if (in_flight_++ == 0 && !released_) tsfn_.Ref(env);
  }

  // JS thread: nothing more will be posted.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    if (released_) return;
    released_ = true;
    tsfn_.Release();
  }

 private:
  explicit EventChannel(Convert convert) : convert_(std::move(convert)) {}

  void Deliver(Napi::Env env, Napi::Function fn) {
    std::vector<Event> events;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events.swap(pending_);
      call_pending_ = false;
    }
    size_t finished = 0;
    for (const auto& e : events) finished += e.final ? 1 : 0;
    if (finished > 0) {
      in_flight_ -= static_cast<int>(finished);
      if (in_flight_ <= 0) {
        in_flight_ = 0;
        std::lock_guard<std::mutex> lock(mu_);
        if (!released_) tsfn_.Unref(env);
      }
    }
    RunJsCallback(env, [&] { fn.Call({convert_(env, events)}); });
  }

  Convert convert_;
  Napi::ThreadSafeFunction tsfn_;
  std::mutex mu_;
  std::vector<Event> pending_;
  bool call_pending_ = false;
  bool released_ = false;
  int in_flight_ = 0;  // JS thread only
};

}  // namespace gguf_serve
