// The draft model's context in the Scheduler (speculative decoding with --spec-draft-model): one
// sequence per slot, so slots speculate independently. llama.cpp's drafter (common/speculative's
// draft-simple) drafts for a sequence from the cells this context holds for it, so they must be
// the target's: every step's rows are decoded here too (its `process`), removals and copies of a
// slot's cells are done here too, and what cannot be mirrored (cells restored from host memory,
// a request that does not speculate) is caught up by decoding the missing tokens before the slot
// next drafts. What the draft context holds never changes a text (the target verifies every
// draft), only how many drafts are accepted.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "errors.h"
#include "js_options.h"
#include "log.h"
#include "scheduler.h"
#include "speculative.h"  // llama.cpp's common/speculative.h

namespace gguf_serve {

void Scheduler::InitDraftContext(Napi::Env env, Napi::Object o, const llama_context_params& target) {
  Model* draft = Model::FromValue(env, o.Get("draftModel"));
  draft_model_ = draft->handle();
  if (!llama_model_has_decoder(draft_model_.get()) || llama_model_has_encoder(draft_model_.get())) {
    Throw(env, kCodeInvalidArgument, "the draft model must be a decoder-only text model");
  }
  llama_context_params params = target;  // the same cells per slot, batch, threads and KV layout
  // One output per sequence: the drafter samples each drafting sequence's next token; the rows
  // mirrored from the target's steps only fill the cache.
  params.n_outputs_max = static_cast<uint32_t>(parallel_);
  params.n_outputs_max_per_seq = 1;
  params.type_k = params.type_v = GGML_TYPE_F16;
  TakeRecentErrors();
  draft_ctx_ = llama_init_from_model(draft_model_.get(), params);
  if (!draft_ctx_) {
    const std::string reason = TakeRecentErrors();
    Throw(env, kCodeEngine, "cannot create the draft model's context of " + std::to_string(params.n_ctx) + " tokens" +
                                (reason.empty() ? "" : ": " + reason));
  }
  draft_batch_ = llama_batch_init(batch_size_, 0, 1);
}

// Why llama.cpp's drafter refused the draft model's vocabulary (it logs its reason only at debug
// level): the first difference of the kinds its check looks at, in its order.
std::string Scheduler::DescribeVocabMismatch() const {
  if (!draft_model_) return "";
  const llama_vocab* t = llama_model_get_vocab(model_.get());
  const llama_vocab* d = llama_model_get_vocab(draft_model_.get());
  const int nt = llama_vocab_n_tokens(t), nd = llama_vocab_n_tokens(d);
  if (llama_vocab_type(t) != llama_vocab_type(d)) return "its tokenizer is of another type";
  if (llama_vocab_bos(t) != llama_vocab_bos(d) || llama_vocab_eos(t) != llama_vocab_eos(d)) return "its BOS or EOS token differs";
  if (std::abs(nt - nd) > 128) {
    return "the target's vocabulary has " + std::to_string(nt) + " tokens, the draft model's " + std::to_string(nd);
  }
  for (llama_token i = 5; i < std::min(nt, nd); i++) {
    if (std::strcmp(llama_vocab_get_text(t, i), llama_vocab_get_text(d, i)) != 0) {
      return "token " + std::to_string(i) + " is '" + llama_vocab_get_text(t, i) + "' in the target's vocabulary, '" +
             llama_vocab_get_text(d, i) + "' in the draft model's";
    }
  }
  return "";
}

// After a step of the target: the same rows into the draft context, for each slot whose draft
// cells were up to date before it (the others catch up when they next draft).
void Scheduler::MirrorStepToDraft() {
  if (!draft_ctx_) return;
  draft_batch_.n_tokens = 0;
  std::vector<bool> mirrored(slots_.size(), false), checked(slots_.size(), false);
  for (int32_t i = 0; i < batch_.n_tokens; i++) {
    const llama_seq_id seq = batch_.seq_id[i][0];
    Slot& slot = slots_[seq];
    if (!checked[seq]) {
      checked[seq] = true;
      mirrored[seq] = MaySpeculate(slot) && slot.draft_cells == static_cast<size_t>(batch_.pos[i]);
    }
    if (!mirrored[seq]) continue;
    const int32_t j = draft_batch_.n_tokens++;
    draft_batch_.token[j] = batch_.token[i];
    draft_batch_.pos[j] = batch_.pos[i];
    draft_batch_.n_seq_id[j] = 1;
    draft_batch_.seq_id[j][0] = seq;
    draft_batch_.logits[j] = false;
  }
  if (draft_batch_.n_tokens == 0) return;
  const bool ok = common_speculative_process(spec_, draft_batch_);
  for (Slot& slot : slots_) {
    if (!mirrored[slot.seq]) continue;
    if (ok) {
      slot.draft_cells = slot.cache.size();
    } else {
      llama_memory_seq_rm(llama_get_memory(draft_ctx_), slot.seq, -1, -1);
      slot.draft_cells = 0;
    }
  }
  if (!ok) TakeRecentErrors();
}

// Decodes the slot's tokens the draft context lacks; false if that failed (the slot then does not
// draft this step).
bool Scheduler::CatchUpDraft(Slot& slot) {
  llama_memory_t mem = llama_get_memory(draft_ctx_);
  while (slot.draft_cells < slot.cache.size()) {
    const size_t n = std::min(slot.cache.size() - slot.draft_cells, static_cast<size_t>(batch_size_));
    draft_batch_.n_tokens = 0;
    for (size_t k = 0; k < n; k++) {
      const int32_t j = draft_batch_.n_tokens++;
      draft_batch_.token[j] = slot.cache[slot.draft_cells + k];
      draft_batch_.pos[j] = static_cast<llama_pos>(slot.draft_cells + k);
      draft_batch_.n_seq_id[j] = 1;
      draft_batch_.seq_id[j][0] = slot.seq;
      draft_batch_.logits[j] = k + 1 == n;
    }
    if (llama_decode(draft_ctx_, draft_batch_) != 0) {
      TakeRecentErrors();
      llama_memory_seq_rm(mem, slot.seq, -1, -1);
      slot.draft_cells = 0;
      return false;
    }
    slot.draft_cells += n;
  }
  return true;
}

// Removes the slot's cells from position `from` on, in the target's context and the draft's;
// the target's answer (false: llama.cpp cannot remove part of this sequence).
bool Scheduler::RemoveCells(Slot& slot, size_t from) {
  const llama_pos p0 = static_cast<llama_pos>(from);
  if (draft_ctx_) {
    llama_memory_seq_rm(llama_get_memory(draft_ctx_), slot.seq, p0, -1);
    slot.draft_cells = std::min(slot.draft_cells, from);
  }
  return llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, p0, -1);
}

// Copies another slot's cells in [p0, p1) (-1: all) into this slot's empty sequence, in both
// contexts (across per-slot KV streams llama.cpp copies the buffer at each context's next decode).
void Scheduler::CopyCells(const Slot& from, Slot& to, llama_pos p0, llama_pos p1) {
  llama_memory_seq_cp(llama_get_memory(ctx_), from.seq, to.seq, p0, p1);
  if (!draft_ctx_) return;
  llama_memory_seq_cp(llama_get_memory(draft_ctx_), from.seq, to.seq, p0, p1);
  to.draft_cells = p1 < 0 ? from.draft_cells : std::min(from.draft_cells, static_cast<size_t>(p1));
}

// Frees the drafter and both contexts (in that order: the drafter uses the draft context).
void Scheduler::ReleaseContexts() {
  if (spec_) common_speculative_free(spec_);
  spec_ = nullptr;
  if (draft_batch_.token) llama_batch_free(draft_batch_);
  draft_batch_ = {};
  if (draft_ctx_) llama_free(draft_ctx_);
  draft_ctx_ = nullptr;
  draft_model_.reset();
  if (batch_.token) llama_batch_free(batch_);
  batch_ = {};
  if (ctx_) llama_free(ctx_);
  ctx_ = nullptr;
}

}  // namespace gguf_serve
