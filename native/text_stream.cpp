#include "text_stream.h"

#include <algorithm>

namespace gguf_serve {

TextStream::TextStream(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

size_t IncompleteUtf8Tail(const std::string& text) {
  // Walk back over at most 3 continuation bytes to the lead byte and compare its length.
  const size_t n = text.size();
  for (size_t back = 1; back <= 4 && back <= n; back++) {
    const unsigned char c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) need = 2;
    else if ((c & 0xF0) == 0xE0) need = 3;
    else if ((c & 0xF8) == 0xF0) need = 4;
    return need > back ? back : 0;
  }
  return 0;
}

size_t TextStream::HeldForStops() const {
  // Longest suffix of held_ that is a proper prefix of some stop string.
  size_t best = 0;
  for (const auto& stop : stops_) {
    const size_t max_k = std::min(stop.size() - 1, held_.size());
    for (size_t k = max_k; k > best; k--) {
      if (held_.compare(held_.size() - k, k, stop, 0, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

TextStream::Step TextStream::Push(const std::string& piece) {
  held_ += piece;
  Step step;
  size_t first = std::string::npos;
  for (size_t i = 0; i < stops_.size(); i++) {
    const size_t at = held_.find(stops_[i]);
    if (at != std::string::npos && (first == std::string::npos || at < first)) {
      first = at;
      step.stop_index = static_cast<int>(i);
    }
  }
  if (step.stop_index >= 0) {
    step.emit = held_.substr(0, first);
    held_.clear();
    return step;
  }
  const size_t keep = std::max(HeldForStops(), IncompleteUtf8Tail(held_));
  step.emit = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return step;
}

std::string TextStream::Flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace gguf_serve
