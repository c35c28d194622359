// `divmerge`: DivMerge (Touayouch et al. 2025, "DivMerge: A divergence-based model merging
// method for multi-tasking", https://arxiv.org/abs/2509.02108). Task-arithmetic coefficients
// learned from unlabelled data: out = base + Σ_i c_i δ_i with c minimising the mean
// Jensen–Shannon divergence between each expert and the merged model on that expert's inputs.
// Following the paper: the JS divergence between next-token distributions, each expert's own
// unlabelled prompts extended by the expert's greedy continuation (so the merged model is
// compared where the expert actually generates), Adam on the coefficients, one coefficient per
// model or (`granularity: layer`) per model per layer.
// Our concrete choices where the paper leaves room: initial value 1/number of models; the
// objective is the mean over experts of the mean over all positions of their sequences;
// with `granularity: layer` the tensors outside the layers (embeddings, final norm, lm_head)
// form one more group; `steps` (default 50) full-batch Adam steps with `learning_rate`
// (default 0.05); `continuation_tokens` (default 16) greedy tokens per prompt.
// Reports the divergence before and after and the learned coefficients (notes).
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import { CausalLM } from '../../core/model/causal-lm.js';
import type { MergeMethod, MergePrepareContext } from '../../core/plugins.js';
import { CALIBRATION_PARAMETER_DEFS } from '../importance/calibration.js';
import { optimiseCoefficients, type Teacher } from '../importance/divergence.js';
import { disposeWeights, rowLogits, weightTensors } from '../importance/gradients.js';
import { checkMemory, loadModelWeights } from '../importance/model-weights.js';
import { CALIBRATION_GLOBAL_DEFS, calibrationLimit, modelCalibrationRows } from '../importance/prepare-data.js';
import { taskArithmetic } from './task-arithmetic.js';
import { parseParams } from './params.js';

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const whole = (min: number) => z.number().int().refine((v) => v >= min, `must be a whole number >= ${min}`);
const globalSchema = z.object({
  granularity: z.enum(['model', 'layer']).default('model'),
  steps: whole(0).default(50),
  learning_rate: finite.refine((v) => v > 0, 'learning_rate must be > 0').default(0.05),
  continuation_tokens: whole(0).default(16),
});

function parseGlobal(global: Record<string, unknown>) {
  const { granularity, steps, learning_rate, continuation_tokens } = global;
  return parseParams(globalSchema, { granularity, steps, learning_rate, continuation_tokens }, 'parameters.');
}

export interface DivMergePrepared {
  granularity: 'model' | 'layer';
  /** [model][group]: group = layer, and numLayers for the tensors outside the layers (granularity layer); 0 otherwise. */
  coefficients: number[][];
  before: number;
  after: number;
}

async function prepare(ctx: MergePrepareContext): Promise<DivMergePrepared> {
  const g = parseGlobal(ctx.global);
  const limit = calibrationLimit(ctx.global);
  if (!ctx.baseFolder) throw new MoeforgeError('invalid_recipe', 'divmerge needs a base_model', { path: 'base_model' });
  const prompts = await modelCalibrationRows(ctx);
  const n = ctx.modelFolders.length;
  const base = await loadModelWeights(ctx.baseFolder, 'base model', { limitBytes: limit });
  // Held at once: the base, every task vector, the merged weights and their gradients.
  checkMemory('divmerge', (n + 3) * 4 * [...base.values.values()].reduce((s, v) => s + v.length, 0), limit, `divmerge over ${n} models`);
  const deltas: Map<string, Float32Array>[] = [];
  const teachers: Teacher[] = [];
  for (const [i, folder] of ctx.modelFolders.entries()) {
    const ref = ctx.modelRefs[i]!;
    const lm = await CausalLM.load(folder, { mode: 'resident' });
    const rows: number[][] = [];
    try {
      for (const p of prompts[i]!) rows.push([...p, ...(g.continuation_tokens > 0 ? await lm.generate(p, { maxNewTokens: g.continuation_tokens, temperature: 0 }) : [])]);
    } finally {
      lm.dispose();
    }
    const m = await loadModelWeights(folder, ref, { limitBytes: limit });
    const w = weightTensors(m);
    try {
      teachers.push({ rows, logits: await rowLogits(m, w, rows) });
    } finally {
      disposeWeights(w);
    }
    deltas.push(new Map(base.names.map((name) => {
      const t = m.values.get(name);
      if (!t) throw new MoeforgeError('missing_tensor', `${ref} has no such tensor`, { path: name });
      const b = base.values.get(name)!;
      return [name, t.map((x, k) => x - b[k]!)];
    })));
  }
  const L = base.config.numLayers;
  const layered = g.granularity === 'layer';
  const r = await optimiseCoefficients(
    {
      config: base.config,
      names: base.names,
      shapes: base.shapes,
      base: base.values,
      deltas,
      groupOf: (name) => (layered ? (base.layers.get(name) ?? L) : 0),
      groups: layered ? L + 1 : 1,
      teachers,
    },
    { steps: g.steps, learningRate: g.learning_rate },
  );
  ctx.note(`divmerge: mean JS divergence ${r.before.toFixed(5)} before (all coefficients 1/${n}), ${r.after.toFixed(5)} after ${g.steps} Adam steps`);
  ctx.modelRefs.forEach((ref, i) => ctx.note(`divmerge: ${ref} coefficient${layered ? 's per layer (then outside the layers)' : ''} ${r.coefficients[i]!.map((c) => c.toFixed(4)).join(', ')}`));
  return { granularity: g.granularity, coefficients: r.coefficients, before: r.before, after: r.after };
}

export const divmerge: MergeMethod = {
  name: 'divmerge',
  reference: 'DivMerge, Touayouch et al. 2025, https://arxiv.org/abs/2509.02108',
  requiresBase: true,
  globalParameterDefs: [
    { name: 'granularity', default: 'model' },
    { name: 'steps', default: 50 },
    { name: 'learning_rate', default: 0.05 },
    { name: 'continuation_tokens', default: 16 },
    ...CALIBRATION_GLOBAL_DEFS,
  ],
  modelParameterDefs: [...CALIBRATION_PARAMETER_DEFS],
  globalParameters: globalSchema,
  modelParameters: z.object({}),
  validate(global, _perModel, hasBase) {
    if (!hasBase) throw new MoeforgeError('invalid_recipe', 'divmerge needs a base_model', { path: 'base_model' });
    parseGlobal(global);
  },
  prepare,
  async mergeTensor(input, write) {
    const prep = input.prepared as DivMergePrepared | undefined;
    if (!prep) throw new Error(`divmerge: no coefficients for ${input.tensorName} (mergeTensor called without the calibration pre-pass, MergeMethod.prepare)`);
    const group = prep.granularity === 'layer' ? (input.layer ?? input.numLayers) : 0;
    const perModel = prep.coefficients.map((c) => ({ weight: c[group]! }));
    await taskArithmetic.mergeTensor({ ...input, global: { lambda: 1 }, perModel }, write);
  },
};
