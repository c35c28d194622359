// Where an MoE sends the tokens of prompt groups: per group and sparse layer, the
// fraction of tokens each expert receives as top-1 and within the top-k (k = the
// model's num_experts_per_tok, so the top-k fractions sum to k), the mean routing
// entropy (of softmax(router logits) per token, in nats: 0 = certain, ln E = uniform),
// and the experts no token of any group reaches. Gate condition numbers are read from
// the router weights (see condition.ts). Routing follows the engine (core/model/moe.ts
// `route`: softmax over all experts, top-k, lower index first on ties).
import { getArchitecture, tensorName } from '../../core/architectures/index.js';
import { Checkpoint } from '../../core/checkpoint/checkpoint.js';
import { isSparseLayer } from '../../core/config/types.js';
import { MoeforgeError } from '../../core/errors.js';
import type { CausalLM } from '../../core/model/causal-lm.js';
import { route } from '../../core/model/moe.js';
import { DEGENERATE_CONDITION, conditionNumber } from './condition.js';
import type { PromptGroups } from './prompts-file.js';

/** Every number in a report is rounded to this many decimals, so the table, JSON and SVG agree exactly. */
export const DECIMALS = 4;

export function round(x: number): number {
  const f = 10 ** DECIMALS;
  return Math.round(x * f) / f;
}

export interface GroupLayerStats {
  /** Fraction of the group's tokens whose top-1 expert is e (sums to 1). */
  top1: number[];
  /** Fraction of the group's tokens with e among their top-k experts (sums to k). */
  topk: number[];
  /** Mean over tokens of the entropy of the router softmax, in nats. */
  entropy: number;
}

export interface GroupStats {
  name: string;
  prompts: number;
  tokens: number;
  /** One entry per layer of RoutesReport.layers, same order. */
  layers: GroupLayerStats[];
}

export interface LayerSummary {
  layer: number;
  /** σ_max/σ_min of the router weight [E, d]; null when infinite (rank-deficient gate). */
  conditionNumber: number | null;
  /** Above mergekit's threshold of 5. */
  degenerate: boolean;
  /** Experts no token of any group reaches (top-k). */
  unusedExperts: number[];
}

export interface RoutesReport {
  model: string;
  numExperts: number;
  expertsPerToken: number;
  layers: LayerSummary[];
  groups: GroupStats[];
}

/** Condition number of every sparse layer's router, read from the checkpoint. */
export async function gateConditionNumbers(folder: string, model: CausalLM): Promise<Map<number, number>> {
  const c = model.config;
  const arch = getArchitecture(c.modelType);
  const ckpt = await Checkpoint.open(folder);
  try {
    const out = new Map<number, number>();
    for (let l = 0; l < c.numLayers; l++) {
      if (!isSparseLayer(c, l)) continue;
      const w = await ckpt.readFloat32(tensorName(arch, { role: 'router', layer: l }));
      out.set(l, conditionNumber(w, c.moe!.numExperts, c.hiddenSize));
    }
    return out;
  } finally {
    await ckpt.close();
  }
}

export interface RoutesOptions {
  /** Token ids of a prompt as the model reads it (the tokenizer's encode, special tokens added). */
  encode: (prompt: string) => number[];
  /** Prompts per forward pass (left-padded with an attention mask). */
  batchSize?: number;
}

export async function computeRoutes(model: CausalLM, folder: string, groups: PromptGroups, options: RoutesOptions): Promise<RoutesReport> {
  const c = model.config;
  if (!c.moe) {
    throw new MoeforgeError('invalid_argument', `${c.modelType} is a dense model; routes needs a mixture of experts`, { path: folder });
  }
  const E = c.moe.numExperts;
  const k = c.moe.expertsPerToken;
  const sparse = Array.from({ length: c.numLayers }, (_, l) => l).filter((l) => isSparseLayer(c, l));
  const cond = await gateConditionNumbers(folder, model);
  const reachedAny = sparse.map(() => new Set<number>());
  const batchSize = options.batchSize ?? 8;

  const groupStats: GroupStats[] = [];
  for (const [name, prompts] of groups) {
    const top1 = sparse.map(() => new Float64Array(E));
    const topk = sparse.map(() => new Float64Array(E));
    const entropy = sparse.map(() => 0);
    let tokens = 0;
    const encoded = prompts.map((p) => options.encode(p));
    encoded.forEach((ids, i) => {
      if (ids.length === 0) throw new MoeforgeError('invalid_data', 'the prompt gives no tokens', { path: `${name}[${i}]` });
    });
    for (let i = 0; i < encoded.length; i += batchSize) {
      const batch = encoded.slice(i, i + batchSize);
      const T = Math.max(...batch.map((ids) => ids.length));
      const ids = batch.map((x) => [...new Array<number>(T - x.length).fill(0), ...x]);
      const mask = batch.map((x) => [...new Array<number>(T - x.length).fill(0), ...new Array<number>(x.length).fill(1)]);
      const r = await model.forward(ids, { attentionMask: mask, outputRouterLogits: true });
      sparse.forEach((layer, li) => {
        const logits = r.routerLogits!.get(layer)!; // [B*T, E]
        const { experts } = route(logits, E, k, true);
        batch.forEach((x, b) => {
          for (let t = T - x.length; t < T; t++) {
            const row = b * T + t;
            top1[li]![experts[row * k]!]! += 1;
            for (let j = 0; j < k; j++) {
              const e = experts[row * k + j]!;
              topk[li]![e]! += 1;
              reachedAny[li]!.add(e);
            }
            entropy[li]! += softmaxEntropy(logits.subarray(row * E, (row + 1) * E));
          }
        });
      });
      for (const x of batch) tokens += x.length;
    }
    groupStats.push({
      name,
      prompts: prompts.length,
      tokens,
      layers: sparse.map((_, li) => ({
        top1: Array.from(top1[li]!, (v) => round(v / tokens)),
        topk: Array.from(topk[li]!, (v) => round(v / tokens)),
        entropy: round(entropy[li]! / tokens),
      })),
    });
  }
  return {
    model: folder,
    numExperts: E,
    expertsPerToken: k,
    layers: sparse.map((layer, li) => {
      const cn = cond.get(layer)!;
      return {
        layer,
        conditionNumber: Number.isFinite(cn) ? round(cn) : null,
        degenerate: !Number.isFinite(cn) || cn > DEGENERATE_CONDITION,
        unusedExperts: Array.from({ length: E }, (_, e) => e).filter((e) => !reachedAny[li]!.has(e)),
      };
    }),
    groups: groupStats,
  };
}

/** Entropy (nats) of softmax(logits), computed in float64. */
export function softmaxEntropy(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i]! - max);
  let h = 0;
  for (let i = 0; i < logits.length; i++) {
    const p = Math.exp(logits[i]! - max) / z;
    if (p > 0) h -= p * Math.log(p);
  }
  return h;
}
