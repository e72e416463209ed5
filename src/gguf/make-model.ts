#!/usr/bin/env node
// CLI: make (or find in the cache) a benchmark or test model and print its path.
//   node lib/gguf/make-model.js --shape llama-110m --type q8_0 [--seed 1] [--dir DIR]
//   node lib/gguf/make-model.js --shape bert-tiny [--type f32] [--pooling mean] [--seed 1234]

import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import { BENCH_WEIGHT_TYPES, LLAMA_SHAPES, benchModelPath, ensureBenchModel } from './llama-model.js';
import { BERT_SHAPES, BertPooling, BertWeightType, ensureBertModel } from './bert-model.js';
import { WHISPER_SHAPES, ensureWhisperModel } from './whisper-model.js';

const USAGE = `usage: make-model --shape NAME [--type TYPE] [--seed N] [--dir DIR] [--pooling mean|cls|last|rank]
  llama shapes: ${Object.keys(LLAMA_SHAPES).join(', ')} (types ${BENCH_WEIGHT_TYPES.join(', ')}; default q8_0)
  bert shapes:  ${Object.keys(BERT_SHAPES).join(', ')} (types f32, f16, q8_0, q4_0; default f32)
  whisper shapes (whisper.cpp's format, for --whisper-model): ${Object.keys(WHISPER_SHAPES).join(', ')} (types f16, f32; default f16)
Prints the path of the model file (generated under the cache folder when missing).`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        shape: { type: 'string' },
        type: { type: 'string' },
        seed: { type: 'string' },
        dir: { type: 'string' },
        pooling: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help || !values.shape) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !Number.isInteger(seed)) {
    process.stderr.write(`--seed must be an integer\n`);
    return 2;
  }
  try {
    if (values.shape in WHISPER_SHAPES) {
      const type = values.type ?? 'f16';
      if (type !== 'f16' && type !== 'f32') throw new Error(`--type ${type}: Whisper models are f16 or f32`);
      process.stdout.write(`${ensureWhisperModel({ shape: values.shape, type, seed, dir: values.dir })}\n`);
      return 0;
    }
    if (values.shape in BERT_SHAPES) {
      const file = ensureBertModel({
        shape: values.shape,
        type: values.type as BertWeightType | undefined,
        seed,
        dir: values.dir,
        pooling: values.pooling as BertPooling | undefined,
      });
      process.stdout.write(`${file}\n`);
      return 0;
    }
    const opts = { shape: values.shape, type: values.type as never, seed, dir: values.dir };
    const target = benchModelPath(opts);
    const started = Date.now();
    let lastPct = -1;
    const isTTY = process.stderr.isTTY;
    const file = await ensureBenchModel({
      ...opts,
      onProgress: (written, total) => {
        const pct = Math.floor((100 * written) / total);
        if (pct !== lastPct && (isTTY || pct % 10 === 0)) {
          lastPct = pct;
          process.stderr.write(`${isTTY ? '\r' : ''}writing ${target}: ${pct}%${isTTY ? '' : '\n'}`);
        }
      },
    });
    if (lastPct >= 0) {
      const mb = fs.statSync(file).size / 1e6;
      process.stderr.write(`${isTTY ? '\n' : ''}wrote ${mb.toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
    process.stdout.write(`${file}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`make-model: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
