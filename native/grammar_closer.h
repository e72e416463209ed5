#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "llama.h"

struct llama_grammar;
struct llama_grammar_element;

namespace gguf_serve {

// Keeps a grammar-constrained answer closable within its token budget. It follows the request's
// (non-lazy) grammar token by token in a copy of its own and knows, for every grammar position,
// the fewest characters that still complete it (a fixed point over the rules). When a sampled
// token would leave more characters to write than tokens remain, the step is sampled again from
// the most likely tokens that keep the answer closable, and if none does, from the one token that
// starts the shortest close. Counting one token per character is the reserve: a JSON answer with
// an unfinished string and two open objects, `"}}`, needs its last 3 tokens for that.
class GrammarCloser {
 public:
  // grammar: GBNF text, root "root"; prefill: tokens the template already put in the prompt that
  // the sampler's grammar was fed (so both stand at the same place).
  GrammarCloser(const llama_model* model, const std::string& grammar, const std::vector<llama_token>& prefill);
  ~GrammarCloser();
  GrammarCloser(const GrammarCloser&) = delete;
  GrammarCloser& operator=(const GrammarCloser&) = delete;

  bool valid() const { return grammar_ != nullptr; }

  // The fewest characters that complete the answer from where it stands (0: it may end here).
  int64_t Distance() const;
  // Could the answer still be completed within `tokens_after` tokens once `token` is written?
  bool Fits(llama_token token, int64_t tokens_after);
  // The tokens this step may choose so that the rest fits: those of the `limit` most likely (by
  // the step's logits) that fit, else the one-character token that starts a shortest close.
  std::vector<llama_token> Allowed(const float* logits, int32_t n_vocab, int64_t tokens_after, size_t limit);
  void Accept(llama_token token);

 private:
  int64_t DistanceAfter(llama_token token);  // -1: the grammar does not accept it
  int64_t SequenceRest(const llama_grammar_element* pos) const;
  void ComputeMinima();
  void IndexSingleCharTokens();

  const llama_vocab* vocab_;
  llama_grammar* grammar_ = nullptr;
  // per grammar element (by address): characters from it to the end of its alternative
  std::unordered_map<const llama_grammar_element*, int64_t> rest_;
  std::unordered_map<uint32_t, llama_token> single_char_tokens_;  // by code point
};

}  // namespace gguf_serve
