#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "llama.h"

namespace gguf_serve {

// How many leading tokens two sequences share (the prompt cache's measure of reuse).
inline size_t CommonPrefix(const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) i++;
  return i;
}

}  // namespace gguf_serve
