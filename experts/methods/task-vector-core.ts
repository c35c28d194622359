// The task-vector family (task_arithmetic, ties, dare_*, breadcrumbs*, della*): one core
// with pluggable sparsification and consensus, as mergekit's GeneralizedTaskArithmeticMerge
// (mergekit/merge_methods/generalized_task_arithmetic.py and registry.py) configures them:
//   δᵢ = modelᵢ − base; δᵢ ← sparsify(δᵢ, densityᵢ) [× L1 rescale]; out = base + λ · mix(wᵢ δᵢ)
// Global parameters int8_mask (accepted, no effect: our masks are booleans), normalize, lambda,
// rescale; per model weight (required), density (1), gamma (0.01, breadcrumbs), epsilon
// (0.15, DELLA). moeforge adds `sign_quantize` (1bit-Merging, arXiv 2502.10743): each task
// vector becomes sign · mean|δ| per output row before sparsification.
//
// Streaming: every pass reads the base and the models chunk by chunk (chunks.ts); magnitude
// selection adds two passes (select.ts), an L1 rescale one more. Held at any time: one chunk
// per model plus the base chunk and the output chunk, and 2 × 65536 counters per boundary.
// Per-model work runs in lanes (lane.ts), serially or on worker threads (pool.ts).
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';
import type { MergeMethod, MergeParameterDef, MergeTensorInput } from '../../core/plugins.js';
import { CombineScratch, combineChunk, type ConsensusMethod } from './consensus.js';
import { alignedChunk, forEachModelChunk, rowLength } from './chunks.js';
import { ModelLane, type LaneStage, type TaskVectorJob } from './lane.js';
import { boolish, modelPrefix, parseParams } from './params.js';
import { PARALLEL_MIN_ELEMENTS, ParallelTaskVectorRunner, mergeThreads } from './pool.js';
import { checkSparsifyParams, l1RescaleFactor, type SparsificationMethod } from './sparsify.js';

export interface TaskVectorSpec {
  name: string;
  reference: string;
  consensus: ConsensusMethod;
  sparsification: SparsificationMethod | null;
  defaultNormalize: boolean;
  defaultRescale: boolean;
}

export interface TaskVectorGlobal {
  int8_mask: boolean;
  normalize: boolean;
  lambda: number;
  rescale: boolean;
  sign_quantize: boolean;
}

export interface TaskVectorModel {
  weight: number;
  density: number;
  gamma: number;
  epsilon: number;
}

const finite = z.number().refine(Number.isFinite, 'expected a finite number');

export function makeTaskVectorMethod(spec: TaskVectorSpec): MergeMethod {
  const globalDefs: MergeParameterDef[] = [
    { name: 'int8_mask', default: false },
    { name: 'normalize', default: spec.defaultNormalize },
    { name: 'lambda', default: 1 },
    { name: 'rescale', default: spec.defaultRescale },
    { name: 'sign_quantize', default: false },
  ];
  const modelDefs: MergeParameterDef[] = [
    { name: 'weight', required: true },
    { name: 'density', default: 1 },
  ];
  if (spec.sparsification === 'magnitude_outliers') modelDefs.push({ name: 'gamma', default: 0.01 });
  if (spec.sparsification === 'della_magprune') modelDefs.push({ name: 'epsilon', default: 0.15 });

  const globalSchema = z.object({
    int8_mask: boolish.default(false),
    normalize: boolish.default(spec.defaultNormalize),
    lambda: finite.default(1),
    rescale: boolish.default(spec.defaultRescale),
    sign_quantize: boolish.default(false),
  });
  const modelSchema = z.object({
    weight: finite,
    density: finite.default(1),
    gamma: finite.default(0.01),
    epsilon: finite.default(0.15),
  });

  const parseAll = (global: Record<string, unknown>, perModel: Record<string, unknown>[]) => {
    const g = parseParams(globalSchema, global, 'parameters.') as TaskVectorGlobal;
    const pm = perModel.map((p, i) => parseParams(modelSchema, p, modelPrefix(i)) as TaskVectorModel);
    if (spec.sparsification) pm.forEach((p, i) => checkSparsifyParams(spec.sparsification!, p, modelPrefix(i)));
    else
      pm.forEach((p, i) => {
        if (!(p.density > 0 && p.density <= 1))
          throw new MoeforgeError('invalid_parameter', `density must be in (0, 1], got ${p.density}`, {
            path: `${modelPrefix(i)}density`,
          });
      });
    return { g, pm };
  };

  return {
    name: spec.name,
    reference: spec.reference,
    requiresBase: true,
    globalParameterDefs: globalDefs,
    modelParameterDefs: modelDefs,
    globalParameters: globalSchema,
    modelParameters: modelSchema,
    validate(global, perModel, hasBase) {
      if (!hasBase) throw new MoeforgeError('invalid_recipe', `${spec.name} needs a base_model`, { path: 'base_model' });
      parseAll(global, perModel);
    },
    async mergeTensor(input, write) {
      const { g, pm } = parseAll(input.global, input.perModel);
      if (!input.base) throw new MoeforgeError('invalid_recipe', `${spec.name} needs a base_model`, { path: 'base_model' });
      if (input.models.length === 0) {
        // Only the base (mergekit: no task vectors → the base tensor).
        await forEachModelChunk(input, [input.base], (start, [b]) => write(start, b!));
        return;
      }
      await mergeTaskVectors(spec, g, pm, input, write);
    },
  };
}

async function mergeTaskVectors(
  spec: TaskVectorSpec,
  g: TaskVectorGlobal,
  pm: TaskVectorModel[],
  input: MergeTensorInput,
  write: (start: number, values: Float32Array) => Promise<void>,
): Promise<void> {
  const n = input.numel;
  const cols = rowLength(input.shape, n);
  const job: TaskVectorJob = {
    lanes: pm.map((p, i) => ({
      sparsification: spec.sparsification,
      params: p,
      numel: n,
      cols,
      // A plain number, so a worker thread can rebuild the same generator.
      seed: input.rng.derive(`model${i}`).nextUint32(),
      signQuantize: g.sign_quantize,
      tensorName: input.tensorName,
    })),
    weights: pm.map((p) => p.weight),
    combine: { consensus: spec.consensus, normalize: g.normalize, lambda: g.lambda },
    rescale: g.rescale && spec.sparsification !== null && pm.some((p) => p.density < 1),
  };
  const step = alignedChunk(input.chunkSize, cols);
  const runner: TaskVectorRunner =
    mergeThreads() > 1 && n >= PARALLEL_MIN_ELEMENTS
      ? await ParallelTaskVectorRunner.open(job, Math.min(step, n))
      : new SerialTaskVectorRunner(job, Math.min(step, n));
  const readers = [input.base!, ...input.models];
  const pass = (stage: LaneStage, each?: (start: number, r: { stats?: [number, number][]; out?: Float32Array }) => Promise<void> | void) =>
    forEachModelChunk(input, readers, async (start, [b, ...ms]) => {
      const r = await runner.chunk(stage, b!, ms as Float32Array[]);
      await each?.(start, r);
    });
  try {
    // Exact magnitude boundaries: two histogram passes.
    if (runner.needsSelection) {
      await pass('high');
      await runner.finishHigh();
      await pass('low');
      await runner.select();
    }
    // mergekit's rescale (RescaleNorm.l1) needs ‖δ‖₁ and ‖kept‖₁ of the whole tensor first.
    if (job.rescale) {
      const sums = pm.map(() => [0, 0]);
      await runner.reset();
      await pass('stats', (_, r) => r.stats!.forEach(([b, a], i) => ((sums[i]![0] += b), (sums[i]![1] += a))));
      await runner.setScales(sums.map(([b, a], i) => (pm[i]!.density < 1 ? l1RescaleFactor(b!, a!) : 1)));
    }
    await runner.reset();
    await pass('output', (start, r) => write(start, r.out!));
  } finally {
    await runner.close();
  }
}

interface TaskVectorRunner {
  readonly needsSelection: boolean;
  chunk(stage: LaneStage, base: Float32Array, models: Float32Array[]): Promise<{ stats?: [number, number][]; out?: Float32Array }>;
  finishHigh(): Promise<unknown>;
  select(): Promise<unknown>;
  reset(): Promise<unknown>;
  setScales(scales: number[]): Promise<unknown>;
  close(): Promise<unknown>;
}

/** All lanes in this thread; task-vector buffers reused across chunks. */
class SerialTaskVectorRunner implements TaskVectorRunner {
  private readonly lanes: ModelLane[];
  private readonly buffers: Float32Array[];
  private readonly scratch = new CombineScratch();
  readonly needsSelection: boolean;

  constructor(
    private readonly job: TaskVectorJob,
    maxChunk: number,
  ) {
    this.lanes = job.lanes.map((l) => new ModelLane(l));
    this.buffers = job.lanes.map(() => new Float32Array(maxChunk));
    this.needsSelection = this.lanes.some((l) => l.needsSelection);
  }

  async chunk(stage: LaneStage, base: Float32Array, models: Float32Array[]) {
    const deltas = models.map((m, j) => {
      // Readers may hand out shared buffers; never write into them.
      const d = this.buffers[j]!.subarray(0, m.length);
      for (let i = 0; i < d.length; i++) d[i] = m[i]! - base[i]!;
      return d;
    });
    const stats = this.lanes.map((lane, j) => lane.run(stage, deltas[j]!) ?? ([0, 0] as [number, number]));
    if (stage !== 'output') return { stats };
    const out = new Float32Array(base.length);
    combineChunk(out, base, deltas, this.job.weights, this.job.combine, this.scratch);
    return { out };
  }

  async finishHigh() {
    this.lanes.forEach((l) => l.finishHigh());
  }
  async select() {
    this.lanes.forEach((l) => l.select());
  }
  async reset() {
    this.lanes.forEach((l) => l.reset());
  }
  async setScales(scales: number[]) {
    this.lanes.forEach((l, j) => (l.scale = scales[j]!));
  }
  async close() {}
}
