// Speculative decoding in the Scheduler, with llama.cpp's drafters (common/speculative): an
// n-gram drafter that continues a slot's text from n-grams of its own history, or a draft model
// (a small model with the same vocabulary, in a context of its own: scheduler_draft_model.cpp).
// Before a step, each generating slot may draft tokens; the step decodes the pending token and
// the draft together, and the request's sampler verifies them row by row
// (common_sampler_sample_and_accept_n, llama-server's rule): the drafted tokens it would have
// sampled itself are kept, the first it would not is replaced by its own choice, the rest are
// dropped from the KV cache. A step then yields 1 to n+1 tokens.
#include <algorithm>
#include <climits>

#include "errors.h"
#include "js_options.h"
#include "sampling.h"     // llama.cpp's common/sampling.h
#include "scheduler.h"
#include "speculative.h"  // llama.cpp's common/speculative.h

namespace gguf_serve {

// After the target context exists: the draft model's context needs it (llama.cpp's drafter checks
// the two vocabularies against each other).
void Scheduler::InitSpeculation(Napi::Env env, Napi::Object o, const llama_context_params& target) {
  const bool draft_model = IsSet(o, "draftModel");
  if (!IsSet(o, "specType") && !draft_model) return;
  common_params_speculative params;
  if (draft_model) {
    if (IsSet(o, "specType")) Throw(env, kCodeInvalidArgument, "specType and draftModel: give one drafter, not both");
    InitDraftContext(env, o, target);
    params.types = {COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE};
    params.draft.ctx_tgt = ctx_;
    params.draft.ctx_dft = draft_ctx_;
    params.draft.n_max = IntOption(env, o, "specDraftMax", 16, 1, 1024);
    params.draft.n_min = IntOption(env, o, "specDraftMin", 0, 0, params.draft.n_max);
    spec_type_ = "draft-simple";
  } else {
    if (IsSet(o, "specDraftMin")) Throw(env, kCodeInvalidArgument, "specDraftMin is for a draft model (draftModel)");
    spec_type_ = o.Get("specType").IsString() ? o.Get("specType").As<Napi::String>().Utf8Value() : "";
    const common_speculative_type type = common_speculative_type_from_name(spec_type_);
    if (type != COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE && type != COMMON_SPECULATIVE_TYPE_NGRAM_MAP_K &&
        type != COMMON_SPECULATIVE_TYPE_NGRAM_MAP_K4V && type != COMMON_SPECULATIVE_TYPE_NGRAM_MOD) {
      Throw(env, kCodeInvalidArgument, "specType must be ngram-simple, ngram-map-k, ngram-map-k4v or ngram-mod (or give draftModel)");
    }
    params.types = {type};
    const int32_t n = IntOption(env, o, "specNgramSize", 12, 1, 1024);
    const int32_t m = IntOption(env, o, "specDraftMax", 48, 1, 1024);
    for (common_params_speculative_ngram_map* map : {&params.ngram_simple, &params.ngram_map_k, &params.ngram_map_k4v}) {
      map->size_n = static_cast<uint16_t>(n);
      map->size_m = static_cast<uint16_t>(m);
    }
    params.ngram_mod.n_match = n;
    params.ngram_mod.n_max = m;
    params.ngram_mod.n_min = std::min(params.ngram_mod.n_min, m);
  }
  try {
    spec_ = common_speculative_init(params, static_cast<uint32_t>(parallel_));
  } catch (const std::exception& e) {
    // llama.cpp's draft-model drafter refuses a draft whose vocabulary is not the target's.
    spec_ = nullptr;
    const std::string why = DescribeVocabMismatch();
    if (!why.empty()) Throw(env, kCodeInvalidArgument, "the draft model's vocabulary is not the target's: " + why);
    Throw(env, kCodeEngine, "cannot start the " + spec_type_ + " drafter: " + e.what());
  }
  if (!spec_) Throw(env, kCodeEngine, "cannot start the " + spec_type_ + " drafter");
  spec_max_ = common_speculative_n_max(spec_);
}

// Whether a slot's request drafts at all: it may opt out, and a grammar kept closable within
// maxTokens must see every token it accepts one by one.
bool Scheduler::MaySpeculate(const Slot& slot) const {
  return spec_ && slot.req && slot.req->speculative && !slot.req->sampler.closer;
}

// Drafts for every generating slot that may speculate: at most what its token budget and its
// context leave after the pending token.
void Scheduler::DraftSlots() {
  if (!spec_) return;
  std::vector<Slot*> drafting;
  for (Slot& slot : slots_) {
    slot.draft.clear();
    slot.draft_rows.clear();
    common_speculative_draft_params& dp = common_speculative_get_draft_params(spec_, slot.seq);
    dp.drafting = false;
    if (!MaySpeculate(slot) || !slot.has_pending) continue;
    int64_t n_max = std::min<int64_t>(spec_max_, static_cast<int64_t>(context_size_) - 2 - static_cast<int64_t>(slot.cache.size()));
    if (slot.req->max_tokens >= 0) n_max = std::min<int64_t>(n_max, slot.req->max_tokens - slot.generated - 1);
    n_max = std::min<int64_t>(n_max, slot.draft_limit);
    if (n_max <= 0) continue;
    // The draft model continues from the slot's cells: its context must hold all of them.
    if (draft_ctx_ && !CatchUpDraft(slot)) continue;
    dp = {true, static_cast<int32_t>(n_max), static_cast<llama_pos>(slot.cache.size()), slot.pending, &slot.cache, &slot.draft};
    drafting.push_back(&slot);
  }
  if (drafting.empty()) return;
  common_speculative_draft(spec_);
  // The draft model decoded the pending token and its draft: the step decodes them again in the
  // target's batch (MirrorStepToDraft), so their cells go now.
  if (draft_ctx_) {
    for (Slot* slot : drafting) {
      llama_memory_seq_rm(llama_get_memory(draft_ctx_), slot->seq, static_cast<llama_pos>(slot->cache.size()), -1);
    }
  }
}

// The slot's draft into the batch after its pending token, at most `room` tokens of it.
void Scheduler::AddDrafts(Slot& slot, int32_t room) {
  if (slot.draft.size() > static_cast<size_t>(std::max(0, room))) slot.draft.resize(static_cast<size_t>(std::max(0, room)));
  for (llama_token t : slot.draft) {
    const int32_t i = batch_.n_tokens++;
    batch_.token[i] = t;
    batch_.pos[i] = static_cast<llama_pos>(slot.cache.size());
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = slot.seq;
    batch_.logits[i] = true;
    slot.draft_rows.push_back(i);
    slot.cache.push_back(t);
  }
  stat_drafted_.fetch_add(static_cast<int64_t>(slot.draft.size()), std::memory_order_relaxed);
  slot.drafted += static_cast<int32_t>(slot.draft.size());
}

// Samples the pending token's row and the draft's rows; returns the tokens this step yields
// (the accepted drafts, then the sampler's own token) and drops the rejected drafts' cells.
std::vector<llama_token> Scheduler::VerifyDrafts(Slot& slot) {
  std::vector<int> rows = {slot.batch_index};
  rows.insert(rows.end(), slot.draft_rows.begin(), slot.draft_rows.end());
  std::vector<llama_token> ids = common_sampler_sample_and_accept_n(slot.req->sampler.chain.get(), ctx_, rows, slot.draft);
  const size_t accepted = ids.size() - 1;
  common_speculative_accept(spec_, slot.seq, static_cast<uint16_t>(accepted));
  stat_draft_accepted_.fetch_add(static_cast<int64_t>(accepted), std::memory_order_relaxed);
  slot.draft_accepted += static_cast<int32_t>(accepted);
  const size_t rejected = slot.draft.size() - accepted;
  // Draft length follows acceptance: a draft taken whole doubles the next one's limit, a rejected
  // one halves it (not below one past what was taken). Text the drafter cannot predict (sampled,
  // or no longer repeating) then soon costs one verified row per step, not spec_max_ of them.
  slot.draft_limit = rejected == 0 ? std::min(spec_max_, 2 * slot.draft_limit)
                                   : std::max({1, slot.draft_limit / 2, static_cast<int32_t>(accepted) + 1});
  if (rejected > 0) {
    slot.cache.resize(slot.cache.size() - rejected);
    RemoveCells(slot, slot.cache.size());
  }
  slot.draft_rows.resize(accepted);  // the rows of the kept drafts, for their logprobs
  return ids;
}

}  // namespace gguf_serve
