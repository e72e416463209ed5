#include "grammar_closer.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

// llama.cpp's grammar internals (its own tests use them too): the public API can only mask a
// token list, not say how far a grammar is from its end.
#include "llama-grammar.h"

namespace gguf_serve {

namespace {

constexpr int64_t kUnreachable = std::numeric_limits<int64_t>::max() / 4;

int64_t Add(int64_t a, int64_t b) { return std::min(kUnreachable, a + b); }

bool IsModifier(llama_gretype t) { return t == LLAMA_GRETYPE_CHAR_RNG_UPPER || t == LLAMA_GRETYPE_CHAR_ALT; }

bool IsTerminalStart(llama_gretype t) {
  return t == LLAMA_GRETYPE_CHAR || t == LLAMA_GRETYPE_CHAR_NOT || t == LLAMA_GRETYPE_CHAR_ANY ||
         t == LLAMA_GRETYPE_TOKEN || t == LLAMA_GRETYPE_TOKEN_NOT;
}

// Does a character class starting at `pos` (CHAR or CHAR_NOT with its modifiers) take `c`?
bool ClassTakes(const llama_grammar_element* pos, uint32_t c) {
  const bool negated = pos->type == LLAMA_GRETYPE_CHAR_NOT;
  bool in = false;
  do {
    if (pos[1].type == LLAMA_GRETYPE_CHAR_RNG_UPPER) {
      in = in || (pos->value <= c && c <= pos[1].value);
      pos += 2;
    } else {
      in = in || pos->value == c;
      pos += 1;
    }
  } while (pos->type == LLAMA_GRETYPE_CHAR_ALT);
  return in != negated;
}

std::string Utf8(uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// Characters worth trying for a terminal, most useful first: what a class names, else common ones.
std::vector<uint32_t> CandidateChars(const llama_grammar_element* pos) {
  std::vector<uint32_t> out;
  if (pos->type == LLAMA_GRETYPE_CHAR) {
    for (const llama_grammar_element* p = pos;; ) {
      out.push_back(p->value);
      p += p[1].type == LLAMA_GRETYPE_CHAR_RNG_UPPER ? 2 : 1;
      if (p->type != LLAMA_GRETYPE_CHAR_ALT) break;
    }
    return out;
  }
  const std::string common = "a0 e_-.,:\"}]";
  for (char c : common) {
    if (pos->type == LLAMA_GRETYPE_CHAR_ANY || ClassTakes(pos, static_cast<unsigned char>(c))) out.push_back(c);
  }
  for (uint32_t c = 0x21; c < 0x7F; c++) {
    if (pos->type == LLAMA_GRETYPE_CHAR_ANY || ClassTakes(pos, c)) out.push_back(c);
  }
  return out;
}

}  // namespace

GrammarCloser::GrammarCloser(const llama_model* model, const std::string& grammar, const std::vector<llama_token>& prefill)
    : vocab_(llama_model_get_vocab(model)) {
  grammar_ = llama_grammar_init_impl(vocab_, grammar.c_str(), "root", false, nullptr, 0, nullptr, 0);
  if (!grammar_) return;
  ComputeMinima();
  try {
    for (llama_token t : prefill) Accept(t);
  } catch (const std::exception&) {
    llama_grammar_free_impl(grammar_);
    grammar_ = nullptr;
  }
}

GrammarCloser::~GrammarCloser() {
  if (grammar_) llama_grammar_free_impl(grammar_);
}

// The fewest characters each rule can produce (a fixed point: a rule's minimum is the least, over
// its alternatives, of the sum of its elements' minima), then per element the characters from it
// to the end of its alternative, which is what a grammar stack entry still has to produce.
void GrammarCloser::ComputeMinima() {
  const llama_grammar_rules& rules = llama_grammar_get_rules(grammar_);
  std::vector<int64_t> rule_min(rules.size(), kUnreachable);
  auto element_cost = [&](const llama_grammar_element& e) -> int64_t {
    if (e.type == LLAMA_GRETYPE_RULE_REF) return e.value < rule_min.size() ? rule_min[e.value] : kUnreachable;
    return IsTerminalStart(e.type) ? 1 : 0;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules.size(); r++) {
      int64_t best = kUnreachable, alt = 0;
      for (const llama_grammar_element& e : rules[r]) {
        if (e.type == LLAMA_GRETYPE_ALT || e.type == LLAMA_GRETYPE_END) {
          best = std::min(best, alt);
          alt = 0;
          if (e.type == LLAMA_GRETYPE_END) break;
        } else {
          alt = Add(alt, element_cost(e));
        }
      }
      if (best < rule_min[r]) {
        rule_min[r] = best;
        changed = true;
      }
    }
  }
  rest_.clear();
  for (const llama_grammar_rule& rule : rules) {
    int64_t rest = 0;
    for (size_t i = rule.size(); i-- > 0;) {
      const llama_gretype t = rule[i].type;
      rest = t == LLAMA_GRETYPE_ALT || t == LLAMA_GRETYPE_END ? 0 : Add(element_cost(rule[i]), rest);
      rest_[&rule[i]] = rest;
    }
  }
}

int64_t GrammarCloser::SequenceRest(const llama_grammar_element* pos) const {
  const auto it = rest_.find(pos);
  return it == rest_.end() ? kUnreachable : it->second;
}

int64_t GrammarCloser::Distance() const {
  int64_t best = kUnreachable;
  for (const llama_grammar_stack& stack : grammar_->stacks) {
    int64_t d = 0;
    for (const llama_grammar_element* pos : stack) d = Add(d, SequenceRest(pos));
    best = std::min(best, d);
  }
  return best;
}

int64_t GrammarCloser::DistanceAfter(llama_token token) {
  if (llama_vocab_is_eog(vocab_, token)) {
    for (const llama_grammar_stack& s : grammar_->stacks) {
      if (s.empty()) return 0;
    }
    return -1;
  }
  const llama_grammar_stacks saved_stacks = grammar_->stacks;
  const llama_partial_utf8 saved_utf8 = grammar_->partial_utf8;
  int64_t d = -1;
  try {
    llama_grammar_accept_impl(*grammar_, token);
    d = Distance();
  } catch (const std::exception&) {
    d = -1;  // the grammar does not take this token
  }
  grammar_->stacks = saved_stacks;
  grammar_->partial_utf8 = saved_utf8;
  return d;
}

bool GrammarCloser::Fits(llama_token token, int64_t tokens_after) {
  const int64_t d = DistanceAfter(token);
  return d >= 0 && d <= tokens_after;
}

std::vector<llama_token> GrammarCloser::Allowed(const float* logits, int32_t n_vocab, int64_t tokens_after, size_t limit) {
  std::vector<llama_token> allowed;
  const size_t n = std::min(limit, static_cast<size_t>(n_vocab));
  std::vector<llama_token> ids(n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [logits](llama_token a, llama_token b) { return logits[a] > logits[b]; });
  for (size_t i = 0; i < n; i++) {
    if (Fits(ids[i], tokens_after)) allowed.push_back(ids[i]);
  }
  if (!allowed.empty()) return allowed;
  // None of the likely tokens fits: write the next character of a shortest close. Its stack's top
  // is the terminal that close starts with; a token that is just one of its characters.
  const llama_grammar_stack* shortest = nullptr;
  int64_t best = kUnreachable;
  for (const llama_grammar_stack& stack : grammar_->stacks) {
    int64_t d = 0;
    for (const llama_grammar_element* pos : stack) d = Add(d, SequenceRest(pos));
    if (d < best) {
      best = d;
      shortest = &stack;
    }
  }
  if (!shortest) return allowed;
  if (shortest->empty()) {
    if (llama_vocab_eos(vocab_) != LLAMA_TOKEN_NULL) allowed.push_back(llama_vocab_eos(vocab_));
    return allowed;
  }
  const llama_grammar_element* top = shortest->back();
  if (top->type == LLAMA_GRETYPE_TOKEN) return {static_cast<llama_token>(top->value)};
  if (single_char_tokens_.empty()) IndexSingleCharTokens();
  llama_token pick = LLAMA_TOKEN_NULL;
  int64_t pick_d = kUnreachable;
  for (uint32_t c : CandidateChars(top)) {
    auto it = single_char_tokens_.find(c);
    if (it == single_char_tokens_.end()) continue;
    const int64_t d = DistanceAfter(it->second);
    if (d >= 0 && d < pick_d) {
      pick = it->second;
      pick_d = d;
      if (d < best) break;  // it moved the answer a character closer to its end
    }
  }
  if (pick != LLAMA_TOKEN_NULL) allowed.push_back(pick);
  return allowed;
}

// Tokens whose text is exactly one character, by code point (built once, when first needed).
void GrammarCloser::IndexSingleCharTokens() {
  const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
  char buf[16];
  for (llama_token t = 0; t < n_vocab; t++) {
    if (llama_vocab_is_control(vocab_, t) || llama_vocab_is_eog(vocab_, t)) continue;
    const int32_t len = llama_token_to_piece(vocab_, t, buf, sizeof(buf), 0, false);
    if (len <= 0 || len > 4) continue;
    const std::string piece(buf, len);
    // Decode the one character, if the piece is one.
    const unsigned char b0 = static_cast<unsigned char>(piece[0]);
    const int want = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (want != len) continue;
    uint32_t c = want == 1 ? b0 : want == 2 ? (b0 & 0x1F) : want == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int i = 1; i < want; i++) c = (c << 6) | (static_cast<unsigned char>(piece[i]) & 0x3F);
    if (Utf8(c) == piece) single_char_tokens_.emplace(c, t);  // the first (lowest id) wins
  }
}

void GrammarCloser::Accept(llama_token token) {
  if (llama_vocab_is_eog(vocab_, token)) return;  // the answer ends here
  llama_grammar_accept_impl(*grammar_, token);
}

}  // namespace gguf_serve
