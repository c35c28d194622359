// Sparse MoE blocks, as transformers' MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock
// and Qwen3MoeSparseMoeBlock compute them:
//   router logits = x G^T; p = softmax(logits) over all experts (float32);
//   the k largest p are selected (ties: lower expert index first); renormalised
//   to sum 1 when normTopkProb (always for Mixtral); output = Σ_e w_e expert_e(x),
//   accumulated in increasing expert index (index_add_ in the expert loop);
//   Qwen2-MoE adds sigmoid(x g_s^T) * shared_expert(x), outside softmax and top-k.
// Only the tokens routed to an expert go through it (gathered rows), so compute
// scales with k, not with the number of experts.
import { tf } from '../backend.js';
import { disposeLinear, linear, type Linear } from './linear.js';
import { disposeMlp, mlp, type MlpWeights } from './mlp.js';

export interface MoeWeights {
  router: Linear; // G^T: [d, E]
  experts: MlpWeights[];
  shared?: MlpWeights;
  sharedGate?: Linear; // [d, 1]
}

export interface Routing {
  /** Per token: the selected experts, best first, and their weights. */
  experts: Int32Array; // [N, k]
  weights: Float32Array; // [N, k]
}

/** Softmax over all experts in float32, top-k, optional renormalisation. logits: [N, E]. */
export function route(logits: Float32Array, numExperts: number, k: number, normTopkProb: boolean): Routing {
  const n = logits.length / numExperts;
  const experts = new Int32Array(n * k);
  const weights = new Float32Array(n * k);
  const probs = new Float64Array(numExperts);
  const order = Array.from({ length: numExperts }, (_, i) => i);
  for (let t = 0; t < n; t++) {
    const row = logits.subarray(t * numExperts, (t + 1) * numExperts);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (let e = 0; e < numExperts; e++) sum += probs[e] = Math.exp(row[e]! - max);
    for (let e = 0; e < numExperts; e++) probs[e] = Math.fround(probs[e]! / sum);
    order.sort((a, b) => probs[b]! - probs[a]! || a - b);
    let selected = 0;
    for (let j = 0; j < k; j++) selected += probs[order[j]!]!;
    for (let j = 0; j < k; j++) {
      experts[t * k + j] = order[j]!;
      weights[t * k + j] = normTopkProb ? probs[order[j]!]! / selected : probs[order[j]!]!;
    }
  }
  return { experts, weights };
}

/** x: [N, d] → output [N, d] and the router logits [N, E]. */
export function sparseMoe(
  x: tf.Tensor2D,
  w: MoeWeights,
  k: number,
  normTopkProb: boolean,
): { out: tf.Tensor2D; routerLogits: Float32Array } {
  const [n, d] = x.shape;
  const numExperts = w.experts.length;
  const logitsT = linear(x, w.router); // [N, E]
  const routerLogits = logitsT.dataSync() as Float32Array;
  logitsT.dispose();
  const routing = route(routerLogits, numExperts, k, normTopkProb);

  // Token rows and weights per expert.
  const rows: number[][] = Array.from({ length: numExperts }, () => []);
  const rowWeights: number[][] = Array.from({ length: numExperts }, () => []);
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < k; j++) {
      const e = routing.experts[t * k + j]!;
      rows[e]!.push(t);
      rowWeights[e]!.push(routing.weights[t * k + j]!);
    }
  }

  const acc = new Float32Array(n * d); // [N, d]
  for (let e = 0; e < numExperts; e++) {
    const r = rows[e]!;
    if (r.length === 0) continue;
    const y = tf.tidy(() => {
      const idx = tf.tensor1d(r, 'int32');
      const xs = tf.gather(x, idx); // [n_e, d]
      return tf.mul(mlp(xs, w.experts[e]!), tf.tensor2d(rowWeights[e]!, [r.length, 1])); // [n_e, d]
    });
    const ys = y.dataSync() as Float32Array;
    y.dispose();
    for (let i = 0; i < r.length; i++) {
      const o = r[i]! * d;
      for (let c = 0; c < d; c++) acc[o + c] += ys[i * d + c]!;
    }
  }

  const out = tf.tidy(() => {
    const routed = tf.tensor2d(acc, [n, d]);
    if (!w.shared || !w.sharedGate) return routed;
    const gate = tf.sigmoid(linear(x, w.sharedGate)); // [N, 1]
    return tf.add(routed, tf.mul(gate, mlp(x, w.shared))) as tf.Tensor2D;
  });
  return { out, routerLogits };
}

export function disposeMoe(w: MoeWeights | undefined): void {
  if (!w) return;
  disposeLinear(w.router);
  for (const e of w.experts) disposeMlp(e);
  disposeMlp(w.shared);
  disposeLinear(w.sharedGate);
}
