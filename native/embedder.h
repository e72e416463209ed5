#pragma once
#include <napi.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "event_channel.h"
#include "exit_guard.h"
#include "model.h"

namespace gguf_serve {

// JS class Embedder: a context opened for embeddings (pooled, one vector per input; with rank
// pooling, the classification head's scores of each input, as a cross-encoder reranker gives). One native
// thread packs the inputs of every waiting call into shared batches: many sentences, from many
// requests, per decode.
class Embedder : public Napi::ObjectWrap<Embedder>, public EngineThread {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Embedder(const Napi::CallbackInfo& info);  // (model, options, onEvents)
  ~Embedder() override;

  struct Event {
    double id = 0;
    bool final = true;
    bool ok = true;
    std::string message;
    std::vector<std::vector<float>> vectors;
  };

 private:
  struct Job {
    double id = 0;
    std::vector<std::vector<llama_token>> inputs;
    std::vector<std::vector<float>> vectors;
    size_t next = 0;  // first input not yet put in a batch
    size_t done = 0;
  };

  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  void Shutdown();
  void StopThread() override;
  static Napi::Value ConvertEvents(Napi::Env env, std::vector<Event>& events);

  void Run();
  void EmbedBatch(std::vector<std::pair<Job*, size_t>>& members, std::vector<Event>* events);

  ModelHandle model_;
  llama_context* ctx_ = nullptr;
  llama_batch batch_{};
  int32_t context_size_ = 0, max_sequences_ = 0, dimensions_ = 0;
  bool normalize_ = true;
  const char* pooling_name_ = "mean";

  std::shared_ptr<EventChannel<Event>> channel_;
  std::thread thread_;
  std::mutex thread_mu_;  // serialises StopThread between dispose and process exit
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> jobs_;
  bool stopping_ = false;
  bool shut_down_ = false;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_hook_;
  bool has_cleanup_hook_ = false;
};

}  // namespace gguf_serve
