// MPNetModel (all-mpnet-base-v2 and kin) -> the "mpnet" architecture of the patched llama.cpp
// (vendor/patches/): BERT's post-norm encoder without token types, plus one relative-position
// attention bias shared by all layers. Tensor names:
//   embeddings.word_embeddings / position_embeddings / LayerNorm -> token_embd / position_embd / token_embd_norm
//   encoder.layer.N.attention.attn.q|k|v|o           -> blk.N.attn_q|attn_k|attn_v|attn_output
//   encoder.layer.N.attention.LayerNorm              -> blk.N.attn_output_norm
//   encoder.layer.N.intermediate.dense               -> blk.N.ffn_up
//   encoder.layer.N.output.dense|LayerNorm           -> blk.N.ffn_down|layer_output_norm
//   encoder.relative_attention_bias (Embedding(buckets, heads)) -> attn_rel_b
// Positions: MPNet numbers a sequence's tokens from padding_idx + 1 (RoBERTa's rule), so the rows
// before that are never read; they are left out of position_embd, whose row 0 is then the first
// token's, as llama.cpp counts positions.
import { ConvertError } from './errors.js';
import type { ArchitectureWriter } from './architectures.js';
import { checkGelu, hparam, requiredEncoderTensors } from './bert.js';

const TENSORS: Array<[RegExp, string]> = [
  [/^embeddings\.word_embeddings\.weight$/, 'token_embd.weight'],
  [/^embeddings\.position_embeddings\.weight$/, 'position_embd.weight'],
  [/^embeddings\.LayerNorm\.(weight|bias)$/, 'token_embd_norm.$1'],
  [/^encoder\.layer\.(\d+)\.attention\.attn\.q\.(weight|bias)$/, 'blk.$1.attn_q.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.attn\.k\.(weight|bias)$/, 'blk.$1.attn_k.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.attn\.v\.(weight|bias)$/, 'blk.$1.attn_v.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.attn\.o\.(weight|bias)$/, 'blk.$1.attn_output.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.LayerNorm\.(weight|bias)$/, 'blk.$1.attn_output_norm.$2'],
  [/^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'blk.$1.ffn_up.$2'],
  [/^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, 'blk.$1.ffn_down.$2'],
  [/^encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)$/, 'blk.$1.layer_output_norm.$2'],
  [/^encoder\.relative_attention_bias\.weight$/, 'attn_rel_b.weight'],
];

/** Tensors of an MPNet checkpoint that embeddings do not use. */
const UNUSED = /^(embeddings\.position_ids|pooler\..*|lm_head\..*)$/;

/** HF MPNet's relative_position_bucket: max_distance is fixed there, not in config.json. */
export const MPNET_MAX_DISTANCE = 128;

/** The llama.cpp name of a checkpoint tensor; null for one embeddings do not use. */
export function mpnetTensorName(name: string): string | null {
  const plain = name.replace(/^mpnet\./, '');
  if (UNUSED.test(plain)) return null;
  for (const [re, to] of TENSORS) if (re.test(plain)) return plain.replace(re, to);
  throw new ConvertError('invalid_weights', `Tensor '${name}' is not part of an MPNetModel this converter knows: the folder's weights do not match its config.json.`);
}

/** Rows of position_embeddings before the first token's (padding_idx + 1). */
export function mpnetPositionOffset(config: Record<string, unknown>): number {
  const pad = config.pad_token_id ?? 1;
  if (!Number.isInteger(pad) || (pad as number) < 0) throw new ConvertError('unsupported_architecture', `config.json has no valid pad_token_id (got ${JSON.stringify(config.pad_token_id)}).`);
  return (pad as number) + 1;
}

export const writeMpnet: ArchitectureWriter = ({ folder, writer, pooling }) => {
  const c = folder.config;
  checkGelu(c, 'MPNetModel');
  const embd = hparam(c, 'hidden_size');
  const heads = hparam(c, 'num_attention_heads');
  if (embd % heads !== 0) throw new ConvertError('unsupported_architecture', `hidden_size ${embd} is not a multiple of num_attention_heads ${heads}.`);
  const offset = mpnetPositionOffset(c);
  const positions = hparam(c, 'max_position_embeddings') - offset;
  if (!(positions > 0)) throw new ConvertError('unsupported_architecture', `max_position_embeddings leaves no position after padding_idx ${offset - 1}.`);
  writer.setString('general.architecture', 'mpnet');
  writer.setUint32('mpnet.context_length', positions);
  writer.setUint32('mpnet.embedding_length', embd);
  writer.setUint32('mpnet.feed_forward_length', hparam(c, 'intermediate_size'));
  writer.setUint32('mpnet.block_count', hparam(c, 'num_hidden_layers'));
  writer.setUint32('mpnet.attention.head_count', heads);
  writer.setFloat32('mpnet.attention.layer_norm_epsilon', hparam(c, 'layer_norm_eps', 1e-12));
  writer.setUint32('mpnet.attention.relative_buckets_count', hparam(c, 'relative_attention_num_buckets', 32));
  writer.setUint32('mpnet.attention.relative_max_distance', MPNET_MAX_DISTANCE);
  writer.setBool('mpnet.attention.causal', false);
  writer.setUint32('mpnet.pooling_type', pooling);
  return {
    tokenTypeCount: 0,
    tensorName: mpnetTensorName,
    required: [...requiredEncoderTensors(hparam(c, 'num_hidden_layers')), 'attn_rel_b.weight'],
    // Looked up by get_rows and added to F32 scores, as BERT's token types are.
    float32: ['attn_rel_b.weight'],
    firstRow: (target) => (target === 'position_embd.weight' ? offset : 0),
  };
};
