#include "vocab_text.h"

#include <climits>
#include <stdexcept>

namespace gguf_serve {

std::vector<llama_token> TokenizeText(const llama_vocab* vocab, const std::string& text, bool add_special,
                                      bool parse_special) {
  if (text.size() > INT32_MAX / 2) throw std::length_error("text is too long to tokenize");
  std::vector<llama_token> tokens(text.size() + 4);
  int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), add_special, parse_special);
  if (n == INT32_MIN) throw std::length_error("tokenization overflow");
  if (n < 0) {
    tokens.resize(-n);
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n < 0) throw std::runtime_error("tokenization failed");
  }
  tokens.resize(n);
  return tokens;
}

std::string TokenToPiece(const llama_vocab* vocab, llama_token token, bool render_special) {
  char small[64];
  int32_t n = llama_token_to_piece(vocab, token, small, sizeof small, 0, render_special);
  if (n >= 0) return std::string(small, n);
  std::string big(-n, '\0');
  n = llama_token_to_piece(vocab, token, big.data(), static_cast<int32_t>(big.size()), 0, render_special);
  return n < 0 ? std::string() : big.substr(0, n);
}

std::vector<llama_token> TokensSpelling(const llama_vocab* vocab, const std::string& text) {
  std::vector<llama_token> tokens = TokenizeText(vocab, text, false, true);
  std::string spelled;
  for (llama_token t : tokens) spelled += TokenToPiece(vocab, t, true);
  if (spelled == text) return tokens;
  // The longest piece that starts the rest, in turn.
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  std::vector<std::string> pieces(n_vocab);
  for (llama_token t = 0; t < n_vocab; t++) pieces[t] = TokenToPiece(vocab, t, true);
  tokens.clear();
  for (size_t pos = 0; pos < text.size();) {
    llama_token best = LLAMA_TOKEN_NULL;
    size_t best_len = 0;
    for (llama_token t = 0; t < n_vocab; t++) {
      const std::string& p = pieces[t];
      if (p.size() > best_len && text.compare(pos, p.size(), p) == 0) {
        best = t;
        best_len = p.size();
      }
    }
    if (best == LLAMA_TOKEN_NULL) return {};
    tokens.push_back(best);
    pos += best_len;
  }
  return tokens;
}

std::string DetokenizeTokens(const llama_vocab* vocab, const std::vector<llama_token>& tokens, bool remove_special,
                             bool unparse_special) {
  std::string text(tokens.size() * 8 + 16, '\0');
  int32_t n = llama_detokenize(vocab, tokens.data(), static_cast<int32_t>(tokens.size()), text.data(),
                               static_cast<int32_t>(text.size()), remove_special, unparse_special);
  if (n < 0) {
    text.resize(-n);
    n = llama_detokenize(vocab, tokens.data(), static_cast<int32_t>(tokens.size()), text.data(),
                         static_cast<int32_t>(text.size()), remove_special, unparse_special);
    if (n < 0) throw std::runtime_error("detokenization failed");
  }
  text.resize(n);
  return text;
}

}  // namespace gguf_serve
