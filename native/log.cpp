#include "log.h"

#include <atomic>
#include <cstdio>
#include <deque>

#include "llama.h"
#include "whisper.h"

// llama.cpp's common helpers log through their own logger (common/log.h, whose name this folder's
// log.h shadows): its threshold follows ours, silent by default.
void common_log_set_verbosity_thold(int verbosity);

namespace gguf_serve {
namespace {

// common/log.h's levels: error 1, warn 2, info 3, debug 5; -1 prints nothing.
int CommonVerbosity(LogLevel level) {
  switch (level) {
    case LogLevel::Silent: return -1;
    case LogLevel::Error: return 1;
    case LogLevel::Warn: return 2;
    case LogLevel::Info: return 3;
    default: return 5;
  }
}

std::atomic<int> g_level{static_cast<int>(LogLevel::Silent)};
thread_local std::deque<std::string> t_recent;
thread_local ggml_log_level t_last_level = GGML_LOG_LEVEL_NONE;
constexpr size_t kRecentLines = 6;

int Rank(ggml_log_level level) {
  switch (level) {
    case GGML_LOG_LEVEL_ERROR: return static_cast<int>(LogLevel::Error);
    case GGML_LOG_LEVEL_WARN: return static_cast<int>(LogLevel::Warn);
    case GGML_LOG_LEVEL_INFO: return static_cast<int>(LogLevel::Info);
    default: return static_cast<int>(LogLevel::Debug);
  }
}

void OnLog(ggml_log_level level, const char* text, void*) {
  // CONT lines continue the previous message at its level.
  if (level == GGML_LOG_LEVEL_CONT) level = t_last_level;
  t_last_level = level;
  if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) {
    std::string line(text ? text : "");
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) {
      t_recent.push_back(line);
      if (t_recent.size() > kRecentLines) t_recent.pop_front();
    }
  }
  if (Rank(level) <= g_level.load(std::memory_order_relaxed)) {
    std::fputs(text, stderr);
  }
}

}  // namespace

void InstallLogger() {
  llama_log_set(OnLog, nullptr);
  // whisper.cpp re-installs its own logger into ggml whenever it loads a model: give it ours.
  whisper_log_set(OnLog, nullptr);
  common_log_set_verbosity_thold(CommonVerbosity(LogLevel::Silent));
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level));
  common_log_set_verbosity_thold(CommonVerbosity(level));
}

bool ParseLogLevel(const std::string& name, LogLevel* out) {
  if (name == "silent") *out = LogLevel::Silent;
  else if (name == "error") *out = LogLevel::Error;
  else if (name == "warn") *out = LogLevel::Warn;
  else if (name == "info") *out = LogLevel::Info;
  else if (name == "debug") *out = LogLevel::Debug;
  else return false;
  return true;
}

std::string TakeRecentErrors() {
  std::string out;
  for (const auto& line : t_recent) {
    if (!out.empty()) out += "; ";
    out += line;
  }
  t_recent.clear();
  return out;
}

}  // namespace gguf_serve
