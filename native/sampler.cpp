#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "common.h"
#include "errors.h"
#include "js_options.h"
#include "log.h"
#include "sampling.h"  // llama.cpp's common/sampling.h (this folder has no file of that name)
#include "vocab_text.h"

namespace gguf_serve {

void CommonSamplerFree::operator()(common_sampler* s) const { common_sampler_free(s); }

namespace {

std::vector<std::string> StringList(Napi::Env env, Napi::Object o, const char* key) {
  std::vector<std::string> out;
  if (!IsSet(o, key)) return out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) Throw(env, kCodeInvalidArgument, std::string(key) + " must be a list of strings");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    if (!a.Get(i).IsString()) Throw(env, kCodeInvalidArgument, std::string(key) + " must be a list of strings");
    out.push_back(a.Get(i).As<Napi::String>());
  }
  return out;
}

std::string StringOption(Napi::Env env, Napi::Object o, const char* key) {
  if (!IsSet(o, key)) return "";
  if (!o.Get(key).IsString()) Throw(env, kCodeInvalidArgument, std::string(key) + " must be a string");
  return o.Get(key).As<Napi::String>();
}

// Triggers that wake a lazy grammar: [{type: 'word'|'pattern'|'pattern_full'|'token', value}].
// A trigger that is one token is matched by id, as llama-server does.
void ReadTriggers(Napi::Env env, Napi::Object o, const llama_vocab* vocab, common_params_sampling* p) {
  if (!IsSet(o, "grammarTriggers")) return;
  if (!o.Get("grammarTriggers").IsArray()) Throw(env, kCodeInvalidArgument, "grammarTriggers must be a list");
  Napi::Array list = o.Get("grammarTriggers").As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    if (!list.Get(i).IsObject()) Throw(env, kCodeInvalidArgument, "grammarTriggers entries must be objects");
    Napi::Object t = list.Get(i).As<Napi::Object>();
    const std::string type = StringOption(env, t, "type");
    const std::string value = StringOption(env, t, "value");
    common_grammar_trigger trigger;
    trigger.value = value;
    if (type == "word") {
      auto ids = common_tokenize(vocab, value, false, true);
      if (ids.size() == 1) {
        trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN;
        trigger.token = ids[0];
        p->preserved_tokens.insert(ids[0]);
      } else {
        trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_WORD;
      }
    } else if (type == "pattern") {
      trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN;
    } else if (type == "pattern_full") {
      trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL;
    } else if (type == "token") {
      auto ids = common_tokenize(vocab, value, false, true);
      if (ids.size() != 1) Throw(env, kCodeInvalidArgument, "grammar trigger token '" + value + "' is not one token");
      trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN;
      trigger.token = ids[0];
    } else {
      Throw(env, kCodeInvalidArgument, "grammar trigger type must be word, pattern, pattern_full or token");
    }
    p->grammar_triggers.push_back(std::move(trigger));
  }
}

// The generation-prompt tokens llama.cpp feeds a template's grammar before the answer (common/
// sampling.cpp does the same: a space some tokenizers put before the first token is not fed).
std::vector<llama_token> GrammarPrefill(const llama_vocab* vocab, const std::string& generation_prompt) {
  std::vector<llama_token> out;
  const auto tokens = common_tokenize(vocab, generation_prompt, false, true);
  for (size_t i = 0; i < tokens.size(); i++) {
    const std::string piece = common_token_to_piece(vocab, tokens[i], true);
    if (i == 0 && !piece.empty() && std::isspace(static_cast<unsigned char>(piece[0])) &&
        !std::isspace(static_cast<unsigned char>(generation_prompt[0]))) {
      continue;
    }
    out.push_back(tokens[i]);
  }
  return out;
}

// reasoningBudget: {tokens, start, end: [..], message}: thinking is cut after `tokens` tokens by
// forcing message + the first end tag (llama.cpp's reasoning-budget sampler, which matches tags
// as token sequences: they are spelled as the output spells them). When the template's
// generation prompt opens the thinking block itself, that prompt is the start sequence: it is
// fed to the sampler before the answer, so counting starts with the first generated token.
void ReadReasoningBudget(Napi::Env env, Napi::Object o, const llama_vocab* vocab, common_params_sampling* p) {
  if (!IsSet(o, "reasoningBudget")) return;
  if (!o.Get("reasoningBudget").IsObject()) Throw(env, kCodeInvalidArgument, "reasoningBudget must be an object");
  Napi::Object r = o.Get("reasoningBudget").As<Napi::Object>();
  p->reasoning_budget_tokens = IntOption(env, r, "tokens", -1, -1, 1 << 30);
  const std::string start = StringOption(env, r, "start");
  const std::vector<std::string> ends = StringList(env, r, "end");
  const std::string& prompt = p->generation_prompt;
  const size_t opened = start.empty() ? std::string::npos : prompt.rfind(start);
  bool open_in_prompt = opened != std::string::npos;
  for (const auto& tag : ends) open_in_prompt = open_in_prompt && prompt.find(tag, opened) == std::string::npos;
  p->reasoning_budget_start = open_in_prompt ? GrammarPrefill(vocab, prompt) : TokensSpelling(vocab, start);
  for (const auto& tag : ends) p->reasoning_budget_end.push_back(TokensSpelling(vocab, tag));
  p->reasoning_budget_message = StringOption(env, r, "message");
  if (!p->reasoning_budget_end.empty()) {
    llama_tokens forced = TokensSpelling(vocab, p->reasoning_budget_message);
    forced.insert(forced.end(), p->reasoning_budget_end.front().begin(), p->reasoning_budget_end.front().end());
    p->reasoning_budget_forced = std::move(forced);
  }
}

}  // namespace

RequestSampler BuildSampler(Napi::Env env, Napi::Object o, const llama_model* model, int32_t context_size,
                            const std::vector<llama_token>& eog_tokens) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  common_params_sampling p;
  p.no_perf = true;
  p.temp = FloatOption(env, o, "temperature", 1.0f, 0.0f, 100.0f);
  p.top_k = IntOption(env, o, "topK", 0, 0, n_vocab);
  p.top_p = FloatOption(env, o, "topP", 1.0f, 0.0f, 1.0f);
  p.min_p = FloatOption(env, o, "minP", 0.0f, 0.0f, 1.0f);
  p.typ_p = FloatOption(env, o, "typicalP", 1.0f, 0.0f, 1.0f);
  p.penalty_repeat = FloatOption(env, o, "repeatPenalty", 1.0f, 0.0001f, 100.0f);
  p.penalty_last_n = IntOption(env, o, "repeatLastN", 64, -1, 1 << 20);
  if (p.penalty_last_n < 0) p.penalty_last_n = context_size;
  p.penalty_present = FloatOption(env, o, "presencePenalty", 0.0f, -100.0f, 100.0f);
  p.penalty_freq = FloatOption(env, o, "frequencyPenalty", 0.0f, -100.0f, 100.0f);
  p.mirostat = IntOption(env, o, "mirostat", 0, 0, 2);
  p.mirostat_tau = FloatOption(env, o, "mirostatTau", 5.0f, 0.0f, 100.0f);
  p.mirostat_eta = FloatOption(env, o, "mirostatEta", 0.1f, 0.0f, 1.0f);
  p.dynatemp_range = FloatOption(env, o, "dynatempRange", 0.0f, 0.0f, 100.0f);
  p.dynatemp_exponent = FloatOption(env, o, "dynatempExponent", 1.0f, 0.0f, 100.0f);
  p.dry_multiplier = FloatOption(env, o, "dryMultiplier", 0.0f, 0.0f, 100.0f);
  p.dry_base = FloatOption(env, o, "dryBase", 1.75f, 1.0f, 100.0f);
  p.dry_allowed_length = IntOption(env, o, "dryAllowedLength", 2, 0, 1 << 20);
  p.dry_penalty_last_n = IntOption(env, o, "dryPenaltyLastN", -1, -1, 1 << 20);
  if (p.dry_penalty_last_n < 0) p.dry_penalty_last_n = context_size;
  if (IsSet(o, "drySequenceBreakers")) p.dry_sequence_breakers = StringList(env, o, "drySequenceBreakers");
  p.xtc_probability = FloatOption(env, o, "xtcProbability", 0.0f, 0.0f, 1.0f);
  p.xtc_threshold = FloatOption(env, o, "xtcThreshold", 0.1f, 0.0f, 1.0f);
  p.top_n_sigma = FloatOption(env, o, "topNSigma", -1.0f, -1.0f, 100.0f);
  if (IsSet(o, "samplers")) {
    const auto names = StringList(env, o, "samplers");
    p.samplers = common_sampler_types_from_names(names);
    if (p.samplers.size() != names.size()) Throw(env, kCodeInvalidArgument, "samplers: unknown sampler name");
  }
  if (IsSet(o, "seed")) {
    const double seed = o.Get("seed").IsNumber() ? o.Get("seed").As<Napi::Number>().DoubleValue() : NAN;
    if (!(seed >= 0 && seed <= 4294967295.0) || seed != std::floor(seed)) {
      Throw(env, kCodeInvalidArgument, "seed must be an integer from 0 to 4294967295");
    }
    p.seed = static_cast<uint32_t>(seed);
  }
  if (IsSet(o, "logitBias")) {
    if (!o.Get("logitBias").IsArray()) Throw(env, kCodeInvalidArgument, "logitBias must be a list of [token, bias] pairs");
    Napi::Array pairs = o.Get("logitBias").As<Napi::Array>();
    for (uint32_t i = 0; i < pairs.Length(); i++) {
      Napi::Value pair = pairs.Get(i);
      if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) {
        Throw(env, kCodeInvalidArgument, "logitBias must be a list of [token, bias] pairs");
      }
      Napi::Array pr = pair.As<Napi::Array>();
      const double token = pr.Get(0u).ToNumber().DoubleValue();
      const double bias = pr.Get(1u).ToNumber().DoubleValue();
      if (!(token >= 0 && token < n_vocab) || token != std::floor(token)) {
        Throw(env, kCodeInvalidArgument, "logitBias: token id " + std::to_string(token) + " is not in the vocabulary");
      }
      if (std::isnan(bias)) Throw(env, kCodeInvalidArgument, "logitBias: bias must be a number");
      p.logit_bias.push_back({static_cast<llama_token>(token), static_cast<float>(bias)});
    }
  }
  if (BoolOption(o, "ignoreEos", false)) {
    for (llama_token t : eog_tokens) p.logit_bias.push_back({t, -INFINITY});
  }
  const std::string grammar = StringOption(env, o, "grammar");
  if (!grammar.empty()) {
    // A grammar from a chat template (tools, a JSON schema) may need the generation prompt fed
    // to it; one the user wrote never does.
    const bool from_template = BoolOption(o, "grammarFromTemplate", false);
    p.grammar = common_grammar(from_template ? COMMON_GRAMMAR_TYPE_TOOL_CALLS : COMMON_GRAMMAR_TYPE_USER, grammar);
    p.grammar_lazy = BoolOption(o, "grammarLazy", false);
    ReadTriggers(env, o, vocab, &p);
    for (const auto& word : StringList(env, o, "preservedTokens")) {
      auto ids = common_tokenize(vocab, word, false, true);
      if (ids.size() == 1) p.preserved_tokens.insert(ids[0]);
    }
    if (p.grammar_lazy && p.grammar_triggers.empty()) Throw(env, kCodeInvalidArgument, "a lazy grammar needs triggers");
  }
  p.generation_prompt = StringOption(env, o, "generationPrompt");
  ReadReasoningBudget(env, o, vocab, &p);
  TakeRecentErrors();
  common_sampler* s = nullptr;
  try {
    s = common_sampler_init(model, p);
  } catch (const std::exception& e) {
    std::string reason = TakeRecentErrors();
    Throw(env, kCodeInvalidArgument, std::string("invalid grammar: ") + e.what() + (reason.empty() ? "" : ": " + reason));
  }
  if (!s) {
    std::string reason = TakeRecentErrors();
    Throw(env, kCodeInvalidArgument, "invalid grammar" + (reason.empty() ? std::string() : ": " + reason));
  }
  RequestSampler out;
  out.chain = SamplerPtr(s);
  // The reasoning budget forces its own tokens; with it the closer stays out of the way. With the
  // end of generation banned an answer cannot close early, only be cut by maxTokens: no closer.
  const bool bounded = IntOption(env, o, "maxTokens", -1, -1, 1 << 30) >= 0;
  if (!grammar.empty() && !p.grammar_lazy && bounded && p.reasoning_budget_start.empty() && !BoolOption(o, "ignoreEos", false) &&
      BoolOption(o, "closeGrammar", true)) {
    const bool prefill = common_grammar_needs_prefill(p.grammar) && !p.generation_prompt.empty();
    auto closer = std::make_unique<GrammarCloser>(model, grammar, prefill ? GrammarPrefill(vocab, p.generation_prompt)
                                                                          : std::vector<llama_token>());
    if (closer->valid()) out.closer = std::move(closer);
  }
  return out;
}

llama_token SampleToken(RequestSampler& sampler, llama_context* ctx, int32_t batch_index, int64_t tokens_left) {
  common_sampler* chain = sampler.chain.get();
  llama_token token = common_sampler_sample(chain, ctx, batch_index);
  GrammarCloser* closer = sampler.closer.get();
  if (closer && tokens_left >= 1 && !closer->Fits(token, tokens_left - 1)) {
    // Sample this step again among the tokens that keep the answer closable: mask the others in
    // the step's logits for the chain, then put the logits back (logprobs report the model's).
    float* logits = llama_get_logits_ith(ctx, batch_index);
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    const std::vector<llama_token> allowed = closer->Allowed(logits, n_vocab, tokens_left - 1, 40);
    if (!allowed.empty()) {
      std::vector<float> saved(logits, logits + n_vocab);
      std::fill(logits, logits + n_vocab, -INFINITY);
      for (llama_token t : allowed) logits[t] = saved[t];
      try {
        token = common_sampler_sample(chain, ctx, batch_index);
      } catch (...) {
        std::copy(saved.begin(), saved.end(), logits);
        throw;
      }
      std::copy(saved.begin(), saved.end(), logits);
    }
  }
  common_sampler_accept(chain, token, true);
  if (closer) {
    try {
      closer->Accept(token);
    } catch (const std::exception&) {
      sampler.closer.reset();  // its copy of the grammar lost track: steer no more, the chain still constrains
    }
  }
  return token;
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
