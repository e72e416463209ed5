#include "host_prompt_cache.h"

#include <algorithm>

#include "token_prefix.h"

namespace gguf_serve {

namespace {
// The fewest tokens two entries must share for their common cells to be kept once.
constexpr size_t kMinSharedPrefix = 64;
}  // namespace

bool HostPromptCache::Save(llama_context* ctx, llama_seq_id seq, const std::vector<llama_token>& tokens, size_t exact) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const size_t shared = CommonPrefix(it->tokens, tokens);
    if (shared >= exact && it->exact >= exact) {
      entries_.splice(entries_.begin(), entries_, it);  // already kept: only touch it
      return true;
    }
    if (shared >= it->exact) {  // the new one covers it
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  // (A state over the bound is not read at all: the scratch buffer then never outgrows it.)
  const size_t size = llama_state_seq_get_size(ctx, seq);
  if (size == 0 || size > max_bytes_) return false;
  scratch_.resize(size);
  if (llama_state_seq_get_data(ctx, scratch_.data(), size, seq) != size) return false;
  Entry entry;
  entry.tokens = tokens;
  entry.exact = exact;
  // A prefix kept already, or a longer one shared with an entry saved before (decided on tokens
  // alone, so that only the cells this entry keeps are copied out of the state).
  std::shared_ptr<const Prefix> kept = LongestPrefixOf(tokens, exact);
  const size_t kept_length = kept ? kept->tokens.size() : 0;
  size_t shared = 0;
  for (const Entry& e : entries_) {
    if (e.own) shared = std::max(shared, std::min({CommonPrefix(e.tokens, tokens), e.exact, exact}));
  }
  const bool share = shared >= kMinSharedPrefix && shared >= kept_length + kMinSharedPrefix;
  const size_t from = share ? 0 : kept_length;
  // Only the reusable cells are kept: a restore never keeps more (Find stops at exact). (They are
  // a part of the state, so within the bound too.)
  std::unique_ptr<KvSeqCells> cells = KvSeqCells::Parse(scratch_, static_cast<llama_pos>(from), static_cast<llama_pos>(exact));
  if (!cells) {
    entry.state = scratch_;
  } else if (share) {
    entry.prefix = SharePrefix(tokens, *cells, shared);
    entry.own = std::make_unique<KvSeqCells>(cells->Slice(static_cast<llama_pos>(shared), static_cast<llama_pos>(exact)));
  } else {
    entry.prefix = std::move(kept);
    entry.own = std::move(cells);
  }
  entries_.push_front(std::move(entry));
  Recount();
  EvictTo(max_bytes_);
  return !entries_.empty() && entries_.front().tokens == tokens;
}

// The longest prefix kept that `tokens` start with, of at most `limit` tokens.
std::shared_ptr<const HostPromptCache::Prefix> HostPromptCache::LongestPrefixOf(const std::vector<llama_token>& tokens, size_t limit) const {
  std::shared_ptr<const Prefix> best;
  for (const auto& p : prefixes_) {
    const size_t n = p->tokens.size();
    if (n <= limit && (!best || n > best->tokens.size()) && CommonPrefix(p->tokens, tokens) == n) best = p;
  }
  return best;
}

std::shared_ptr<const HostPromptCache::Prefix> HostPromptCache::SharePrefix(const std::vector<llama_token>& tokens,
                                                                             const KvSeqCells& cells, size_t length) {
  auto prefix = std::make_shared<Prefix>();
  prefix->tokens.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(length));
  prefix->cells = cells.Slice(0, static_cast<llama_pos>(length));
  for (Entry& e : entries_) {
    if (!e.own || e.exact < length || CommonPrefix(e.tokens, prefix->tokens) < length) continue;
    if (e.prefix && e.prefix->tokens.size() >= length) continue;
    // Its own cells start at or before `length` (where its old prefix ends, or at 0): they keep
    // what the new prefix does not hold.
    e.own = std::make_unique<KvSeqCells>(e.own->Slice(static_cast<llama_pos>(length), static_cast<llama_pos>(e.exact)));
    e.prefix = prefix;
  }
  prefixes_.push_back(prefix);
  return prefix;
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
  if (!entry.own) return llama_state_seq_set_data(ctx, entry.state.data(), entry.state.size(), seq) == entry.state.size();
  if (!entry.own->Serialize(entry.prefix ? &entry.prefix->cells : nullptr, &scratch_)) return false;
  return llama_state_seq_set_data(ctx, scratch_.data(), scratch_.size(), seq) == scratch_.size();
}

void HostPromptCache::Recount() {
  // A prefix no entry uses any more goes (the list's own reference is the last one).
  prefixes_.remove_if([](const std::shared_ptr<const Prefix>& p) { return p.use_count() == 1; });
  bytes_ = 0;
  for (const Entry& e : entries_) bytes_ += e.OwnBytes();
  for (const auto& p : prefixes_) bytes_ += p->cells.bytes();
}

void HostPromptCache::EvictTo(size_t limit) {
  while (bytes_ > limit && !entries_.empty()) {
    entries_.pop_back();
    Recount();
  }
}

}  // namespace gguf_serve
