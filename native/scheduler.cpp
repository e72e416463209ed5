#include "scheduler.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "errors.h"
#include "js_options.h"
#include "log.h"
#include "sampling.h"  // llama.cpp's common/sampling.h
#include "speculative.h"  // llama.cpp's common/speculative.h
#include "vocab_text.h"

namespace gguf_serve {


Napi::Function Scheduler::Define(Napi::Env env) {
  return DefineClass(env, "Scheduler",
                     {
                         InstanceMethod<&Scheduler::Submit>("submit"),
                         InstanceMethod<&Scheduler::Cancel>("cancel"),
                         InstanceMethod<&Scheduler::Stats>("stats"),
                         InstanceMethod<&Scheduler::Dispose>("dispose"),
                     });
}

namespace {

// The KV cache types llama-server accepts (--cache-type-k/-v), by ggml's names.
ggml_type CacheType(Napi::Env env, Napi::Object o, const char* key) {
  if (!IsSet(o, key)) return GGML_TYPE_F16;
  static const ggml_type kTypes[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0,
                                     GGML_TYPE_Q4_1, GGML_TYPE_IQ4_NL, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1};
  const std::string name = o.Get(key).IsString() ? o.Get(key).As<Napi::String>().Utf8Value() : "";
  std::string names;
  for (ggml_type t : kTypes) {
    if (name == ggml_type_name(t)) return t;
    names += std::string(names.empty() ? "" : ", ") + ggml_type_name(t);
  }
  Throw(env, kCodeInvalidArgument, std::string(key) + " must be one of " + names);
  return GGML_TYPE_F16;
}

}  // namespace

Scheduler::Scheduler(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Scheduler>(info) {
  Napi::Env env = info.Env();
  Model* model = Model::FromValue(env, info.Length() > 0 ? info[0] : env.Undefined());
  if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsFunction()) {
    Throw(env, kCodeInvalidArgument, "Scheduler(model, options, onEvents)");
  }
  Napi::Object o = info[1].As<Napi::Object>();
  model_ = model->handle();
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  if (!llama_model_has_decoder(model_.get())) {
    Throw(env, kCodeInvalidArgument, "this model cannot generate text (it has no decoder): open it with createEmbedder()");
  }
  const int32_t trained = llama_model_n_ctx_train(model_.get());
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  parallel_ = IntOption(env, o, "parallel", 4, 1, 256);
  context_size_ = IntOption(env, o, "contextSize", std::min(trained > 0 ? trained : 4096, 4096), 8, 1 << 20);
  batch_size_ = IntOption(env, o, "batchSize", 512, 1, 1 << 16);
  const int32_t ubatch = IntOption(env, o, "ubatchSize", batch_size_, 1, batch_size_);
  prompt_chunk_ = IntOption(env, o, "promptChunk", 128, 0, 1 << 16);
  const int32_t threads = IntOption(env, o, "threads", static_cast<int32_t>(hw), 1, 1024);
  const int32_t threads_batch = IntOption(env, o, "threadsBatch", threads, 1, 1024);
  max_queue_ = IntOption(env, o, "maxQueue", 64, 0, 1 << 20);
  if (batch_size_ < parallel_) {
    // Each step may carry one token of every slot; llama.cpp sizes outputs by the batch.
    Throw(env, kCodeInvalidArgument, "batchSize (" + std::to_string(batch_size_) + ") must be at least parallel (" +
                                         std::to_string(parallel_) + ")");
  }
  n_vocab_ = llama_vocab_n_tokens(vocab);
  for (llama_token t = 0; t < n_vocab_; t++) {
    if (llama_vocab_is_eog(vocab, t)) eog_tokens_.push_back(t);
  }

  llama_context_params params = llama_context_default_params();
  params.n_ctx = static_cast<uint32_t>(context_size_) * parallel_;
  params.n_batch = batch_size_;
  params.n_ubatch = ubatch;
  params.n_seq_max = parallel_;
  params.n_threads = threads;
  params.n_threads_batch = threads_batch;
  // One KV stream per slot (as llama-server with --parallel): a token attends over its own
  // sequence's cells only, not over every slot's. kvUnified shares one buffer instead.
  params.kv_unified = BoolOption(o, "kvUnified", false);
  kv_unified_ = params.kv_unified;
  const int32_t cache_ram_mib = IntOption(env, o, "cacheRamMiB", 0, 0, 1 << 24);
  if (cache_ram_mib > 0) ram_cache_ = std::make_unique<HostPromptCache>(static_cast<size_t>(cache_ram_mib) << 20);
  params.type_k = CacheType(env, o, "cacheTypeK");
  params.type_v = CacheType(env, o, "cacheTypeV");
  cache_type_k_ = ggml_type_name(params.type_k);
  cache_type_v_ = ggml_type_name(params.type_v);
  params.no_perf = true;
  params.embeddings = false;
  params.abort_callback = &Scheduler::AbortDecode;
  params.abort_callback_data = this;
  TakeRecentErrors();
  ctx_ = llama_init_from_model(model_.get(), params);
  if (!ctx_) {
    std::string reason = TakeRecentErrors();
    Throw(env, kCodeEngine, "cannot create a context of " + std::to_string(params.n_ctx) + " tokens" +
                                (reason.empty() ? "" : ": " + reason));
  }
  batch_ = llama_batch_init(batch_size_, 0, 1);
  try {
    InitSpeculation(env, o, params);
  } catch (...) {
    ReleaseContexts();  // the destructor of a constructor that throws never runs
    throw;
  }
  slots_.resize(parallel_);
  for (int32_t i = 0; i < parallel_; i++) slots_[i].seq = i;

  channel_ = EventChannel<Event>::Create(env, info[2].As<Napi::Function>(), "gguf-serve:scheduler",
                                         &Scheduler::ConvertEvents);
  // At environment teardown (process exit, worker end) stop the thread before V8 goes away.
  cleanup_hook_ = env.AddCleanupHook(std::function<void()>([this]() {
    has_cleanup_hook_ = false;
    Shutdown();
  }));
  has_cleanup_hook_ = true;
  thread_ = std::thread(&Scheduler::Run, this);
  RegisterEngineThread(this);
}

Scheduler::~Scheduler() {
  if (has_cleanup_hook_) cleanup_hook_.Remove(Env());
  Shutdown();
}

bool Scheduler::AbortDecode(void* self) { return static_cast<Scheduler*>(self)->abort_decode_.load(); }

std::unique_ptr<Scheduler::Request> Scheduler::ParseRequest(Napi::Env env, Napi::Value id, Napi::Value prompt,
                                                            Napi::Value options) {
  if (!id.IsNumber() || !options.IsObject()) Throw(env, kCodeInvalidArgument, "submit(id, promptTokens, options)");
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  auto req = std::make_unique<Request>();
  req->id = id.As<Napi::Number>().DoubleValue();
  req->prompt = TokensFromValue(env, prompt, vocab, "prompt");
  if (req->prompt.empty()) Throw(env, kCodeInvalidArgument, "the prompt is empty: at least one token is needed");
  if (req->prompt.size() >= static_cast<size_t>(context_size_)) {
    Throw(env, kCodeContextLength, "the prompt has " + std::to_string(req->prompt.size()) +
                                       " tokens but a slot's context holds " + std::to_string(context_size_) +
                                       " (prompt plus at least one generated token)");
  }
  Napi::Object o = options.As<Napi::Object>();
  req->max_tokens = IntOption(env, o, "maxTokens", -1, -1, 1 << 30);
  if (o.Has("stop") && o.Get("stop").IsArray()) {
    Napi::Array stops = o.Get("stop").As<Napi::Array>();
    for (uint32_t i = 0; i < stops.Length(); i++) {
      if (!stops.Get(i).IsString()) Throw(env, kCodeInvalidArgument, "stop must be a list of strings");
      req->stops.push_back(stops.Get(i).As<Napi::String>());
    }
  }
  req->render_special = BoolOption(o, "renderSpecial", false);
  req->cache_prompt = BoolOption(o, "cachePrompt", true);
  req->speculative = BoolOption(o, "speculative", true);
  if (BoolOption(o, "logprobs", false)) req->top_logprobs = IntOption(env, o, "topLogprobs", 0, 0, 20);
  req->prompt_logprobs = req->top_logprobs >= 0 && BoolOption(o, "promptLogprobs", false);
  if (req->prompt_logprobs) req->cache_prompt = false;  // every prompt token's logits are needed
  req->sampler = BuildSampler(env, o, model_.get(), context_size_, eog_tokens_);
  // The prompt is history for the repetition penalties and DRY (not for the grammar), as in
  // llama-server and text-generation-webui: a token the prompt already used counts as seen.
  for (llama_token t : req->prompt) common_sampler_accept(req->sampler.chain.get(), t, false);
  req->submitted = Clock::now();
  return req;
}

Napi::Value Scheduler::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (shut_down_) Throw(env, kCodeDisposed, "the scheduler has been disposed");
  if (info.Length() < 3) Throw(env, kCodeInvalidArgument, "submit(id, promptTokens, options)");
  // (ids[], prompt, options[]): choices of one prompt, queued at once so the first (the leader)
  // never starts before the others can wait for its cells, and all or none are accepted.
  std::vector<std::unique_ptr<Request>> group;
  if (info[0].IsArray() && info[2].IsArray()) {
    Napi::Array ids = info[0].As<Napi::Array>();
    Napi::Array options = info[2].As<Napi::Array>();
    if (ids.Length() == 0 || ids.Length() != options.Length()) {
      Throw(env, kCodeInvalidArgument, "submit(ids, promptTokens, options): one options object per id");
    }
    for (uint32_t i = 0; i < ids.Length(); i++) {
      group.push_back(ParseRequest(env, ids.Get(i), info[1], options.Get(i)));
      if (i > 0) group.back()->share_with = group.front()->id;
    }
  } else {
    group.push_back(ParseRequest(env, info[0], info[1], info[2]));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ + static_cast<int>(group.size()) > parallel_ + max_queue_) {
      Throw(env, kCodeOverloaded, "overloaded: all " + std::to_string(parallel_) + " slots are busy and " +
                                      std::to_string(max_queue_) + " requests are already waiting");
    }
    for (auto& req : group) {
      in_flight_++;
      stat_queued_++;
      queue_.push_back(std::move(req));
    }
  }
  for (size_t i = 0; i < group.size(); i++) channel_->Retain(env);
  cv_.notify_one();
  return env.Undefined();
}

Napi::Value Scheduler::Cancel(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber() && !shut_down_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancels_.insert(info[0].As<Napi::Number>().DoubleValue());
    }
    cv_.notify_one();
  }
  return info.Env().Undefined();
}

Napi::Value Scheduler::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("parallel", parallel_);
  out.Set("contextSize", context_size_);
  out.Set("activeSlots", stat_active_.load());
  out.Set("queued", stat_queued_.load());
  out.Set("decodeSteps", Napi::Number::New(env, static_cast<double>(stat_decodes_.load())));
  out.Set("promptTokensDecoded", Napi::Number::New(env, static_cast<double>(stat_prompt_tokens_.load())));
  out.Set("sharedPrefixTokens", Napi::Number::New(env, static_cast<double>(stat_shared_prefix_tokens_.load())));
  Napi::Object ram = Napi::Object::New(env);
  ram.Set("enabled", ram_cache_ != nullptr);
  ram.Set("bytes", Napi::Number::New(env, static_cast<double>(stat_ram_bytes_.load())));
  ram.Set("entries", Napi::Number::New(env, static_cast<double>(stat_ram_entries_.load())));
  ram.Set("sharedPrefixes", Napi::Number::New(env, static_cast<double>(stat_ram_prefixes_.load())));
  ram.Set("hits", Napi::Number::New(env, static_cast<double>(stat_ram_hits_.load())));
  ram.Set("tokens", Napi::Number::New(env, static_cast<double>(stat_ram_tokens_.load())));
  out.Set("hostCache", ram);
  Napi::Object spec = Napi::Object::New(env);
  spec.Set("enabled", spec_ != nullptr);
  if (spec_) spec.Set("type", spec_type_);
  spec.Set("drafted", Napi::Number::New(env, static_cast<double>(stat_drafted_.load())));
  spec.Set("accepted", Napi::Number::New(env, static_cast<double>(stat_draft_accepted_.load())));
  out.Set("speculation", spec);
  out.Set("cacheTypeK", cache_type_k_);
  out.Set("cacheTypeV", cache_type_v_);
  std::vector<SlotView> views;
  {
    std::lock_guard<std::mutex> lock(views_mu_);
    views = views_;
  }
  views.resize(parallel_);  // before the first step: all idle
  Napi::Array slots = Napi::Array::New(env, views.size());
  int64_t cells = 0;
  for (size_t i = 0; i < views.size(); i++) {
    const SlotView& v = views[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", static_cast<double>(i));
    o.Set("state", v.state);
    if (v.request >= 0) o.Set("request", v.request);
    o.Set("promptTokens", v.prompt_tokens);
    o.Set("promptTokensDone", v.prompt_done);
    o.Set("cachedTokens", v.cached);
    o.Set("generated", v.generated);
    o.Set("maxTokens", v.max_tokens);
    o.Set("kvCells", v.cells);
    slots.Set(static_cast<uint32_t>(i), o);
    cells += v.cells;
  }
  out.Set("slots", slots);
  // Cells held by the slots' sequences (a cell copied to n > 1 choices counts once per choice).
  out.Set("kvCellsUsed", Napi::Number::New(env, static_cast<double>(cells)));
  return out;
}

Napi::Value Scheduler::Dispose(const Napi::CallbackInfo& info) {
  if (has_cleanup_hook_) {
    cleanup_hook_.Remove(info.Env());
    has_cleanup_hook_ = false;
  }
  Shutdown();
  return info.Env().Undefined();
}

void Scheduler::StopThread() {
  std::lock_guard<std::mutex> guard(thread_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  abort_decode_ = true;
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  StopThread();
  UnregisterEngineThread(this);
  if (channel_) channel_->Release();
  queue_.clear();
  slots_.clear();
  ReleaseContexts();
  model_.reset();
}

namespace {
Napi::Array LogprobArray(Napi::Env env, const std::vector<Scheduler::TokenLogprob>& list) {
  Napi::Array lps = Napi::Array::New(env, list.size());
  for (size_t j = 0; j < list.size(); j++) {
    const Scheduler::TokenLogprob& lp = list[j];
    Napi::Object l = Napi::Object::New(env);
    l.Set("token", lp.token);
    l.Set("bytes", Napi::Buffer<char>::Copy(env, lp.text.data(), lp.text.size()));
    l.Set("logprob", lp.logprob);
    Napi::Array top = Napi::Array::New(env, lp.top.size());
    for (size_t k = 0; k < lp.top.size(); k++) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("token", lp.top[k].token);
      t.Set("bytes", Napi::Buffer<char>::Copy(env, lp.top_text[k].data(), lp.top_text[k].size()));
      t.Set("logprob", lp.top[k].logprob);
      top.Set(static_cast<uint32_t>(k), t);
    }
    l.Set("top", top);
    lps.Set(static_cast<uint32_t>(j), l);
  }
  return lps;
}
}  // namespace

Napi::Value Scheduler::ConvertEvents(Napi::Env env, std::vector<Event>& events) {
  Napi::Array out = Napi::Array::New(env, events.size());
  auto token_array = [env](const std::vector<llama_token>& tokens) {
    Napi::Array a = Napi::Array::New(env, tokens.size());
    for (size_t i = 0; i < tokens.size(); i++) a.Set(static_cast<uint32_t>(i), tokens[i]);
    return a;
  };
  for (size_t i = 0; i < events.size(); i++) {
    Event& e = events[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", e.id);
    switch (e.kind) {
      case Event::Kind::Chunk: {
        o.Set("type", "chunk");
        o.Set("text", Napi::String::New(env, e.text));
        o.Set("tokens", token_array(e.tokens));
        if (!e.logprobs.empty()) o.Set("logprobs", LogprobArray(env, e.logprobs));
        if (!e.prompt_logprobs.empty()) o.Set("promptLogprobs", LogprobArray(env, e.prompt_logprobs));
        break;
      }
      case Event::Kind::Done:
        o.Set("type", "done");
        o.Set("finishReason", e.finish_reason);
        o.Set("stopIndex", e.stop_index);
        o.Set("promptTokens", e.prompt_tokens);
        o.Set("completionTokens", e.completion_tokens);
        o.Set("cachedTokens", e.cached_tokens);
        o.Set("draftTokens", e.draft_tokens);
        o.Set("draftAccepted", e.draft_accepted);
        o.Set("queueMs", e.queue_ms);
        o.Set("promptMs", e.prompt_ms);
        o.Set("generationMs", e.generation_ms);
        break;
      case Event::Kind::Error:
        o.Set("type", "error");
        o.Set("message", e.message);
        break;
    }
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

}  // namespace gguf_serve
