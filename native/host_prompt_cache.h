#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <vector>

#include "llama.h"

namespace gguf_serve {

// Slots' KV states kept in host memory (llama-server's --cache-ram): when a slot is about to be
// given a different prompt, its cells are saved here (llama.cpp's per-sequence state), and a
// later prompt that starts the same way has them restored instead of evaluating them again.
// Bounded in bytes, least recently used evicted first. Engine thread only.
class HostPromptCache {
 public:
  struct Entry {
    std::vector<llama_token> tokens;  // what the saved cells hold
    size_t exact = 0;                 // of those, the leading ones a cold evaluation computes the same way
    std::vector<uint8_t> state;
  };

  explicit HostPromptCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Saves seq's cells (which hold `tokens`, the first `exact` reusable) unless an entry already
  // covers them; entries it covers are dropped. False if it does not fit or cannot be read.
  bool Save(llama_context* ctx, llama_seq_id seq, const std::vector<llama_token>& tokens, size_t exact);
  // The entry sharing the longest reusable prefix with `prompt` (at most prompt.size() - 1), or null.
  const Entry* Find(const std::vector<llama_token>& prompt, size_t* prefix);
  // Writes the entry's cells into seq (which must be empty). False if llama.cpp refused them.
  bool Restore(llama_context* ctx, const Entry& entry, llama_seq_id seq);

  size_t bytes() const { return bytes_; }
  size_t entries() const { return entries_.size(); }

 private:
  void EvictTo(size_t limit);

  size_t max_bytes_;
  size_t bytes_ = 0;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace gguf_serve
