#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grammar_closer.h"
#include "llama.h"

struct common_sampler;

namespace gguf_serve {

struct CommonSamplerFree {
  void operator()(common_sampler* s) const;
};
using SamplerPtr = std::unique_ptr<common_sampler, CommonSamplerFree>;

// A request's sampler: llama.cpp's common_sampler, the chain llama-server uses, so every sampler
// (penalties, DRY, top-n-sigma, top-k, typical, top-p, min-p, XTC, dynamic temperature, mirostat),
// their order, grammars (lazy ones that wake at a trigger), preserved tokens and the reasoning
// budget behave as they do there, and a seeded request can be compared with llama-server's text.
// Reads the options of a generate() call (camelCase names, ranges checked, errors name the option).
struct RequestSampler {
  SamplerPtr chain;
  // With a grammar that constrains the whole answer and a maxTokens bound: keeps the answer
  // closable in the tokens left (a JSON answer still parses when the budget runs out).
  std::unique_ptr<GrammarCloser> closer;
};

RequestSampler BuildSampler(Napi::Env env, Napi::Object options, const llama_model* model, int32_t context_size,
                            const std::vector<llama_token>& eog_tokens);

// Samples and accepts one token; tokens_left counts this one (-1: no bound).
llama_token SampleToken(RequestSampler& sampler, llama_context* ctx, int32_t batch_index, int64_t tokens_left);

struct TokenProb {
  llama_token token;
  float logprob;
};

// log-softmax of the raw logits: the sampled token's log-probability and the top_n alternatives.
void ComputeLogprobs(const float* logits, int32_t n_vocab, llama_token sampled, int32_t top_n, float* sampled_logprob,
                     std::vector<TokenProb>* top);

}  // namespace gguf_serve
