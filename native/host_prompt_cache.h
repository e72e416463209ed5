#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "kv_seq_cells.h"
#include "llama.h"

namespace gguf_serve {

// Slots' KV states kept in host memory (llama-server's --cache-ram): when a slot is about to be
// given a different prompt, its cells are saved here (llama.cpp's per-sequence state), and a
// later prompt that starts the same way has them restored instead of evaluating them again.
// States that share a long prefix (agents' conversations: one system prompt and tool list, each
// its own history) keep that prefix's cells once, so a bound holds many more conversations.
// Bounded in bytes, least recently used evicted first. Engine thread only.
class HostPromptCache {
 public:
  // Cells of a prefix several entries share: tokens[0, size) at positions 0..size-1.
  struct Prefix {
    std::vector<llama_token> tokens;
    KvSeqCells cells;
  };
  struct Entry {
    std::vector<llama_token> tokens;  // what the saved cells hold
    size_t exact = 0;                 // of those, the leading ones a cold evaluation computes the same way
    // Either the whole state as llama.cpp wrote it (a layout KvSeqCells does not take) or the
    // reusable cells only: a shared prefix's, then its own (positions prefix..exact-1).
    std::vector<uint8_t> state;
    std::shared_ptr<const Prefix> prefix;
    std::unique_ptr<KvSeqCells> own;
    size_t OwnBytes() const { return own ? own->bytes() : state.size(); }
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
  size_t prefixes() const { return prefixes_.size(); }

 private:
  // Entries of the new one's layout sharing its first `length` tokens move onto one prefix of them.
  std::shared_ptr<const Prefix> SharePrefix(const std::vector<llama_token>& tokens, const KvSeqCells& cells, size_t length);
  std::shared_ptr<const Prefix> LongestPrefixOf(const std::vector<llama_token>& tokens, size_t limit) const;
  void Recount();  // bytes_ from the entries and the prefixes still in use
  void EvictTo(size_t limit);

  size_t max_bytes_;
  size_t bytes_ = 0;
  std::list<Entry> entries_;  // most recently used first
  std::list<std::shared_ptr<const Prefix>> prefixes_;
  // One state's bytes, between llama.cpp and the entries; kept so that each save and restore does
  // not fault a fresh buffer of that size in. At most the bound: host memory used is up to twice it.
  std::vector<uint8_t> scratch_;
};

}  // namespace gguf_serve
