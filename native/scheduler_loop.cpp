// The engine thread of Scheduler: one loop that batches every active sequence into a single
// llama_decode per step, samples each one, and posts what came out to JavaScript.
#include <algorithm>
#include <cstring>

#include "compute_threads.h"
#include "log.h"
#include "scheduler.h"
#include "speculative.h"  // llama.cpp's common/speculative.h
#include "token_prefix.h"
#include "vocab_text.h"

namespace gguf_serve {

namespace {

double MsBetween(Scheduler::Clock::time_point a, Scheduler::Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void Scheduler::WarmUp() {
  // One token through every layer before the first request (as llama-server does): the weights'
  // pages are mapped in and the compute graph is built now, not during someone's prompt.
  // (A dense model reads every weight for one token; MoE experts are left to their first use.)
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  llama_token token = llama_vocab_bos(vocab);
  if (token == LLAMA_TOKEN_NULL) token = 0;
  batch_.n_tokens = 1;
  batch_.token[0] = token;
  batch_.pos[0] = 0;
  batch_.n_seq_id[0] = 1;
  batch_.seq_id[0][0] = 0;
  batch_.logits[0] = true;
  llama_decode(ctx_, batch_);
  llama_memory_clear(llama_get_memory(ctx_), true);
  llama_synchronize(ctx_);
  if (draft_ctx_) {
    llama_decode(draft_ctx_, batch_);
    llama_memory_clear(llama_get_memory(draft_ctx_), true);
    llama_synchronize(draft_ctx_);
  }
  TakeRecentErrors();
}

void Scheduler::Run() {
  WarmUp();
  std::vector<Event> events;
  while (true) {
    events.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      WaitForWork(cv_, lock, [this] {
        return stopping_ || !cancels_.empty() || active_slots_ > 0 || (!queue_.empty() && active_slots_ < parallel_);
      });
      if (stopping_) return;
    }
    TakeCancellationsAndAssign(&events);
    DraftSlots();
    if (BuildBatch()) {
      stat_decodes_.fetch_add(1, std::memory_order_relaxed);
      const int rc = llama_decode(ctx_, batch_);
      if (rc != 0) {
        if (abort_decode_) return;
        FailBatch(rc, &events);
      } else {
        InstallExitGuardAfterCompute();
        for (Slot& slot : slots_) slot.copy_pending = false;  // this decode copied the buffers
        MirrorStepToDraft();
        SharePrompts();
        CollectPromptLogprobs();
        SampleSlots(&events);
      }
    }
    PublishSlotViews();
    channel_->Post(std::move(events));
  }
}

void Scheduler::PublishSlotViews() {
  std::vector<SlotView> views(slots_.size());
  for (size_t i = 0; i < slots_.size(); i++) {
    const Slot& slot = slots_[i];
    SlotView& v = views[i];
    v.cells = static_cast<int32_t>(slot.cache.size());
    if (!slot.req) continue;
    v.state = slot.awaiting_share ? "waiting" : slot.prompt_done < slot.req->prompt.size() ? "prompt" : "generating";
    v.request = slot.req->id;
    v.prompt_tokens = static_cast<int32_t>(slot.req->prompt.size());
    v.prompt_done = static_cast<int32_t>(slot.prompt_done);
    v.cached = static_cast<int32_t>(slot.cached);
    v.generated = slot.generated;
    v.max_tokens = slot.req->max_tokens;
  }
  if (ram_cache_) {
    stat_ram_bytes_.store(static_cast<int64_t>(ram_cache_->bytes()), std::memory_order_relaxed);
    stat_ram_entries_.store(static_cast<int64_t>(ram_cache_->entries()), std::memory_order_relaxed);
    stat_ram_prefixes_.store(static_cast<int64_t>(ram_cache_->prefixes()), std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(views_mu_);
  views_ = std::move(views);
}

void Scheduler::TakeCancellationsAndAssign(std::vector<Event>* events) {
  std::vector<std::unique_ptr<Request>> to_assign;
  std::unordered_set<double> cancels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels.swap(cancels_);
    // Cancelled while still queued: never touches a slot.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (cancels.count((*it)->id)) {
        Event e;
        e.id = (*it)->id;
        e.kind = Event::Kind::Done;
        e.final = true;
        e.finish_reason = "cancelled";
        e.prompt_tokens = static_cast<int>((*it)->prompt.size());
        e.queue_ms = MsBetween((*it)->submitted, Clock::now());
        events->push_back(std::move(e));
        cancels.erase((*it)->id);
        it = queue_.erase(it);
        in_flight_--;
        stat_queued_--;
      } else {
        ++it;
      }
    }
  }
  for (Slot& slot : slots_) {
    if (slot.req && cancels.count(slot.req->id)) {
      Finish(slot, "cancelled", -1, events);
      ClearSlotCache(slot);  // a cancelled sequence leaves nothing behind
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!queue_.empty() && active_slots_ + static_cast<int>(to_assign.size()) < parallel_) {
      to_assign.push_back(std::move(queue_.front()));
      queue_.pop_front();
      stat_queued_--;
    }
  }
  for (auto& req : to_assign) Assign(std::move(req), events);
}

void Scheduler::Assign(std::unique_ptr<Request> req, std::vector<Event>* events) {
  // The free slot whose cached tokens share the longest prefix with this prompt; among equals,
  // the one used least recently (so hot caches survive longest).
  Slot* best = nullptr;
  size_t best_prefix = 0;
  for (Slot& slot : slots_) {
    if (slot.req) continue;
    const size_t prefix = req->cache_prompt ? std::min(CommonPrefix(slot.cache, req->prompt), slot.exact) : 0;
    if (!best || prefix > best_prefix || (prefix == best_prefix && slot.last_used < best->last_used)) {
      best = &slot;
      best_prefix = prefix;
    }
  }
  Slot& slot = *best;
  // A choice of the same prompt as a request still evaluating it waits for its cells (n > 1).
  const Slot* leader = nullptr;
  size_t shared = 0;
  if (req->share_with != 0) {
    for (const Slot& other : slots_) {
      if (&other != &slot && other.req && other.req->id == req->share_with && !other.awaiting_share &&
          other.prompt_done < other.req->prompt.size() && other.req->prompt == req->prompt) {
        leader = &other;
        shared = req->prompt.size();
      }
    }
    if (leader) best_prefix = 0;
  }
  // Keep at least the last prompt token to evaluate: its logits start the generation. Only cells
  // a cold evaluation would compute the same way are kept (best_prefix <= slot.exact), so the
  // text of a seeded request is the same with the cache or without it.
  size_t keep = std::min(best_prefix, req->prompt.size() - 1);
  if (!leader && req->cache_prompt) leader = FindPrefixLeader(slot, req->prompt, keep, &shared);
  if (leader) {
    if (shared < req->prompt.size()) SaveToHostCache(slot, keep);
    TrimSlotCache(slot, &keep);  // where it starts if the leader ends first
  } else if (req->cache_prompt) {
    StartFromLongestPrefix(slot, req->prompt, &keep);
  } else {
    TrimSlotCache(slot, &keep);
  }
  slot.exact = keep;
  slot.awaiting_share = leader != nullptr;
  slot.leader = leader ? leader->req->id : 0;
  slot.shared_prefix = shared;
  slot.req = std::move(req);
  slot.prompt_done = keep;
  slot.cached = keep;
  slot.has_pending = false;
  slot.batch_index = -1;
  slot.generated = 0;
  slot.drafted = slot.draft_accepted = 0;
  slot.draft_limit = spec_max_;
  slot.assigned_order = ++use_counter_;
  slot.text = TextStream(slot.req->stops);
  slot.out_text.clear();
  slot.out_tokens.clear();
  slot.out_logprobs.clear();
  slot.out_prompt_logprobs.clear();
  slot.prompt_rows.clear();
  slot.assigned = slot.first_token = Clock::now();
  active_slots_++;
  stat_active_++;
  if (slot.req->max_tokens == 0) Finish(slot, "length", -1, events);
}

void Scheduler::TrimSlotCache(Slot& slot, size_t* keep) {
  if (*keep >= slot.cache.size()) return;
  if (!RemoveCells(slot, *keep)) {
    RemoveCells(slot, 0);
    *keep = 0;
  }
  slot.cache.resize(*keep);
}

namespace {
constexpr size_t kMinGain = 32;   // tokens another source must beat a slot's own cells by
constexpr size_t kMinSaved = 64;  // the fewest cells worth saving to host memory
}  // namespace

// Where a prompt starts: the cells its slot already holds (*keep), or, when either beats them by
// kMinGain tokens, a copy of another slot's cells (busy or not: a common system prompt and tool
// list is evaluated once while it stays cached) or a state saved in host memory. Only cells a
// cold evaluation computes the same way count (exact), so texts do not depend on what ran before.
void Scheduler::StartFromLongestPrefix(Slot& slot, const std::vector<llama_token>& prompt, size_t* keep) {
  size_t donor_prefix = 0;
  const Slot* donor = FindDonor(slot, prompt, &donor_prefix);
  size_t saved_prefix = 0;
  // (A restore writes the buffer now; a copy still pending into this stream would overwrite it.)
  if (ram_cache_ && !slot.copy_pending) ram_cache_->Find(prompt, &saved_prefix);
  const size_t other_prefix = std::max(donor_prefix, saved_prefix);
  const bool replace = other_prefix >= *keep + kMinGain;
  SaveToHostCache(slot, replace ? 0 : *keep);
  if (!replace) {
    TrimSlotCache(slot, keep);
    return;
  }
  if (donor_prefix >= saved_prefix) {
    CopyPrefix(slot, *donor, donor_prefix);
    *keep = donor_prefix;
    return;
  }
  RemoveCells(slot, 0);
  slot.cache.clear();
  const HostPromptCache::Entry* entry = ram_cache_->Find(prompt, &saved_prefix);
  // (Only the target's cells are saved: the draft model's catch up before the slot drafts.)
  if (!entry || !ram_cache_->Restore(ctx_, *entry, slot.seq)) {
    RemoveCells(slot, 0);
    *keep = 0;
    return;
  }
  stat_ram_hits_.fetch_add(1, std::memory_order_relaxed);
  stat_ram_tokens_.fetch_add(static_cast<int64_t>(saved_prefix), std::memory_order_relaxed);
  RemoveCells(slot, saved_prefix);
  slot.cache.assign(prompt.begin(), prompt.begin() + saved_prefix);
  *keep = saved_prefix;
}

// The other slot holding the longest exact prefix of the prompt (up to its last token).
const Scheduler::Slot* Scheduler::FindDonor(const Slot& slot, const std::vector<llama_token>& prompt, size_t* prefix) const {
  const size_t limit = prompt.size() - 1;
  const Slot* donor = nullptr;
  *prefix = 0;
  for (const Slot& other : slots_) {
    if (&other == &slot || other.awaiting_share) continue;
    const size_t p = std::min({CommonPrefix(other.cache, prompt), other.exact, limit});
    if (p > *prefix) {
      donor = &other;
      *prefix = p;
    }
  }
  return donor;
}

// A request still evaluating a prompt that shares a longer prefix with this one than anything
// cached now (by kMinGain): this one waits for those cells rather than evaluating them again.
// (Prompts are evaluated oldest first, so the wait costs the follower nothing.)
const Scheduler::Slot* Scheduler::FindPrefixLeader(const Slot& slot, const std::vector<llama_token>& prompt, size_t keep,
                                                   size_t* prefix) const {
  size_t reachable = keep;
  FindDonor(slot, prompt, &reachable);
  reachable = std::max(reachable, keep);
  size_t saved = 0;
  if (ram_cache_) ram_cache_->Find(prompt, &saved);
  reachable = std::max(reachable, saved);
  const Slot* leader = nullptr;
  *prefix = 0;
  for (const Slot& other : slots_) {
    if (&other == &slot || !other.req || other.awaiting_share || other.prompt_done >= other.req->prompt.size()) continue;
    // The leader's last prompt token is decoded alone and never counts as exact.
    const size_t p = std::min({CommonPrefix(other.req->prompt, prompt), other.req->prompt.size() - 1, prompt.size() - 1});
    if (p > *prefix) {
      leader = &other;
      *prefix = p;
    }
  }
  return leader && *prefix >= reachable + kMinGain ? leader : nullptr;
}

// The slot's cells become the donor's first `prefix` cells. With a KV stream per slot the copy is
// of the whole stream buffer (llama.cpp copies across streams no other way; the data lands at the
// next decode), then trimmed to the prefix; in a unified buffer it is the prefix's cells only.
void Scheduler::CopyPrefix(Slot& slot, const Slot& donor, size_t prefix) {
  RemoveCells(slot, 0);
  if (kv_unified_) {
    CopyCells(donor, slot, 0, static_cast<llama_pos>(prefix));
  } else {
    CopyCells(donor, slot, -1, -1);
    slot.copy_pending = true;
  }
  RemoveCells(slot, prefix);
  slot.cache.assign(donor.cache.begin(), donor.cache.begin() + static_cast<std::ptrdiff_t>(prefix));
  slot.exact = prefix;
  stat_shared_prefix_tokens_.fetch_add(static_cast<int64_t>(prefix), std::memory_order_relaxed);
}

// Cells the slot is about to lose (all but its first `keep`) go to host memory, if worth it.
void Scheduler::SaveToHostCache(Slot& slot, size_t keep) {
  if (ram_cache_ && slot.exact >= kMinSaved && slot.exact > keep && !slot.copy_pending) {
    ram_cache_->Save(ctx_, slot.seq, slot.cache, slot.exact);
  }
}

bool Scheduler::BuildBatch() {
  batch_.n_tokens = 0;
  auto add = [this](llama_token token, llama_pos pos, llama_seq_id seq, bool logits) {
    const int32_t i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = pos;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = seq;
    batch_.logits[i] = logits;
    return i;
  };
  // One new token for every generating sequence first: they never wait behind long prompts.
  // (Drafts follow their slot's token, in the room the later slots' tokens leave.)
  int32_t pending_left = 0;
  for (const Slot& slot : slots_) pending_left += slot.req && slot.has_pending ? 1 : 0;
  for (Slot& slot : slots_) {
    slot.batch_index = -1;
    if (!slot.req || !slot.has_pending) continue;
    slot.batch_index = add(slot.pending, static_cast<llama_pos>(slot.cache.size()), slot.seq, true);
    slot.cache.push_back(slot.pending);
    slot.has_pending = false;
    pending_left--;
    if (!slot.draft.empty()) AddDrafts(slot, batch_size_ - batch_.n_tokens - pending_left);
  }
  // Then prompt chunks, oldest request first, in what room the batch has left. Once the step
  // holds promptChunk prompt tokens no further prompt starts in it: prompts that arrive together
  // then finish one after another instead of all at the end of one long step (lower mean time
  // to first token), while one long prompt still fills the batch.
  std::vector<Slot*> prompting;
  for (Slot& slot : slots_) {
    if (slot.req && !slot.awaiting_share && slot.prompt_done < slot.req->prompt.size()) prompting.push_back(&slot);
  }
  std::sort(prompting.begin(), prompting.end(),
            [](const Slot* a, const Slot* b) { return a->assigned_order < b->assigned_order; });
  int32_t prompt_in_step = 0;
  for (Slot* slot : prompting) {
    if (prompt_chunk_ > 0 && prompt_in_step >= prompt_chunk_) break;
    const std::vector<llama_token>& prompt = slot->req->prompt;
    // The last prompt token goes alone into a step of its own sequence: CPU kernels round a
    // sequence's attention differently for one query row than for several, and a prompt whose
    // prefix is reused also ends with one row. So the first sampled token sees the same logits
    // with the cache as without it.
    size_t added = 0;
    while (slot->prompt_done < prompt.size() && batch_.n_tokens < batch_size_) {
      const size_t i = slot->prompt_done;
      const bool last = i + 1 == prompt.size();
      if (last && added > 0) break;
      slot->prompt_done++;
      const int32_t row = add(prompt[i], static_cast<llama_pos>(i), slot->seq, last || slot->req->prompt_logprobs);
      if (!last && slot->req->prompt_logprobs) slot->prompt_rows.emplace_back(row, i);
      slot->cache.push_back(prompt[i]);
      prompt_in_step++;
      added++;
      stat_prompt_tokens_.fetch_add(1, std::memory_order_relaxed);
      if (last) slot->batch_index = row;
      else slot->exact = slot->prompt_done;
    }
    if (batch_.n_tokens >= batch_size_) break;
  }
  return batch_.n_tokens > 0;
}

void Scheduler::FailBatch(int code, std::vector<Event>* events) {
  std::string reason = TakeRecentErrors();
  std::string message = "llama_decode failed with code " + std::to_string(code) +
                        (code == 1 ? " (no room left in the KV cache)" : "") + (reason.empty() ? "" : ": " + reason);
  for (Slot& slot : slots_) {
    if (!slot.req) continue;
    bool in_batch = slot.batch_index >= 0;
    for (int32_t i = 0; !in_batch && i < batch_.n_tokens; i++) in_batch = batch_.seq_id[i][0] == slot.seq;
    if (in_batch) FailSlot(slot, message, events);
  }
}

void Scheduler::FailSlot(Slot& slot, const std::string& message, std::vector<Event>* events) {
  Event e;
  e.id = slot.req->id;
  e.kind = Event::Kind::Error;
  e.final = true;
  e.message = message;
  events->push_back(std::move(e));
  ReleaseFollowers(slot.req->id);
  slot.awaiting_share = false;
  slot.req.reset();
  slot.has_pending = false;
  slot.batch_index = -1;
  ClearSlotCache(slot);
  active_slots_--;
  stat_active_--;
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_--;
}

void Scheduler::SampleSlots(std::vector<Event>* events) {
  for (Slot& slot : slots_) {
    if (!slot.req || slot.batch_index < 0) continue;
    Request& req = *slot.req;
    if (slot.generated == 0 && spec_ && req.speculative) common_speculative_begin(spec_, slot.seq, req.prompt);
    std::vector<llama_token> tokens;
    std::vector<int32_t> rows;
    try {
      if (!slot.draft_rows.empty()) {
        tokens = VerifyDrafts(slot);
        rows = {slot.batch_index};
        rows.insert(rows.end(), slot.draft_rows.begin(), slot.draft_rows.end());
      } else {
        tokens = {SampleToken(req.sampler, ctx_, slot.batch_index, req.max_tokens >= 0 ? req.max_tokens - slot.generated : -1)};
        rows = {slot.batch_index};
      }
    } catch (const std::exception& e) {
      // llama.cpp's grammar code throws when no token can continue; fail this request only.
      FailSlot(slot, std::string("sampling failed: ") + e.what(), events);
      continue;
    }
    if (slot.generated == 0) slot.first_token = Clock::now();
    bool going = true;
    for (size_t i = 0; going && i < tokens.size(); i++) going = AcceptToken(slot, tokens[i], rows[i], events);
    if (!going) continue;
    slot.pending = tokens.back();
    slot.has_pending = true;
    if (!slot.out_text.empty()) EmitChunk(slot, events);
  }
}

// One generated token (sampled from batch row `row`) into the slot's output; false when it ends
// the generation (end of generation, a stop string, max_tokens, a full context).
bool Scheduler::AcceptToken(Slot& slot, llama_token token, int32_t row, std::vector<Event>* events) {
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  Request& req = *slot.req;
  if (llama_vocab_is_eog(vocab, token)) {
    Finish(slot, "stop", -1, events);
    return false;
  }
  slot.generated++;
  const std::string piece = TokenToPiece(vocab, token, req.render_special);
  slot.out_tokens.push_back(token);
  if (req.top_logprobs >= 0) slot.out_logprobs.push_back(MakeLogprob(req, row, token));
  TextStream::Step step = slot.text.Push(piece);
  slot.out_text += step.emit;
  if (step.stop_index >= 0) {
    Finish(slot, "stop", step.stop_index, events);
  } else if (req.max_tokens >= 0 && slot.generated >= req.max_tokens) {
    Finish(slot, "length", -1, events);
  } else if (slot.cache.size() + 1 >= static_cast<size_t>(context_size_)) {
    Finish(slot, "length", -1, events);  // prompt + completion fill the slot's context
  } else {
    return true;
  }
  return false;
}

Scheduler::TokenLogprob Scheduler::MakeLogprob(const Request& req, int32_t row, llama_token token) const {
  const llama_vocab* vocab = llama_model_get_vocab(model_.get());
  TokenLogprob lp;
  lp.token = token;
  lp.text = TokenToPiece(vocab, token, req.render_special);
  ComputeLogprobs(llama_get_logits_ith(ctx_, row), n_vocab_, token, req.top_logprobs, &lp.logprob, &lp.top);
  for (const TokenProb& t : lp.top) lp.top_text.push_back(TokenToPiece(vocab, t.token, req.render_special));
  return lp;
}

// Followers whose leader's cells are ready copy them (llama.cpp's seq_cp; across per-slot
// streams the buffer is copied before the next decode). A choice of the same prompt (n > 1) takes
// every cell once the leader's prompt is decoded, and samples its first token from the leader's
// logits row with its own sampler; a follower sharing a prefix takes that prefix as soon as the
// leader has evaluated it, then evaluates the rest of its own prompt.
void Scheduler::SharePrompts() {
  for (Slot& f : slots_) {
    if (!f.req || !f.awaiting_share) continue;
    const Slot* leader = nullptr;
    for (const Slot& l : slots_) {
      if (l.req && !l.awaiting_share && l.req->id == f.leader) leader = &l;
    }
    if (!leader) continue;
    if (f.shared_prefix == f.req->prompt.size()) {
      if (leader->batch_index < 0 || leader->generated > 0 || leader->prompt_done != leader->req->prompt.size()) continue;
      CopyPrefix(f, *leader, leader->cache.size());
      f.exact = leader->exact;
      f.batch_index = leader->batch_index;
    } else if (leader->exact >= f.shared_prefix) {
      CopyPrefix(f, *leader, f.shared_prefix);
      f.cached = f.shared_prefix;
    } else {
      continue;
    }
    f.prompt_done = f.cache.size();
    f.awaiting_share = false;
  }
}

// A leader that ends before its followers' cells are ready leaves them to evaluate their prompts.
void Scheduler::ReleaseFollowers(double leader_id) {
  for (Slot& f : slots_) {
    if (f.req && f.awaiting_share && f.leader == leader_id) f.awaiting_share = false;
  }
}

// Prompt token p+1's log-probability comes from the logits of row p (echo with logprobs).
void Scheduler::CollectPromptLogprobs() {
  for (Slot& slot : slots_) {
    if (!slot.req) continue;
    for (const auto& [row, pos] : slot.prompt_rows) {
      slot.out_prompt_logprobs.push_back(MakeLogprob(*slot.req, row, slot.req->prompt[pos + 1]));
    }
    slot.prompt_rows.clear();
  }
}

void Scheduler::EmitChunk(Slot& slot, std::vector<Event>* events) {
  Event e;
  e.id = slot.req->id;
  e.kind = Event::Kind::Chunk;
  e.text.swap(slot.out_text);
  e.tokens.swap(slot.out_tokens);
  e.logprobs.swap(slot.out_logprobs);
  e.prompt_logprobs.swap(slot.out_prompt_logprobs);
  events->push_back(std::move(e));
}

void Scheduler::Finish(Slot& slot, const char* reason, int stop_index, std::vector<Event>* events) {
  const Clock::time_point now = Clock::now();
  if (stop_index < 0) slot.out_text += slot.text.Flush();
  if (!slot.out_text.empty() || !slot.out_tokens.empty() || !slot.out_prompt_logprobs.empty()) EmitChunk(slot, events);
  Request& req = *slot.req;
  ReleaseFollowers(req.id);
  slot.awaiting_share = false;
  Event e;
  e.id = req.id;
  e.kind = Event::Kind::Done;
  e.final = true;
  e.finish_reason = reason;
  e.stop_index = stop_index;
  e.prompt_tokens = static_cast<int>(req.prompt.size());
  e.completion_tokens = slot.generated;
  e.cached_tokens = static_cast<int>(slot.cached);
  e.draft_tokens = slot.drafted;
  e.draft_accepted = slot.draft_accepted;
  e.queue_ms = MsBetween(req.submitted, slot.assigned);
  const bool started = slot.generated > 0 || std::strcmp(reason, "cancelled") != 0;
  e.prompt_ms = started ? MsBetween(slot.assigned, slot.first_token) : MsBetween(slot.assigned, now);
  e.generation_ms = started ? MsBetween(slot.first_token, now) : 0;
  events->push_back(std::move(e));
  slot.req.reset();
  slot.has_pending = false;
  slot.batch_index = -1;
  slot.last_used = ++use_counter_;
  active_slots_--;
  stat_active_--;
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_--;
}

void Scheduler::ClearSlotCache(Slot& slot) {
  RemoveCells(slot, 0);
  slot.cache.clear();
  slot.exact = 0;
}

}  // namespace gguf_serve
