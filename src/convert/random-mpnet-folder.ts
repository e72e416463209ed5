// Random-weight sentence-transformers MPNet folders (MPNetModel, as all-mpnet-base-v2 is laid out),
// for tests: BERT's vocabulary with MPNet's <s> ... </s> framing (RobertaProcessing) appended as
// special tokens, pad_token_id 1 (so positions start at row 2, as in the real model), and a
// relative_attention_bias table with a spread wide enough to move the attention.
import { addEncoderLayer, startRandomFolder, tokenizerJsonFromVocab, torchDtype, type RandomFolderOptions } from './random-folder.js';

/** Writes a random-weight sentence-transformers MPNet folder into `dir` (created); returns `dir`. */
export function writeRandomMpnetFolder(dir: string, opts: Omit<RandomFolderOptions, 'architecture'> = {}): string {
  const { shape, dtype, maxSeqLength, write, add, finish } = startRandomFolder(dir, opts);
  const tokenizer = tokenizerJsonFromVocab(opts.vocab, opts.normalizer, maxSeqLength);
  const vocab = (tokenizer.model as { vocab: Record<string, number> }).vocab;
  const bos = Object.keys(vocab).length;
  const eos = bos + 1;
  const nVocab = eos + 1;
  for (const [id, content] of [[bos, '<s>'], [eos, '</s>']] as const) {
    (tokenizer.added_tokens as object[]).push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  tokenizer.post_processor = { type: 'RobertaProcessing', sep: ['</s>', eos], cls: ['<s>', bos], trim_offsets: true, add_prefix_space: false };
  const { embd: E, ffn: F, layers, heads, maxPositions } = shape;
  const buckets = 32;
  const padIdx = 1;
  write('config.json', {
    architectures: ['MPNetModel'],
    model_type: 'mpnet',
    hidden_size: E,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    intermediate_size: F,
    max_position_embeddings: maxPositions + padIdx + 1,
    relative_attention_num_buckets: buckets,
    vocab_size: nVocab,
    pad_token_id: padIdx,
    bos_token_id: bos,
    eos_token_id: eos,
    layer_norm_eps: 1e-5,
    hidden_act: 'gelu',
    torch_dtype: torchDtype(dtype),
  });
  add('embeddings.word_embeddings.weight', [nVocab, E], 1);
  add('embeddings.position_embeddings.weight', [maxPositions + padIdx + 1, E], 0.5);
  add('embeddings.LayerNorm.weight', [E], 0.2, 1);
  add('embeddings.LayerNorm.bias', [E], 0.2);
  add('encoder.relative_attention_bias.weight', [buckets, heads], 1.5);
  for (let i = 0; i < layers; i++) {
    const p = `encoder.layer.${i}.`;
    addEncoderLayer(add, E, F, {
      q: `${p}attention.attn.q`, k: `${p}attention.attn.k`, v: `${p}attention.attn.v`, o: `${p}attention.attn.o`,
      attnNorm: `${p}attention.LayerNorm`, up: `${p}intermediate.dense`, down: `${p}output.dense`, outNorm: `${p}output.LayerNorm`,
    });
  }
  add('pooler.dense.weight', [E, E], 1 / Math.sqrt(E));
  add('pooler.dense.bias', [E], 0.1);
  finish(tokenizer);
  return dir;
}
