// Picks SyntheticModelOptions of a Llama-like shape whose weights take about a
// given number of bytes, for benchmarks that need "a ≥ 1 GiB model".
import type { SyntheticModelOptions } from './dense-model.js';

const DTYPE_SIZE = { F32: 4, BF16: 2, F16: 2 } as const;

/** Parameters of a llama-family model with these options (untied unless said). */
export function syntheticParameterCount(o: SyntheticModelOptions): number {
  const d = o.hiddenSize;
  const headDim = d / o.numHeads;
  const kv = o.numKvHeads * headDim;
  const perLayer = 2 * d + 2 * d * d + 2 * kv * d + 3 * d * o.intermediateSize;
  const qwen2Bias = o.family === 'qwen2' ? d + 2 * kv : 0;
  const qkNorm = o.family === 'qwen3' ? 2 * headDim : 0;
  return (o.tieWordEmbeddings ? 1 : 2) * o.vocabSize * d + d + o.numLayers * (perLayer + qwen2Bias + qkNorm);
}

/**
 * A TinyLlama-like shape (d = 2048, ffn 5632, 32 heads / 4 KV heads, vocab 32000) with as many
 * layers as it takes to reach `targetBytes` (at least one).
 */
export function optionsForBytes(targetBytes: number, dtype: 'F32' | 'BF16' | 'F16' = 'F32', seed = 0): SyntheticModelOptions {
  const base: SyntheticModelOptions = { hiddenSize: 2048, intermediateSize: 5632, numLayers: 1, vocabSize: 32000, numHeads: 32, numKvHeads: 4, dtype, seed };
  const size = DTYPE_SIZE[dtype];
  const fixed = syntheticParameterCount({ ...base, numLayers: 0 }) * size;
  const perLayer = (syntheticParameterCount(base) * size) - fixed;
  return { ...base, numLayers: Math.max(1, Math.ceil((targetBytes - fixed) / perLayer)) };
}
