#include "host_prompt_cache.h"

#include <algorithm>

#include "token_prefix.h"

namespace gguf_serve {

bool HostPromptCache::Save(llama_context* ctx, llama_seq_id seq, const std::vector<llama_token>& tokens, size_t exact) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const size_t shared = CommonPrefix(it->tokens, tokens);
    if (shared >= exact && it->exact >= exact) {
      entries_.splice(entries_.begin(), entries_, it);  // already kept: only touch it
      return true;
    }
    if (shared >= it->exact) {  // the new one covers it
      bytes_ -= it->state.size();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  const size_t size = llama_state_seq_get_size(ctx, seq);
  if (size == 0 || size > max_bytes_) return false;
  Entry entry;
  entry.state.resize(size);
  if (llama_state_seq_get_data(ctx, entry.state.data(), size, seq) != size) return false;
  entry.tokens = tokens;
  entry.exact = exact;
  EvictTo(max_bytes_ - size);
  bytes_ += size;
  entries_.push_front(std::move(entry));
  return true;
}

const HostPromptCache::Entry* HostPromptCache::Find(const std::vector<llama_token>& prompt, size_t* prefix) {
  auto best = entries_.end();
  size_t best_prefix = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const size_t p = std::min({CommonPrefix(it->tokens, prompt), it->exact, prompt.empty() ? 0 : prompt.size() - 1});
    if (p > best_prefix) {
      best = it;
      best_prefix = p;
    }
  }
  *prefix = best_prefix;
  if (best == entries_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, best);
  return &entries_.front();
}

bool HostPromptCache::Restore(llama_context* ctx, const Entry& entry, llama_seq_id seq) {
  return llama_state_seq_set_data(ctx, entry.state.data(), entry.state.size(), seq) == entry.state.size();
}

void HostPromptCache::EvictTo(size_t limit) {
  while (bytes_ > limit && !entries_.empty()) {
    bytes_ -= entries_.back().state.size();
    entries_.pop_back();
  }
}

}  // namespace gguf_serve
