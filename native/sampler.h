#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "llama.h"

namespace gguf_serve {

struct SamplingParams {
  float temperature = 1.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float typical_p = 1.0f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint32_t seed = LLAMA_DEFAULT_SEED;
  std::vector<llama_logit_bias> logit_bias;
  std::string grammar;
};

// Builds the per-request sampler chain. Throws std::invalid_argument with llama.cpp's reason
// when the grammar does not parse.
llama_sampler* BuildSampler(const llama_vocab* vocab, const SamplingParams& params, int32_t context_size);

struct TokenProb {
  llama_token token;
  float logprob;
};

// log-softmax of the raw logits: the sampled token's log-probability and the top_n alternatives.
void ComputeLogprobs(const float* logits, int32_t n_vocab, llama_token sampled, int32_t top_n, float* sampled_logprob,
                     std::vector<TokenProb>* top);

}  // namespace gguf_serve
