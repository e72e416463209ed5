#include "embedder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "compute_threads.h"
#include "errors.h"
#include "js_options.h"
#include "log.h"

namespace gguf_serve {

namespace {

struct PoolingChoice {
  enum llama_pooling_type type;
  const char* name;
};

PoolingChoice ChoosePooling(Napi::Env env, const llama_model* model, Napi::Object o) {
  if (o.Has("pooling") && o.Get("pooling").IsString()) {
    const std::string p = o.Get("pooling").As<Napi::String>();
    if (p == "mean") return {LLAMA_POOLING_TYPE_MEAN, "mean"};
    if (p == "cls") return {LLAMA_POOLING_TYPE_CLS, "cls"};
    if (p == "last") return {LLAMA_POOLING_TYPE_LAST, "last"};
    if (p == "rank") return {LLAMA_POOLING_TYPE_RANK, "rank"};
    Throw(env, kCodeInvalidArgument, "pooling must be 'mean', 'cls', 'last' or 'rank'");
  }
  // The model's own choice (sentence-transformers exports record it), else mean.
  bool found = false;
  const std::string arch = MetaString(model, "general.architecture");
  const std::string value = MetaString(model, (arch + ".pooling_type").c_str(), &found);
  const int type = found ? std::atoi(value.c_str()) : 0;
  switch (type) {
    case LLAMA_POOLING_TYPE_CLS: return {LLAMA_POOLING_TYPE_CLS, "cls"};
    case LLAMA_POOLING_TYPE_LAST: return {LLAMA_POOLING_TYPE_LAST, "last"};
    case LLAMA_POOLING_TYPE_RANK: return {LLAMA_POOLING_TYPE_RANK, "rank"};
    default: return {LLAMA_POOLING_TYPE_MEAN, "mean"};
  }
}

}  // namespace

Napi::Function Embedder::Define(Napi::Env env) {
  return DefineClass(env, "Embedder",
                     {
                         InstanceMethod<&Embedder::Submit>("submit"),
                         InstanceMethod<&Embedder::Info>("info"),
                         InstanceMethod<&Embedder::Dispose>("dispose"),
                     });
}

Embedder::Embedder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Embedder>(info) {
  Napi::Env env = info.Env();
  Model* model = Model::FromValue(env, info.Length() > 0 ? info[0] : env.Undefined());
  if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsFunction()) {
    Throw(env, kCodeInvalidArgument, "Embedder(model, options, onEvents)");
  }
  Napi::Object o = info[1].As<Napi::Object>();
  model_ = model->handle();
  const int32_t trained = llama_model_n_ctx_train(model_.get());
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  context_size_ = IntOption(env, o, "contextSize", std::min(trained > 0 ? trained : 512, 8192), 8, 1 << 20);
  // llama.cpp sizes its output buffer by the batch: more sequences than tokens would overflow it.
  max_sequences_ = std::min(IntOption(env, o, "maxSequences", 32, 1, 256), context_size_);
  const int32_t threads = IntOption(env, o, "threads", static_cast<int32_t>(hw), 1, 1024);
  PoolingChoice pooling = ChoosePooling(env, model_.get(), o);
  pooling_name_ = pooling.name;
  // Rank pooling runs the classification head: each input gives n_cls_out scores (a cross-encoder
  // reranker: one relevance score), which are not a direction and are never normalised.
  const bool rank = pooling.type == LLAMA_POOLING_TYPE_RANK;
  normalize_ = !rank && BoolOption(o, "normalize", true);
  dimensions_ = rank ? static_cast<int32_t>(llama_model_n_cls_out(model_.get())) : llama_model_n_embd_out(model_.get());

  llama_context_params params = llama_context_default_params();
  params.n_ctx = context_size_;
  // Encoder models see a whole sequence in one micro-batch: the batch is the context.
  params.n_batch = params.n_ubatch = context_size_;
  params.n_seq_max = max_sequences_;
  params.n_threads = params.n_threads_batch = threads;
  params.embeddings = true;
  params.pooling_type = pooling.type;
  params.kv_unified = true;
  params.no_perf = true;
  TakeRecentErrors();
  ctx_ = llama_init_from_model(model_.get(), params);
  if (!ctx_) {
    std::string reason = TakeRecentErrors();
    Throw(env, kCodeEngine, "cannot create an embedding context" + (reason.empty() ? "" : ": " + reason));
  }
  batch_ = llama_batch_init(context_size_, 0, 1);
  channel_ = EventChannel<Event>::Create(env, info[2].As<Napi::Function>(), "gguf-serve:embedder",
                                         &Embedder::ConvertEvents);
  cleanup_hook_ = env.AddCleanupHook(std::function<void()>([this]() {
    has_cleanup_hook_ = false;
    Shutdown();
  }));
  has_cleanup_hook_ = true;
  thread_ = std::thread(&Embedder::Run, this);
  RegisterEngineThread(this);
}

Embedder::~Embedder() {
  if (has_cleanup_hook_) cleanup_hook_.Remove(Env());
  Shutdown();
}

Napi::Value Embedder::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (shut_down_) Throw(env, kCodeDisposed, "the embedder has been disposed");
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) {
    Throw(env, kCodeInvalidArgument, "submit(id, inputs: token arrays)");
  }
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  auto job = std::make_unique<Job>();
  job->id = info[0].As<Napi::Number>().DoubleValue();
  Napi::Array inputs = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < inputs.Length(); i++) {
    std::vector<llama_token> tokens = TokensFromValue(env, inputs.Get(i), vocab, "embedding input");
    if (tokens.empty()) Throw(env, kCodeInvalidArgument, "embedding input " + std::to_string(i) + " has no tokens");
    if (tokens.size() > static_cast<size_t>(context_size_)) {
      Throw(env, kCodeContextLength, "embedding input " + std::to_string(i) + " has " + std::to_string(tokens.size()) +
                                         " tokens; the embedding context holds " + std::to_string(context_size_));
    }
    job->inputs.push_back(std::move(tokens));
  }
  job->vectors.resize(job->inputs.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  channel_->Retain(env);
  cv_.notify_one();
  return env.Undefined();
}

Napi::Value Embedder::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dimensions", dimensions_);
  out.Set("contextSize", context_size_);
  out.Set("pooling", pooling_name_);
  out.Set("normalize", normalize_);
  out.Set("maxSequences", max_sequences_);
  // How the vocabulary frames an input (llama-server builds rerank pairs from these).
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  Napi::Object special = Napi::Object::New(env);
  special.Set("bos", llama_vocab_bos(vocab));
  special.Set("eos", llama_vocab_eos(vocab));
  special.Set("sep", llama_vocab_sep(vocab));
  special.Set("addBos", llama_vocab_get_add_bos(vocab));
  special.Set("addEos", llama_vocab_get_add_eos(vocab));
  special.Set("addSep", llama_vocab_get_add_sep(vocab));
  out.Set("specialTokens", special);
  return out;
}

Napi::Value Embedder::Dispose(const Napi::CallbackInfo& info) {
  if (has_cleanup_hook_) {
    cleanup_hook_.Remove(info.Env());
    has_cleanup_hook_ = false;
  }
  Shutdown();
  return info.Env().Undefined();
}

void Embedder::StopThread() {
  std::lock_guard<std::mutex> guard(thread_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Embedder::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  StopThread();
  UnregisterEngineThread(this);
  if (channel_) channel_->Release();
  jobs_.clear();
  if (batch_.token) llama_batch_free(batch_);
  batch_ = {};
  if (ctx_) llama_free(ctx_);
  ctx_ = nullptr;
  model_.reset();
}

void Embedder::Run() {
  while (true) {
    std::vector<std::pair<Job*, size_t>> members;  // (job, input index) per sequence of the batch
    {
      std::unique_lock<std::mutex> lock(mu_);
      WaitForWork(cv_, lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      // Pack whole inputs, in arrival order, across calls, while they fit.
      int32_t tokens = 0;
      for (auto& job : jobs_) {
        while (job->next < job->inputs.size() && static_cast<int32_t>(members.size()) < max_sequences_) {
          const int32_t n = static_cast<int32_t>(job->inputs[job->next].size());
          if (tokens + n > context_size_) break;
          tokens += n;
          members.emplace_back(job.get(), job->next++);
        }
        if (job->next < job->inputs.size()) break;  // batch full: keep FIFO order
      }
    }
    std::vector<Event> events;
    EmbedBatch(members, &events);
    std::unordered_set<double> failed;
    for (const Event& e : events) {
      if (!e.ok) failed.insert(e.id);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& job = **it;
        if (failed.count(job.id)) {
          it = jobs_.erase(it);
        } else if (job.done == job.inputs.size()) {
          Event e;
          e.id = job.id;
          e.vectors = std::move(job.vectors);
          events.push_back(std::move(e));
          it = jobs_.erase(it);
        } else {
          ++it;
        }
      }
    }
    channel_->Post(std::move(events));
  }
}

void Embedder::EmbedBatch(std::vector<std::pair<Job*, size_t>>& members, std::vector<Event>* events) {
  batch_.n_tokens = 0;
  for (size_t s = 0; s < members.size(); s++) {
    const std::vector<llama_token>& tokens = members[s].first->inputs[members[s].second];
    for (size_t i = 0; i < tokens.size(); i++) {
      const int32_t row = batch_.n_tokens++;
      batch_.token[row] = tokens[i];
      batch_.pos[row] = static_cast<llama_pos>(i);
      batch_.n_seq_id[row] = 1;
      batch_.seq_id[row][0] = static_cast<llama_seq_id>(s);
      batch_.logits[row] = true;
    }
  }
  llama_memory_t mem = llama_get_memory(ctx_);
  if (mem) llama_memory_clear(mem, true);
  const int rc = llama_decode(ctx_, batch_);
  if (rc == 0) InstallExitGuardAfterCompute();
  for (size_t s = 0; s < members.size(); s++) {
    Job* job = members[s].first;
    const float* v = rc == 0 ? llama_get_embeddings_seq(ctx_, static_cast<llama_seq_id>(s)) : nullptr;
    if (!v) {
      // Fail the whole call once; its other inputs are dropped with it.
      bool already = false;
      for (const Event& e : *events) already = already || (e.id == job->id && !e.ok);
      if (!already) {
        Event e;
        e.id = job->id;
        e.ok = false;
        std::string reason = TakeRecentErrors();
        e.message = "embedding failed (llama_decode returned " + std::to_string(rc) + ")" +
                    (reason.empty() ? "" : ": " + reason);
        events->push_back(std::move(e));
      }
      continue;
    }
    std::vector<float> out(v, v + dimensions_);
    if (normalize_) {
      double sum = 0;
      for (float x : out) sum += static_cast<double>(x) * x;
      const double norm = std::sqrt(sum);
      if (norm > 0) for (float& x : out) x = static_cast<float>(x / norm);
    }
    job->vectors[members[s].second] = std::move(out);
    job->done++;
  }
}

Napi::Value Embedder::ConvertEvents(Napi::Env env, std::vector<Event>& events) {
  Napi::Array out = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) {
    Event& e = events[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", e.id);
    if (!e.ok) {
      o.Set("type", "error");
      o.Set("message", e.message);
    } else {
      o.Set("type", "done");
      Napi::Array vectors = Napi::Array::New(env, e.vectors.size());
      for (size_t j = 0; j < e.vectors.size(); j++) {
        Napi::Float32Array a = Napi::Float32Array::New(env, e.vectors[j].size());
        std::memcpy(a.Data(), e.vectors[j].data(), e.vectors[j].size() * sizeof(float));
        vectors.Set(static_cast<uint32_t>(j), a);
      }
      o.Set("embeddings", vectors);
    }
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

}  // namespace gguf_serve
