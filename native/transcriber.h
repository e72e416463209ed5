#pragma once
#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "event_channel.h"
#include "exit_guard.h"

struct whisper_context;
struct whisper_state;

namespace gguf_serve {

// JS class Transcriber: a Whisper model (whisper.cpp, on the vendored llama.cpp's ggml) and one
// native thread that loads it, then transcribes submitted 16 kHz mono PCM one job at a time,
// posting each segment as it is decoded (for streaming) and the whole result at the end.
class Transcriber : public Napi::ObjectWrap<Transcriber>, public EngineThread {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Transcriber(const Napi::CallbackInfo& info);  // (path, options, onEvents)
  ~Transcriber() override;

  struct Token {
    int32_t id = 0;
    std::string text;
    float p = 0, plog = 0;
    int64_t t0 = 0, t1 = 0;  // centiseconds; -1 unless token timestamps were asked for
    bool special = false;
  };
  struct Segment {
    int64_t t0 = 0, t1 = 0;  // centiseconds
    std::string text;
    float no_speech_prob = 0;
    std::vector<Token> tokens;
  };
  struct Event {
    double id = 0;
    bool final = true;
    std::string type;  // "loaded", "load-error", "segments", "done", "error", "cancelled"
    std::string message;
    std::string language, language_name;  // "en", "english"
    std::vector<Segment> segments;
    bool multilingual = false;
    int32_t n_vocab = 0;
  };

 private:
  struct Job {
    double id = 0;
    // The caller's Float32Array, not a copy: JavaScript keeps it alive (and unchanged) until this
    // job's final event, so an hour of audio is held once, not twice.
    const float* pcm = nullptr;
    size_t samples = 0;
    std::string language;  // "" = detect
    std::string prompt;
    bool translate = false;
    bool token_timestamps = false;
    float temperature = 0;
    float temperature_inc = 0.2f;
    int32_t best_of = 5;
    int32_t beam_size = 0;  // 0 = greedy
    std::atomic<bool> cancelled{false};
    size_t segments_posted = 0;
  };

  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  void Shutdown();
  void StopThread() override;
  static Napi::Value ConvertEvents(Napi::Env env, std::vector<Event>& events);

  void Run();
  bool Load();
  void Transcribe(Job& job);
  Segment ReadSegment(int index, bool token_timestamps) const;

  std::string path_;
  bool use_gpu_ = false, flash_attn_ = false;
  int32_t gpu_device_ = 0, threads_ = 1;
  whisper_context* ctx_ = nullptr;
  whisper_state* state_ = nullptr;

  std::shared_ptr<EventChannel<Event>> channel_;
  std::thread thread_;
  std::mutex thread_mu_;  // serialises StopThread between dispose and process exit
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
  std::shared_ptr<Job> running_;
  std::atomic<bool> stopping_{false};
  bool shut_down_ = false;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_hook_;
  bool has_cleanup_hook_ = false;
};

}  // namespace gguf_serve
