// BertModel (MiniLM, bge, e5, ...) -> llama.cpp's "bert" architecture. Hyperparameters from
// config.json, tensors renamed as llama.cpp's loader wants them (the names src/gguf/bert-model.ts
// writes for its random models; see that file for the shapes):
//   embeddings.word_embeddings / position_embeddings / token_type_embeddings
//                                              -> token_embd / position_embd / token_types
//   embeddings.LayerNorm                       -> token_embd_norm
//   encoder.layer.N.attention.self.query|key|value   -> blk.N.attn_q|attn_k|attn_v
//   encoder.layer.N.attention.output.dense|LayerNorm -> blk.N.attn_output|attn_output_norm
//   encoder.layer.N.intermediate.dense         -> blk.N.ffn_up
//   encoder.layer.N.output.dense|LayerNorm     -> blk.N.ffn_down|layer_output_norm
// A "bert." prefix (BertForMaskedLM and friends) and LayerNorm gamma/beta names are accepted;
// the pooler and masked-LM heads are not used for embeddings and are left out. A tensor the table
// does not know is an error: dropping it silently could change what the model computes.
import { ConvertError } from './errors.js';
import type { ArchitectureWriter } from './architectures.js';

const TENSORS: Array<[RegExp, string]> = [
  [/^embeddings\.word_embeddings\.weight$/, 'token_embd.weight'],
  [/^embeddings\.position_embeddings\.weight$/, 'position_embd.weight'],
  [/^embeddings\.token_type_embeddings\.weight$/, 'token_types.weight'],
  [/^embeddings\.LayerNorm\.(weight|bias)$/, 'token_embd_norm.$1'],
  [/^encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)$/, 'blk.$1.attn_q.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)$/, 'blk.$1.attn_k.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)$/, 'blk.$1.attn_v.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, 'blk.$1.attn_output.$2'],
  [/^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)$/, 'blk.$1.attn_output_norm.$2'],
  [/^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'blk.$1.ffn_up.$2'],
  [/^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, 'blk.$1.ffn_down.$2'],
  [/^encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)$/, 'blk.$1.layer_output_norm.$2'],
];

/** Tensors of a BERT checkpoint that embeddings do not use. */
const UNUSED = /^(embeddings\.position_ids|pooler\..*|cls\.predictions\..*|cls\.seq_relationship\..*)$/;

/** The llama.cpp name of a checkpoint tensor; null for one embeddings do not use. */
export function bertTensorName(name: string): string | null {
  const plain = name.replace(/^bert\./, '').replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
  if (UNUSED.test(plain)) return null;
  for (const [re, to] of TENSORS) if (re.test(plain)) return plain.replace(re, to);
  throw new ConvertError('invalid_weights', `Tensor '${name}' is not part of a BertModel this converter knows: the folder's weights do not match its config.json.`);
}

export function hparam(config: Record<string, unknown>, key: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== 'number' || !(v > 0)) throw new ConvertError('unsupported_architecture', `config.json has no valid ${key} (got ${JSON.stringify(config[key])}).`);
  return v;
}

/** llama.cpp's BERT-like encoders use GELU: another activation is an error naming it. */
export function checkGelu(config: Record<string, unknown>, architecture: string): void {
  const act = String(config.hidden_act ?? 'gelu');
  if (!['gelu', 'gelu_new', 'gelu_pytorch_tanh'].includes(act)) {
    throw new ConvertError('unsupported_architecture', `${architecture} with hidden_act '${act}' is not supported: llama.cpp runs it with GELU.`);
  }
}

export const writeBert: ArchitectureWriter = ({ folder, writer, pooling }) => {
  const c = folder.config;
  checkGelu(c, 'BertModel');
  const positions = String(c.position_embedding_type ?? 'absolute');
  if (positions !== 'absolute') {
    throw new ConvertError('unsupported_architecture', `BertModel with position_embedding_type '${positions}' is not supported: llama.cpp's BERT has absolute positions.`);
  }
  const embd = hparam(c, 'hidden_size');
  const heads = hparam(c, 'num_attention_heads');
  if (embd % heads !== 0) throw new ConvertError('unsupported_architecture', `hidden_size ${embd} is not a multiple of num_attention_heads ${heads}.`);
  writer.setString('general.architecture', 'bert');
  writer.setUint32('bert.context_length', hparam(c, 'max_position_embeddings'));
  writer.setUint32('bert.embedding_length', embd);
  writer.setUint32('bert.feed_forward_length', hparam(c, 'intermediate_size'));
  writer.setUint32('bert.block_count', hparam(c, 'num_hidden_layers'));
  writer.setUint32('bert.attention.head_count', heads);
  writer.setFloat32('bert.attention.layer_norm_epsilon', hparam(c, 'layer_norm_eps', 1e-12));
  writer.setBool('bert.attention.causal', false);
  writer.setUint32('bert.pooling_type', pooling);
  return {
    tokenTypeCount: hparam(c, 'type_vocab_size', 2),
    tensorName: bertTensorName,
    required: requiredEncoderTensors(hparam(c, 'num_hidden_layers')),
    // llama.cpp adds a row of it to the F32 input embeddings: ggml's CPU add has no F32 + F16.
    float32: ['token_types.weight'],
  };
};

/** Every tensor llama.cpp needs for BERT (biases of linear layers are optional to it, not to BERT checkpoints); MPNet's too, with its bias table. */
export function requiredEncoderTensors(layers: number): string[] {
  const out = ['token_embd.weight', 'position_embd.weight', 'token_embd_norm.weight', 'token_embd_norm.bias'];
  for (let i = 0; i < layers; i++) {
    for (const t of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_output_norm', 'ffn_up', 'ffn_down', 'layer_output_norm']) {
      out.push(`blk.${i}.${t}.weight`, `blk.${i}.${t}.bias`);
    }
  }
  return out;
}
