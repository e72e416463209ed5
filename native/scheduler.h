#pragma once
#include <napi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "event_channel.h"
#include "exit_guard.h"
#include "host_prompt_cache.h"
#include "model.h"
#include "sampler.h"
#include "text_stream.h"

struct common_speculative;

namespace gguf_serve {

// JS class Scheduler: one llama.cpp context with N sequence slots, served by one native thread
// that puts every active sequence into a single llama_batch per step (continuous batching), the
// way llama.cpp's server does. Requests beyond the free slots wait in a bounded FIFO queue.
class Scheduler : public Napi::ObjectWrap<Scheduler>, public EngineThread {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Scheduler(const Napi::CallbackInfo& info);  // (model, options, onEvents)
  ~Scheduler() override;

  using Clock = std::chrono::steady_clock;

  struct TokenLogprob {
    llama_token token;
    std::string text;
    float logprob;
    std::vector<TokenProb> top;
    std::vector<std::string> top_text;
  };

  struct Event {
    enum class Kind { Chunk, Done, Error };
    double id = 0;
    Kind kind = Kind::Chunk;
    bool final = false;
    std::string text;
    std::vector<llama_token> tokens;
    std::vector<TokenLogprob> logprobs;
    std::vector<TokenLogprob> prompt_logprobs;  // of prompt tokens 1.., once, in the first chunk
    const char* finish_reason = "";
    int stop_index = -1;
    int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0, draft_tokens = 0, draft_accepted = 0;
    double queue_ms = 0, prompt_ms = 0, generation_ms = 0;
    std::string message;
  };

 private:
  struct Request {
    double id = 0;
    std::vector<llama_token> prompt;
    RequestSampler sampler;
    int32_t max_tokens = -1;
    std::vector<std::string> stops;
    bool render_special = false;
    bool cache_prompt = true;   // may start from a slot's cached prefix
    int32_t top_logprobs = -1;  // -1: no logprobs
    bool prompt_logprobs = false;  // also of each prompt token after the first (echo)
    bool speculative = true;       // draft with the server's drafter, if it has one
    double share_with = 0;  // the id of a request with the same prompt whose KV cells this one copies
    Clock::time_point submitted;
  };

  struct Slot {
    llama_seq_id seq = 0;
    std::unique_ptr<Request> req;
    std::vector<llama_token> cache;  // tokens whose KV cells this sequence holds
    // Leading cells computed as a cold prompt evaluation computes them: prompt tokens decoded
    // several to a step, never a generated token or a prompt's last token (decoded alone).
    // Only these are reused, so a request's text never depends on what ran before.
    size_t exact = 0;
    // Waiting for another request's prompt cells: `leader`'s first `shared_prefix` tokens. The
    // whole prompt for a choice of the same prompt (n > 1), else a prefix it shares with a prompt
    // still being evaluated (requests that arrive together with one system prompt evaluate it once).
    bool awaiting_share = false;
    double leader = 0;
    size_t shared_prefix = 0;
    bool copy_pending = false;    // its cells were copied from another stream; the data lands at the next decode
    size_t prompt_done = 0;          // prompt tokens in the KV cache
    size_t cached = 0;               // of those, reused from the previous request
    llama_token pending = 0;         // sampled, to be decoded next step
    bool has_pending = false;
    int32_t batch_index = -1;        // row of this step's logits, -1 if none
    std::vector<llama_token> draft;  // tokens drafted after the pending one, decoded with it to be verified
    std::vector<int32_t> draft_rows;
    int32_t drafted = 0, draft_accepted = 0;  // this request's
    int32_t draft_limit = 0;  // most tokens it may draft next: follows how many of its drafts were accepted
    // With a draft model: the leading tokens of `cache` whose cells the draft context holds for
    // this sequence (it follows the target's cells, or catches up before drafting).
    size_t draft_cells = 0;
    int32_t generated = 0;
    uint64_t last_used = 0;
    uint64_t assigned_order = 0;
    TextStream text;
    std::string out_text;  // emitted text and tokens not yet posted
    std::vector<llama_token> out_tokens;
    std::vector<TokenLogprob> out_logprobs;
    std::vector<TokenLogprob> out_prompt_logprobs;
    std::vector<std::pair<int32_t, size_t>> prompt_rows;  // this step's (batch row, prompt position) with logits
    Clock::time_point assigned, first_token;
  };

  // JS thread
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::unique_ptr<Request> ParseRequest(Napi::Env env, Napi::Value id, Napi::Value prompt, Napi::Value options);
  void Shutdown();
  void StopThread() override;
  static Napi::Value ConvertEvents(Napi::Env env, std::vector<Event>& events);

  // engine thread (scheduler_loop.cpp)
  void Run();
  void WarmUp();
  void TakeCancellationsAndAssign(std::vector<Event>* events);
  void Assign(std::unique_ptr<Request> req, std::vector<Event>* events);
  bool BuildBatch();
  void FailBatch(int code, std::vector<Event>* events);
  void FailSlot(Slot& slot, const std::string& message, std::vector<Event>* events);
  void SampleSlots(std::vector<Event>* events);
  bool AcceptToken(Slot& slot, llama_token token, int32_t row, std::vector<Event>* events);
  // speculative decoding (scheduler_speculation.cpp)
  void InitSpeculation(Napi::Env env, Napi::Object options, const llama_context_params& target);
  bool MaySpeculate(const Slot& slot) const;
  void DraftSlots();
  void AddDrafts(Slot& slot, int32_t room);
  std::vector<llama_token> VerifyDrafts(Slot& slot);
  // the draft model's context, kept in step with the target's cells (scheduler_draft_model.cpp)
  void InitDraftContext(Napi::Env env, Napi::Object options, const llama_context_params& target);
  void MirrorStepToDraft();
  bool CatchUpDraft(Slot& slot);
  bool RemoveCells(Slot& slot, size_t from);
  void CopyCells(const Slot& from, Slot& to, llama_pos p0, llama_pos p1);
  void ReleaseContexts();
  std::string DescribeVocabMismatch() const;
  void CollectPromptLogprobs();
  void SharePrompts();
  void ReleaseFollowers(double leader_id);
  TokenLogprob MakeLogprob(const Request& req, int32_t row, llama_token token) const;
  void EmitChunk(Slot& slot, std::vector<Event>* events);
  void Finish(Slot& slot, const char* reason, int stop_index, std::vector<Event>* events);
  void ClearSlotCache(Slot& slot);
  void TrimSlotCache(Slot& slot, size_t* keep);
  void StartFromLongestPrefix(Slot& slot, const std::vector<llama_token>& prompt, size_t* keep);
  const Slot* FindDonor(const Slot& slot, const std::vector<llama_token>& prompt, size_t* prefix) const;
  const Slot* FindPrefixLeader(const Slot& slot, const std::vector<llama_token>& prompt, size_t keep, size_t* prefix) const;
  void CopyPrefix(Slot& slot, const Slot& donor, size_t prefix);
  void SaveToHostCache(Slot& slot, size_t keep);
  void PublishSlotViews();
  static bool AbortDecode(void* self);

  // What each slot is doing, copied by the engine thread after every step for stats() (/slots).
  struct SlotView {
    const char* state = "idle";  // idle | waiting (for a shared prompt) | prompt | generating
    double request = -1;
    int32_t prompt_tokens = 0, prompt_done = 0, cached = 0, generated = 0, max_tokens = -1, cells = 0;
  };

  ModelHandle model_;
  llama_context* ctx_ = nullptr;
  llama_batch batch_{};
  int32_t parallel_ = 0, context_size_ = 0, batch_size_ = 0, prompt_chunk_ = 0, max_queue_ = 0, n_vocab_ = 0;
  std::vector<llama_token> eog_tokens_;
  std::string cache_type_k_, cache_type_v_;
  std::vector<Slot> slots_;
  uint64_t use_counter_ = 0;
  int active_slots_ = 0;  // engine thread only

  std::shared_ptr<EventChannel<Event>> channel_;
  std::thread thread_;
  std::mutex thread_mu_;  // serialises StopThread between dispose and process exit
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> queue_;
  std::unordered_set<double> cancels_;
  int in_flight_ = 0;  // queued + in slots, under mu_
  bool stopping_ = false;
  std::atomic<bool> abort_decode_{false};
  std::atomic<int> stat_active_{0}, stat_queued_{0};
  std::atomic<int64_t> stat_decodes_{0};
  std::atomic<int64_t> stat_prompt_tokens_{0};  // prompt tokens decoded (shared prompts count once)
  std::atomic<int64_t> stat_shared_prefix_tokens_{0};  // prompt tokens copied from another slot's cells
  std::atomic<int64_t> stat_ram_hits_{0}, stat_ram_tokens_{0};  // prompts started from host memory, their tokens
  std::unique_ptr<HostPromptCache> ram_cache_;  // null: off
  common_speculative* spec_ = nullptr;          // llama.cpp's drafter (n-gram or draft model); null: off
  int32_t spec_max_ = 0;
  std::string spec_type_;                       // its name, for stats()
  ModelHandle draft_model_;                     // the draft model, with one sequence per slot in draft_ctx_
  llama_context* draft_ctx_ = nullptr;
  llama_batch draft_batch_{};
  std::atomic<int64_t> stat_drafted_{0}, stat_draft_accepted_{0};
  std::atomic<int64_t> stat_ram_bytes_{0}, stat_ram_entries_{0}, stat_ram_prefixes_{0};
  bool kv_unified_ = false;
  std::mutex views_mu_;
  std::vector<SlotView> views_;
  bool shut_down_ = false;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_hook_;
  bool has_cleanup_hook_ = false;
};

}  // namespace gguf_serve
