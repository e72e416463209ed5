#pragma once
#include <string>
#include <vector>

#include "llama.h"

// Text <-> token helpers over llama.cpp's tokenizer, growing buffers as llama.cpp asks.
namespace gguf_serve {

std::vector<llama_token> TokenizeText(const llama_vocab* vocab, const std::string& text, bool add_special,
                                      bool parse_special);
std::string TokenToPiece(const llama_vocab* vocab, llama_token token, bool render_special);
// Tokens whose pieces, as generated text, spell `text` exactly (empty if none can): what a
// sequence matcher must look for in the output, where a plain tokenization may differ (a
// SentencePiece vocabulary puts a space before a text's first word).
std::vector<llama_token> TokensSpelling(const llama_vocab* vocab, const std::string& text);
std::string DetokenizeTokens(const llama_vocab* vocab, const std::vector<llama_token>& tokens, bool remove_special,
                             bool unparse_special);

}  // namespace gguf_serve
