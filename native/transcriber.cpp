#include "transcriber.h"

#include <cstring>

#include "compute_threads.h"
#include "errors.h"
#include "js_options.h"
#include "log.h"
#include "whisper.h"

namespace gguf_serve {

namespace {

std::string StringOption(Napi::Object o, const char* key) {
  return IsSet(o, key) && o.Get(key).IsString() ? o.Get(key).As<Napi::String>().Utf8Value() : std::string();
}

}  // namespace

Napi::Function Transcriber::Define(Napi::Env env) {
  return DefineClass(env, "Transcriber",
                     {
                         InstanceMethod<&Transcriber::Submit>("submit"),
                         InstanceMethod<&Transcriber::Cancel>("cancel"),
                         InstanceMethod<&Transcriber::Dispose>("dispose"),
                     });
}

Transcriber::Transcriber(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Transcriber>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsFunction()) {
    Throw(env, kCodeInvalidArgument, "Transcriber(path, options, onEvents)");
  }
  path_ = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  threads_ = IntOption(env, o, "threads", static_cast<int32_t>(std::min(hw, 8u)), 1, 1024);
  use_gpu_ = BoolOption(o, "useGpu", false);
  flash_attn_ = BoolOption(o, "flashAttention", true);  // whisper.cpp's default: faster, and its tools use it
  gpu_device_ = IntOption(env, o, "gpuDevice", 0, 0, 64);
  channel_ = EventChannel<Event>::Create(env, info[2].As<Napi::Function>(), "gguf-serve:transcriber",
                                         &Transcriber::ConvertEvents);
  channel_->Retain(env);  // until the "loaded" / "load-error" event
  cleanup_hook_ = env.AddCleanupHook(std::function<void()>([this]() {
    has_cleanup_hook_ = false;
    Shutdown();
  }));
  has_cleanup_hook_ = true;
  // The model loads on the engine thread: a large Whisper model must not block the event loop.
  thread_ = std::thread(&Transcriber::Run, this);
  RegisterEngineThread(this);
}

Transcriber::~Transcriber() {
  if (has_cleanup_hook_) cleanup_hook_.Remove(Env());
  Shutdown();
}

Napi::Value Transcriber::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (shut_down_) Throw(env, kCodeDisposed, "the transcriber has been disposed");
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsObject() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    Throw(env, kCodeInvalidArgument, "submit(id, pcm: Float32Array (16 kHz mono), options)");
  }
  if (info[1].As<Napi::TypedArray>().ElementLength() > static_cast<size_t>(INT32_MAX)) {
    Throw(env, kCodeInvalidArgument, "the audio is too long");
  }
  Napi::Float32Array pcm = info[1].As<Napi::Float32Array>();
  Napi::Object o = info[2].As<Napi::Object>();
  auto job = std::make_shared<Job>();
  job->id = info[0].As<Napi::Number>().DoubleValue();
  job->pcm = pcm.Data();
  job->samples = pcm.ElementLength();
  job->language = StringOption(o, "language");
  if (!job->language.empty() && whisper_lang_id(job->language.c_str()) < 0) {
    Throw(env, kCodeInvalidArgument, "unknown language '" + job->language + "'");
  }
  job->prompt = StringOption(o, "prompt");
  job->translate = BoolOption(o, "translate", false);
  job->token_timestamps = BoolOption(o, "tokenTimestamps", false);
  job->temperature = FloatOption(env, o, "temperature", 0.0f, 0.0f, 1.0f);
  job->temperature_inc = FloatOption(env, o, "temperatureIncrement", 0.2f, 0.0f, 1.0f);
  job->best_of = IntOption(env, o, "bestOf", 5, 1, 16);
  job->beam_size = IntOption(env, o, "beamSize", 0, 0, 16);
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  channel_->Retain(env);
  cv_.notify_one();
  return env.Undefined();
}

Napi::Value Transcriber::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) Throw(env, kCodeInvalidArgument, "cancel(id)");
  const double id = info[0].As<Napi::Number>().DoubleValue();
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_ && running_->id == id) running_->cancelled = true;  // the abort callback ends it
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      if ((*it)->id != id) continue;
      jobs_.erase(it);
      Event e;
      e.id = id;
      e.type = "cancelled";
      events.push_back(std::move(e));
      break;
    }
  }
  if (channel_) channel_->Post(std::move(events));
  return env.Undefined();
}

Napi::Value Transcriber::Dispose(const Napi::CallbackInfo& info) {
  if (has_cleanup_hook_) {
    cleanup_hook_.Remove(info.Env());
    has_cleanup_hook_ = false;
  }
  Shutdown();
  return info.Env().Undefined();
}

void Transcriber::StopThread() {
  std::lock_guard<std::mutex> guard(thread_mu_);
  stopping_ = true;
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Transcriber::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  StopThread();
  UnregisterEngineThread(this);
  if (channel_) channel_->Release();
  jobs_.clear();
  if (state_) whisper_free_state(state_);
  state_ = nullptr;
  if (ctx_) whisper_free(ctx_);
  ctx_ = nullptr;
}

bool Transcriber::Load() {
  whisper_context_params params = whisper_context_default_params();
  params.use_gpu = use_gpu_;
  params.flash_attn = flash_attn_;
  params.gpu_device = gpu_device_;
  TakeRecentErrors();
  ctx_ = whisper_init_from_file_with_params_no_state(path_.c_str(), params);
  Event e;
  e.id = 0;
  if (!ctx_) {
    const std::string reason = TakeRecentErrors();
    e.type = "load-error";
    e.message = "cannot load the Whisper model " + path_ + (reason.empty() ? "" : ": " + reason);
    channel_->Post({std::move(e)});
    return false;
  }
  e.type = "loaded";
  e.multilingual = whisper_is_multilingual(ctx_) != 0;
  e.n_vocab = whisper_n_vocab(ctx_);
  channel_->Post({std::move(e)});
  return true;
}

void Transcriber::Run() {
  if (!Load()) return;
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      WaitForWork(cv_, lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = jobs_.front();
      jobs_.pop_front();
      running_ = job;
    }
    Transcribe(*job);
    std::lock_guard<std::mutex> lock(mu_);
    running_.reset();
  }
}

Transcriber::Segment Transcriber::ReadSegment(int index, bool token_timestamps) const {
  Segment s;
  s.t0 = whisper_full_get_segment_t0_from_state(state_, index);
  s.t1 = whisper_full_get_segment_t1_from_state(state_, index);
  s.text = whisper_full_get_segment_text_from_state(state_, index);
  s.no_speech_prob = whisper_full_get_segment_no_speech_prob_from_state(state_, index);
  const whisper_token eot = whisper_token_eot(ctx_);
  const int n = whisper_full_n_tokens_from_state(state_, index);
  for (int i = 0; i < n; i++) {
    const whisper_token_data d = whisper_full_get_token_data_from_state(state_, index, i);
    Token t;
    t.id = d.id;
    t.text = whisper_full_get_token_text_from_state(ctx_, state_, index, i);
    t.p = d.p;
    t.plog = d.plog;
    t.t0 = token_timestamps ? whisper_full_get_token_t0_from_state(state_, index, i) : -1;
    t.t1 = token_timestamps ? whisper_full_get_token_t1_from_state(state_, index, i) : -1;
    t.special = d.id >= eot;
    s.tokens.push_back(std::move(t));
  }
  return s;
}

void Transcriber::Transcribe(Job& job) {
  whisper_full_params p =
      whisper_full_default_params(job.beam_size > 1 ? WHISPER_SAMPLING_BEAM_SEARCH : WHISPER_SAMPLING_GREEDY);
  p.n_threads = threads_;
  p.print_progress = p.print_realtime = p.print_timestamps = p.print_special = false;
  p.translate = job.translate;
  p.language = job.language.empty() ? "auto" : job.language.c_str();
  p.initial_prompt = job.prompt.empty() ? nullptr : job.prompt.c_str();
  p.token_timestamps = job.token_timestamps;
  p.temperature = job.temperature;
  p.temperature_inc = job.temperature_inc;
  p.greedy.best_of = job.best_of;
  if (job.beam_size > 1) p.beam_search.beam_size = job.beam_size;
  struct Callbacks {
    Transcriber* self;
    Job* job;
  } callbacks{this, &job};
  p.abort_callback = [](void* data) {
    auto* c = static_cast<Callbacks*>(data);
    return c->job->cancelled.load() || c->self->stopping_.load();
  };
  p.abort_callback_user_data = &callbacks;
  p.new_segment_callback = [](whisper_context*, whisper_state* state, int n_new, void* data) {
    auto* c = static_cast<Callbacks*>(data);
    Event e;
    e.id = c->job->id;
    e.final = false;
    e.type = "segments";
    const int total = whisper_full_n_segments_from_state(state);
    for (int i = total - n_new; i < total; i++) e.segments.push_back(c->self->ReadSegment(i, c->job->token_timestamps));
    c->job->segments_posted = static_cast<size_t>(total);
    c->self->channel_->Post({std::move(e)});
  };
  p.new_segment_callback_user_data = &callbacks;

  TakeRecentErrors();
  // A fresh state per job: whisper.cpp carries decoder state from one whisper_full to the next
  // (the same audio twice gave two transcripts), and its own tools start each file afresh.
  state_ = whisper_init_state(ctx_);
  const int rc = state_ ? whisper_full_with_state(ctx_, state_, p, job.pcm, static_cast<int>(job.samples)) : -1;
  InstallExitGuardAfterCompute();
  Event e;
  e.id = job.id;
  if (job.cancelled || stopping_) {
    e.type = "cancelled";
  } else if (rc != 0) {
    const std::string reason = TakeRecentErrors();
    e.type = "error";
    e.message = "transcription failed (whisper_full returned " + std::to_string(rc) + ")" +
                (reason.empty() ? "" : ": " + reason);
  } else {
    e.type = "done";
    const int lang = whisper_full_lang_id_from_state(state_);
    e.language = whisper_lang_str(lang);
    e.language_name = whisper_lang_str_full(lang);
    const int n = whisper_full_n_segments_from_state(state_);
    for (int i = 0; i < n; i++) e.segments.push_back(ReadSegment(i, job.token_timestamps));
  }
  if (state_) whisper_free_state(state_);
  state_ = nullptr;
  channel_->Post({std::move(e)});
}

Napi::Value Transcriber::ConvertEvents(Napi::Env env, std::vector<Event>& events) {
  Napi::Array out = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) {
    Event& e = events[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", e.id);
    o.Set("type", e.type);
    if (!e.message.empty()) o.Set("message", e.message);
    if (e.type == "loaded") {
      o.Set("multilingual", e.multilingual);
      o.Set("vocabularySize", e.n_vocab);
    }
    if (!e.language.empty()) o.Set("language", e.language);
    if (!e.language_name.empty()) o.Set("languageName", e.language_name);
    if (e.type == "segments" || e.type == "done") {
      Napi::Array segments = Napi::Array::New(env, e.segments.size());
      for (size_t j = 0; j < e.segments.size(); j++) {
        const Segment& s = e.segments[j];
        Napi::Object so = Napi::Object::New(env);
        so.Set("t0", static_cast<double>(s.t0));
        so.Set("t1", static_cast<double>(s.t1));
        so.Set("text", s.text);
        so.Set("noSpeechProb", s.no_speech_prob);
        Napi::Array tokens = Napi::Array::New(env, s.tokens.size());
        for (size_t k = 0; k < s.tokens.size(); k++) {
          const Token& t = s.tokens[k];
          Napi::Object to = Napi::Object::New(env);
          to.Set("id", t.id);
          to.Set("text", t.text);
          to.Set("p", t.p);
          to.Set("logprob", t.plog);
          to.Set("t0", static_cast<double>(t.t0));
          to.Set("t1", static_cast<double>(t.t1));
          to.Set("special", t.special);
          tokens.Set(static_cast<uint32_t>(k), to);
        }
        so.Set("tokens", tokens);
        segments.Set(static_cast<uint32_t>(j), so);
      }
      o.Set("segments", segments);
    }
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

}  // namespace gguf_serve
