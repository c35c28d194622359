// mergekit's gate formula for its prompt-based modes (mergekit/moe/router.py,
// `get_gate_params`): for every expert and layer, the mean over positive prompts of
// each prompt's hidden vector, minus the same mean over the negative prompts when
// there are any, divided by its L2 norm clamped at 1e-8. The router weight row of
// expert e is that unit vector, so the router logit is a cosine-like similarity.
import type { GateContext } from '../../core/plugins.js';

export const NORM_CLAMP = 1e-8;

/** Mean of `rows` vectors of length `d` stored row-major. */
export function meanRows(rows: Float32Array, d: number): Float64Array {
  const n = rows.length / d;
  const out = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) out[i]! += rows[r * d + i]!;
  for (let i = 0; i < d; i++) out[i]! /= n;
  return out;
}

/** Sum of `rows` vectors of length `d` stored row-major. */
export function sumRows(rows: Float32Array, d: number): Float64Array {
  const out = new Float64Array(d);
  for (let r = 0; r < rows.length / d; r++) for (let i = 0; i < d; i++) out[i]! += rows[r * d + i]!;
  return out;
}

/** v / max(‖v‖₂, 1e-8), in place (torch: `v /= v.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-8)`). */
export function unitNormalize(v: Float64Array): Float64Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.max(Math.sqrt(s), NORM_CLAMP);
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}

/** Stacks per-expert vectors of one layer into a router weight [experts, d]. */
export function stackRows(rows: Float64Array[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, e) => out.set(r, e * d));
  return out;
}

/** Gates from per-layer prompt vectors (hidden, hidden_avg, hidden_last, router_input). */
export async function hiddenStateGates(ctx: GateContext, site: 'residual' | 'router_input', reduce: 'mean' | 'last'): Promise<Float32Array[]> {
  const d = ctx.config.hiddenSize;
  const perExpert: Float64Array[][] = []; // [expert][layer in ctx.layers]
  for (const expert of ctx.experts) {
    const pos = await ctx.states.layers(expert.positivePrompts, site, reduce);
    const neg = expert.negativePrompts.length > 0 ? await ctx.states.layers(expert.negativePrompts, site, reduce) : undefined;
    perExpert.push(
      ctx.layers.map((layer) => {
        const v = meanRows(pos[layer]!, d);
        if (neg) {
          const m = meanRows(neg[layer]!, d);
          for (let i = 0; i < d; i++) v[i]! -= m[i]!;
        }
        return unitNormalize(v);
      }),
    );
  }
  return ctx.layers.map((_, li) => stackRows(perExpert.map((rows) => rows[li]!), d));
}
