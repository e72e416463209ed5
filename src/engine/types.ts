// The engine's public contract: what the HTTP layer and the benchmark harness may rely on.
// Implemented by Model (model.ts), Scheduler (scheduler.ts) and Embedder (embedder.ts),
// each a thin typed wrapper over the native class of the same name.

import type { Model } from './model.js';

export interface ModelLoadOptions {
  /** Load only the tokenizer (no weights): for vocabulary files and tokenizer tests. */
  vocabOnly?: boolean;
  /** Layers to offload to the GPU (-1 = all). Ignored by CPU builds. Default $GGUF_SERVE_GPU_LAYERS, else 0. */
  gpuLayers?: number;
  /**
   * Offloaded layers (gpuLayers) go to these ggml RPC workers' devices, then to this machine's
   * GPUs when `localGpus` is set, split by `tensorSplit` (one share per device, in that order).
   * The workers must have been added (src/rpc/workers.ts).
   */
  rpc?: { servers: string[]; tensorSplit: number[]; localGpus: boolean };
  /** Called with 0..1 as the file loads (from the JS thread). */
  onProgress?: (progress: number) => void;
  /** Aborting rejects the load with an AbortError and frees what was read. */
  signal?: AbortSignal;
}

export interface ModelMetadata {
  architecture: string;
  name: string | null;
  description: string;
  parameterCount: number;
  sizeBytes: number;
  contextLengthTrained: number;
  embeddingSize: number;
  layerCount: number;
  headCount: number;
  headCountKv: number;
  vocabSize: number;
  vocabType: 'none' | 'spm' | 'bpe' | 'wpm' | 'ugm' | 'rwkv' | 'plamo2' | 'unknown';
  bos: number | null;
  eos: number | null;
  eot: number | null;
  /** Whether the tokenizer adds BOS by itself when asked for special tokens. */
  addBos: boolean;
  /** The `tokenizer.chat_template` string, or null when the file has none. */
  chatTemplate: string | null;
  hasEncoder: boolean;
  hasDecoder: boolean;
  /** Every GGUF key/value as llama.cpp renders it (arrays are summarised). */
  kv: Record<string, string>;
}

export interface TokenizeOptions {
  /** Add BOS/EOS as the model's tokenizer is configured to. Default true. */
  addSpecial?: boolean;
  /** Parse special/control tokens written in the text (e.g. "<|im_start|>"). Default false. */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /** Drop BOS/EOS. Default false. */
  removeSpecial?: boolean;
  /** Render special tokens as text. Default false. */
  unparseSpecial?: boolean;
}

export interface SchedulerOptions {
  /** Sequence slots decoded together (continuous batching). Default 4. */
  parallel?: number;
  /** Context size of each slot in tokens. Default min(trained context, 4096). */
  contextSize?: number;
  /** Most tokens in one decode step (logical batch). Default 512. */
  batchSize?: number;
  /** Physical micro-batch. Default = batchSize. */
  ubatchSize?: number;
  /**
   * Prompt tokens after which a decode step starts no further prompt (0 = fill the batch).
   * Prompts arriving together then finish one after another, not all at the end of one long
   * step: lower time to first token. One long prompt still fills the batch. Default 128, or 0
   * when the model is offloaded to a GPU (there a bigger step costs little more).
   */
  promptChunk?: number;
  /** Threads for generation and for prompt processing. Default: CPU cores. */
  threads?: number;
  threadsBatch?: number;
  /**
   * One KV buffer shared by all slots instead of one per slot (default false, as llama-server
   * with --parallel): per-slot buffers keep each token's attention to its own sequence.
   */
  kvUnified?: boolean;
  /**
   * KV cache types (ggml names: f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1; default f16).
   * q8_0 holds keys or values in about half the memory of f16, q4_0 in about a quarter, at some
   * cost in precision. A quantized V cache needs flash attention (on by default where supported).
   */
  cacheTypeK?: KvCacheType;
  cacheTypeV?: KvCacheType;
  /**
   * Host memory (MiB) for slots' saved KV states (llama-server's --cache-ram): a slot about to
   * serve another prompt saves its cells, and a later prompt with the same start restores them
   * instead of evaluating them again. Least recently used evicted first. Default 0 (off).
   */
  cacheRamMiB?: number;
  /**
   * Speculative decoding with one of llama.cpp's n-gram drafters ('ngram-simple', 'ngram-map-k',
   * 'ngram-map-k4v', 'ngram-mod'; default off): a generating slot drafts tokens that continue its
   * text from n-grams of its own history, and one step decodes and verifies them (its sampler
   * keeps the drafts it would have sampled). Fast on repetitive output: code edits, JSON, quotes.
   */
  specType?: 'ngram-simple' | 'ngram-map-k' | 'ngram-map-k4v' | 'ngram-mod';
  /** N-gram length the drafter matches. Default 12. */
  specNgramSize?: number;
  /**
   * Speculative decoding with a draft model (llama.cpp's draft-simple; instead of specType): a
   * loaded Model with the target's vocabulary (checked: createScheduler throws otherwise), in a
   * context of its own with one sequence per slot (the target's threads, batch and KV layout; f16 KV). Each generating slot drafts with it and one
   * step verifies the drafts. The scheduler keeps the draft's weights alive (the Model object
   * may be disposed once the scheduler exists).
   */
  draftModel?: Model;
  /** Most tokens drafted per step. Default 48 (n-gram drafters), 16 (a draft model). */
  specDraftMax?: number;
  /** Draft model: a shorter draft is dropped (llama.cpp's --spec-draft-n-min). Default 0. */
  specDraftMin?: number;

  /** Requests waiting for a slot beyond which submit fails with OverloadedError. Default 64. */
  maxQueue?: number;
}

export interface SamplingOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  typicalP?: number;
  /** 1 = off. */
  repeatPenalty?: number;
  /** Window of last tokens for the penalties (-1 = whole context). Default 64. */
  repeatLastN?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Same seed + parameters = same output, alone or batched. Default random. */
  seed?: number;
  /** token id -> additive bias; -Infinity bans the token. */
  logitBias?: Record<number, number> | Map<number, number>;
  /** GBNF grammar (root rule `root`). */
  grammar?: string;
  /**
   * The grammar came from a chat template (tools, a JSON schema): the template's generation
   * prompt is fed to it first. A grammar a user wrote never is.
   */
  grammarFromTemplate?: boolean;
  /**
   * With a (non-lazy) grammar and maxTokens: as the budget runs out, keep the answer closable
   * in the tokens left, one token per character it still needs, so a JSON answer cut by
   * maxTokens still parses. Default true; false samples as if there were no budget.
   */
  closeGrammar?: boolean;
  /** Lazy grammar: free text until a trigger appears, constrained from there (optional tool calls). */
  grammarLazy?: boolean;
  grammarTriggers?: GrammarTrigger[];
  /** Strings that are one special token each and must stay whole (tool-call markers). */
  preservedTokens?: string[];
  /** What the template already put at the start of the answer (fed to grammar and reasoning budget). */
  generationPrompt?: string;
  /** Mirostat 1 or 2 (0 = off); it replaces the other truncations, as in llama.cpp. */
  mirostat?: 0 | 1 | 2;
  mirostatTau?: number;
  mirostatEta?: number;
  /** Dynamic temperature: temperature ± range, by entropy (0 = off). */
  dynatempRange?: number;
  dynatempExponent?: number;
  /** DRY repetition penalty (0 = off). */
  dryMultiplier?: number;
  dryBase?: number;
  dryAllowedLength?: number;
  /** Tokens DRY looks back over (-1 = the whole context). */
  dryPenaltyLastN?: number;
  drySequenceBreakers?: string[];
  /** XTC: with this probability, drop the most likely tokens above the threshold but one. */
  xtcProbability?: number;
  xtcThreshold?: number;
  /** Keep tokens within N standard deviations of the top logit (-1 = off). */
  topNSigma?: number;
  /**
   * Sampler order, llama.cpp's names: penalties, dry, top_n_sigma, top_k, typ_p, top_p, min_p,
   * xtc, temperature. Default: that order (llama-server's).
   */
  samplers?: string[];
  /** Cut reasoning after `tokens` tokens by forcing `message` + the first end tag. */
  reasoningBudget?: { tokens: number; start: string; end: string[]; message?: string };
}

export interface GrammarTrigger {
  type: 'word' | 'pattern' | 'pattern_full' | 'token';
  value: string;
}

export interface GenerateOptions extends SamplingOptions {
  /** Default: until end of generation or the slot's context is full. */
  maxTokens?: number;
  /** Never emitted; generation stops before them. */
  stop?: string[];
  /** Do not stop at end-of-generation tokens (they are still not emitted as text). */
  ignoreEos?: boolean;
  /** For a text prompt: add BOS as the tokenizer does. Default true. */
  addBos?: boolean;
  /** For a text prompt: parse special tokens written in it. Default true. */
  parseSpecial?: boolean;
  /** Render special tokens generated by the model as text. Default false. */
  renderSpecial?: boolean;
  /**
   * Start from the longest prefix a slot still holds (default true). Reused KV cells are
   * evaluated in other batch shapes than a cold prompt, so a seeded sampled text can differ
   * from a cold run's; false evaluates the whole prompt, for results independent of history.
   */
  cachePrompt?: boolean;
  /** Draft with the scheduler's drafter (specType), if it has one. Default true. */
  speculative?: boolean;
  /** Report the log-probability of each sampled token. */
  logprobs?: boolean;
  /** With logprobs: the N most likely alternatives at each step (0..20). */
  topLogprobs?: number;
  /**
   * With logprobs: also the log-probability of each prompt token after the first (OpenAI's
   * echo with logprobs), in the first chunk's promptLogprobs. The whole prompt is evaluated
   * (no cached prefix: its logits are needed).
   */
  promptLogprobs?: boolean;
  signal?: AbortSignal;
}

export interface TokenLogprob {
  token: number;
  /** The token's text (a piece of a multi-byte character shows as U+FFFD; see bytes). */
  text: string;
  bytes: number[];
  logprob: number;
}

export interface SampledTokenLogprob extends TokenLogprob {
  top: TokenLogprob[];
}

/** One piece of output: complete UTF-8 text (never a broken character) and the tokens behind it. */
export interface GenerationChunk {
  text: string;
  tokens: number[];
  /** Present when logprobs were asked for: one entry per token in `tokens`. */
  logprobs?: SampledTokenLogprob[];
  /** With promptLogprobs, in the first chunk: prompt tokens 1.. (the first has none). */
  promptLogprobs?: SampledTokenLogprob[];
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

export interface GenerationResult {
  finishReason: FinishReason;
  /** For `stop`: the stop string that matched, or null for an end-of-generation token. */
  stoppedBy: string | null;
  text: string;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens taken from the slot's cache instead of being evaluated. */
  cachedTokens: number;
  /** Speculative decoding: tokens drafted for this generation and, of those, accepted. */
  draftTokens: number;
  draftAccepted: number;
  timings: { queueMs: number; promptMs: number; generationMs: number };
}

export type KvCacheType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'iq4_nl' | 'q5_0' | 'q5_1';

export interface SchedulerStats {
  parallel: number;
  contextSize: number;
  activeSlots: number;
  queued: number;
  /** llama_decode calls so far (the start-up warm-up not counted). */
  decodeSteps: number;
  /** Prompt tokens decoded so far (a prompt shared by n choices counts once). */
  promptTokensDecoded: number;
  /** Prompt tokens a slot took as a copy of another slot's cells (a shared prefix) instead of evaluating them. */
  sharedPrefixTokens: number;
  /** The host-memory prompt cache (cacheRamMiB); sharedPrefixes: prefixes whose cells several saved states share, kept once. */
  hostCache: { enabled: boolean; bytes: number; entries: number; sharedPrefixes: number; hits: number; tokens: number };
  /** Speculative decoding: the drafter (specType, or 'draft-simple' with a draft model), tokens drafted and, of those, accepted since the scheduler started. */
  speculation: { enabled: boolean; type?: string; drafted: number; accepted: number };
  /** Each slot as of the engine's last step. */
  slots: SlotState[];
  /** KV cells the slots' sequences hold (their cached prompt and generated tokens). */
  kvCellsUsed: number;
  cacheTypeK: KvCacheType;
  cacheTypeV: KvCacheType;
}

export interface SlotState {
  id: number;
  /** waiting: for the prompt cells of the first of its n choices. */
  state: 'idle' | 'waiting' | 'prompt' | 'generating';
  /** The generation's id (absent when idle). */
  request?: number;
  promptTokens: number;
  /** Prompt tokens in the KV cache so far (cached ones included). */
  promptTokensDone: number;
  /** Of those, reused from the slot's previous request. */
  cachedTokens: number;
  generated: number;
  /** -1: no bound. */
  maxTokens: number;
  /** KV cells this slot's sequence holds (kept after a request ends, for the prompt cache). */
  kvCells: number;
}

export type PoolingType = 'none' | 'mean' | 'cls' | 'last' | 'rank';

export interface EmbedderOptions {
  /**
   * Default: the model's own pooling, or mean when it declares none. 'rank' runs a cross-encoder's
   * classification head (cls.* tensors): each input gives its scores (llama.cpp's rank pooling).
   */
  pooling?: 'mean' | 'cls' | 'last' | 'rank';
  /** L2-normalise each vector. Default true (never with rank pooling: scores are not directions). */
  normalize?: boolean;
  /** Context (and longest input) in tokens. Default: trained context, at most 8192. */
  contextSize?: number;
  /** Sequences packed into one decode. Default 32. */
  maxSequences?: number;
  threads?: number;
}

/** How the vocabulary frames an input: its special tokens (-1 when it has none) and which it adds. */
export interface SpecialTokens {
  bos: number;
  eos: number;
  sep: number;
  addBos: boolean;
  addEos: boolean;
  addSep: boolean;
}

export interface EmbedOptions {
  /** Inputs longer than the context: cut them (default) or reject the call. */
  truncate?: boolean;
  /** For text inputs: add the tokenizer's special tokens. Default true. */
  addSpecial?: boolean;
}

export interface EmbeddingResult {
  embeddings: Float32Array[];
  /** Tokens actually embedded for each input (after truncation). */
  tokenCounts: number[];
  /** Whether each input was cut to fit. */
  truncated: boolean[];
}
