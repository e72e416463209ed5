#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "log.h"

namespace gguf_serve {

llama_sampler* BuildSampler(const llama_vocab* vocab, const SamplingParams& p, int32_t context_size) {
  llama_sampler_chain_params chain_params = llama_sampler_chain_default_params();
  chain_params.no_perf = true;
  llama_sampler* chain = llama_sampler_chain_init(chain_params);
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);

  if (!p.logit_bias.empty()) {
    llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(n_vocab, static_cast<int32_t>(p.logit_bias.size()),
                                                                 p.logit_bias.data()));
  }
  const bool penalties = p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  if (penalties && p.repeat_last_n != 0) {
    const int32_t last_n = p.repeat_last_n < 0 ? context_size : p.repeat_last_n;
    llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, last_n, p.repeat_penalty, p.frequency_penalty,
                                                                p.presence_penalty));
  }
  if (!p.grammar.empty()) {
    TakeRecentErrors();
    llama_sampler* grammar = llama_sampler_init_grammar(vocab, p.grammar.c_str(), "root");
    if (!grammar) {
      llama_sampler_free(chain);
      std::string reason = TakeRecentErrors();
      throw std::invalid_argument("invalid grammar" + (reason.empty() ? std::string() : ": " + reason));
    }
    llama_sampler_chain_add(chain, grammar);
  }
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    return chain;
  }
  // Truncations first, on the largest candidate sets; temperature then the seeded draw.
  if (p.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(p.top_k));
  if (p.typical_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_typical(p.typical_p, 1));
  if (p.top_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(p.top_p, 1));
  if (p.min_p > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_min_p(p.min_p, 1));
  llama_sampler_chain_add(chain, llama_sampler_init_temp(p.temperature));
  llama_sampler_chain_add(chain, llama_sampler_init_dist(p.seed));
  return chain;
}

void ComputeLogprobs(const float* logits, int32_t n_vocab, llama_token sampled, int32_t top_n, float* sampled_logprob,
                     std::vector<TokenProb>* top) {
  float max_logit = -INFINITY;
  for (int32_t i = 0; i < n_vocab; i++) max_logit = std::max(max_logit, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; i++) sum += std::exp(static_cast<double>(logits[i] - max_logit));
  const float log_z = max_logit + static_cast<float>(std::log(sum));
  *sampled_logprob = logits[sampled] - log_z;
  top->clear();
  if (top_n <= 0) return;
  const int32_t n = std::min(top_n, n_vocab);
  std::vector<int32_t> ids(n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                    [logits](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  for (int32_t i = 0; i < n; i++) top->push_back({ids[i], logits[ids[i]] - log_z});
}

}  // namespace gguf_serve
