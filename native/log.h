#pragma once
#include <string>

// llama.cpp and ggml log through one callback. We keep it quiet by default, print at or above a
// chosen level when asked (--debug), and remember the recent errors of the calling thread so a
// failed llama.cpp call can be reported with llama.cpp's own reason.
namespace gguf_serve {

enum class LogLevel { Silent = 0, Error = 1, Warn = 2, Info = 3, Debug = 4 };

void InstallLogger();
void SetLogLevel(LogLevel level);
bool ParseLogLevel(const std::string& name, LogLevel* out);

// Errors and warnings llama.cpp logged on this thread since the last call; clears them.
std::string TakeRecentErrors();

}  // namespace gguf_serve
