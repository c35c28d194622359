// One normalised view of a model's config.json. Configs are parsed at the edge
// (core/config/normalize.ts, a zod schema per family) and nothing downstream reads
// raw config.json keys. Both transformers v4 spellings (`torch_dtype`, `rope_theta`,
// `rope_scaling`) and v5 spellings (`dtype`, `rope_parameters`, `head_dim: null`,
// `layer_types`) normalise to this.

export type DenseFamily = 'llama' | 'mistral' | 'qwen2' | 'qwen3';
export type MoeFamily = 'mixtral' | 'qwen2_moe' | 'qwen3_moe';
export type ModelFamily = DenseFamily | MoeFamily;

export type TorchDtype = 'float32' | 'bfloat16' | 'float16';

export interface RopeConfig {
  theta: number;
  /** transformers' rope types we implement (modeling_rope_utils.py). */
  type: 'default' | 'linear' | 'dynamic' | 'llama3';
  factor?: number;
  lowFreqFactor?: number; // llama3
  highFreqFactor?: number; // llama3
  originalMaxPositionEmbeddings?: number; // llama3 / dynamic
}

export interface MoeConfig {
  numExperts: number;
  expertsPerToken: number;
  /** Width of one routed expert's FFN (Mixtral: intermediate_size; Qwen-MoE: moe_intermediate_size). */
  expertIntermediateSize: number;
  /** Renormalise the top-k probabilities (always true for Mixtral). */
  normTopkProb: boolean;
  /** Qwen2-MoE shared expert width; null when the family has none (Mixtral, Qwen3-MoE). */
  sharedExpertIntermediateSize: number | null;
  /** Layer i is sparse iff i ∉ mlpOnlyLayers and (i + 1) % decoderSparseStep == 0. */
  decoderSparseStep: number;
  mlpOnlyLayers: number[];
  routerAuxLossCoef: number;
}

export interface NormalizedConfig {
  modelType: ModelFamily;
  /** HF class name, e.g. `LlamaForCausalLM`. */
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  /** Dense FFN width (also used by dense layers of a Qwen2-MoE). */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  rope: RopeConfig;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (qwen2, qwen2_moe; llama with attention_bias). */
  attentionBias: boolean;
  /** o_proj carries a bias (llama with attention_bias: true). */
  attentionOutBias: boolean;
  /** qwen3: per-head RMSNorm on q and k before RoPE. */
  qkNorm: boolean;
  /** Sliding attention window per layer (null = full attention). */
  slidingWindows: (number | null)[];
  hiddenAct: 'silu';
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  torchDtype: TorchDtype;
  moe: MoeConfig | null;
  /** The parsed config.json, kept only so exporters can carry unknown keys through. */
  raw: Readonly<Record<string, unknown>>;
}

/** Qwen2-MoE's rule (modeling_qwen2_moe.py), which Mixtral satisfies trivially. */
export function isSparseLayer(config: NormalizedConfig, layer: number): boolean {
  const moe = config.moe;
  if (!moe || moe.numExperts === 0) return false;
  return !moe.mlpOnlyLayers.includes(layer) && (layer + 1) % moe.decoderSparseStep === 0;
}
