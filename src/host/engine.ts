// The part of the engine (src/engine/) the host and the OpenAI layer use, as structural types
// from the engine's contract (types.ts), and the one place that loads the engine: lazily, so
// that `--help`, config errors and unit tests never need the native addon.
import type {
  DetokenizeOptions, EmbedderOptions, EmbeddingResult, EmbedOptions, GenerateOptions, GenerationChunk, GenerationResult,
  ModelLoadOptions, ModelMetadata, PoolingType, SchedulerOptions, SchedulerStats, SpecialTokens, TokenizeOptions,
} from '../engine/types.js';
import type {
  ChatApplyRequest, ChatApplyResult, ChatMessageDiff, ChatMessageParts, ChatOutputParserOptions, ChatTemplateInfo,
} from '../engine/chat-templates.js';

export interface GenerationLike extends AsyncIterable<GenerationChunk> {
  readonly result: Promise<GenerationResult>;
  cancel(): void;
}

export interface SchedulerLike {
  /** The options it was created with, the engine's defaults filled in where the engine knows them. */
  readonly options?: Readonly<SchedulerOptions>;
  generate(prompt: string | number[], opts?: GenerateOptions): GenerationLike;
  /** n generations of one prompt, evaluated once (optional: test doubles may lack it). */
  generateShared?(prompt: string | number[], optionsList: GenerateOptions[]): GenerationLike[];
  stats(): SchedulerStats;
  dispose(): Promise<void>;
  /** Fail what runs with `error`, leaving the engine thread alone (it can never return: Model.abandon). */
  abandon?(error: Error): void;
}

export interface EmbedderLike {
  readonly dimensions: number;
  readonly contextSize: number;
  readonly pooling: PoolingType;
  /** Whether vectors are L2-normalised (test doubles may leave it out: they are). */
  readonly normalize?: boolean;
  /** The vocabulary's special tokens (a rerank pair is framed with them; test doubles may lack them). */
  readonly specialTokens?: SpecialTokens;
  embed(inputs: (string | number[])[], opts?: EmbedOptions): Promise<EmbeddingResult>;
  dispose(): Promise<void>;
}

export interface ModelLike {
  readonly path: string;
  readonly metadata: ModelMetadata;
  tokenize(text: string, opts?: TokenizeOptions): number[];
  detokenize(tokens: number[], opts?: DetokenizeOptions): string;
  tokenPiece(token: number, renderSpecial?: boolean): string;
  createScheduler(opts?: SchedulerOptions): SchedulerLike;
  createEmbedder(opts?: EmbedderOptions): EmbedderLike;
  /** Fail what runs on it with `error` and never free it (an RPC worker with its layers was lost). */
  abandon?(error: Error): void;
  /** The model's chat template (or the given Jinja source) as llama.cpp reads it. */
  chatTemplates?(template?: string): ChatTemplatesLike;
  dispose(): void | Promise<void>;
}

export interface ChatTemplatesLike {
  apply(request: ChatApplyRequest): ChatApplyResult;
  info(): ChatTemplateInfo;
}

export interface ChatOutputParserLike {
  update(text: string, isPartial: boolean): { message: ChatMessageParts; diffs: ChatMessageDiff[] };
}

/** A parser for one answer in the format a ChatTemplates.apply() result names. */
export function chatOutputParser(applied: ChatApplyResult, options: ChatOutputParserOptions): ChatOutputParserLike {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ChatOutputParser } = require('../engine/chat-templates.js') as typeof import('../engine/chat-templates.js');
  return new ChatOutputParser(applied, options);
}

/** llama.cpp's JSON-schema-to-grammar converter. */
export function jsonSchemaToGrammar(schema: unknown): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const engine = require('../engine/chat-templates.js') as typeof import('../engine/chat-templates.js');
  return engine.jsonSchemaToGrammar(schema);
}

export type ModelLoader = (path: string, opts?: ModelLoadOptions) => Promise<ModelLike>;

/** Model.load from src/engine/model.ts, required on first use. */
export const loadModel: ModelLoader = async (modelPath, opts) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Model } = require('../engine/model.js') as { Model: { load: ModelLoader } };
  return Model.load(modelPath, opts);
};

/** Whether the loaded native build can offload to a GPU (false on CPU-only builds). */
export function gpuOffloadSupported(): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadBinding } = require('../engine/binding.js') as typeof import('../engine/binding.js');
  return loadBinding().systemInfo().gpuOffload;
}
