// One model's share of a task-vector merge over one tensor: its task vector's optional sign
// quantisation, magnitude selection, mask and rescale. Lanes are independent of each other,
// so they run in the main thread (serial) or one per worker thread (pool.ts) with identical
// results: a lane's only randomness is its own seeded Rng.
import { Rng } from '../../core/rng.js';
import type { CombineOptions } from './consensus.js';
import { RadixSelector } from './select.js';
import { makeMask, signQuantizeRows, type SparsificationMethod, type SparsifyParams, type TensorMask } from './sparsify.js';

export interface LaneSpec {
  sparsification: SparsificationMethod | null;
  params: SparsifyParams;
  numel: number;
  cols: number;
  /** Seed of this lane's Rng (derived from the tensor's Rng and the model index). */
  seed: number;
  signQuantize: boolean;
  tensorName: string;
}

export type LaneStage = 'high' | 'low' | 'stats' | 'output';

export interface TaskVectorJob {
  lanes: LaneSpec[];
  weights: number[];
  combine: CombineOptions;
  /** Whether the L1 rescale pass runs (mergekit `rescale` with a density below 1). */
  rescale: boolean;
}

export class ModelLane {
  private readonly mask: TensorMask;
  private readonly selector: RadixSelector | undefined;
  readonly sparsified: boolean;
  scale = 1;

  constructor(private readonly spec: LaneSpec) {
    this.mask = makeMask(spec.sparsification, spec.params, spec.numel, new Rng(spec.seed), spec.tensorName);
    this.selector = this.mask.ranks.length ? new RadixSelector(spec.numel, this.mask.ranks) : undefined;
    this.sparsified = spec.sparsification !== null && spec.params.density < 1;
  }

  get needsSelection(): boolean {
    return this.selector !== undefined;
  }

  /** Runs one stage on this lane's task-vector chunk (modified in place); 'stats' returns [‖δ‖₁, ‖kept‖₁]. */
  run(stage: LaneStage, delta: Float32Array): [number, number] | undefined {
    if (this.spec.signQuantize) signQuantizeRows(delta, this.spec.cols);
    switch (stage) {
      case 'high':
        this.selector?.addHigh(delta);
        return undefined;
      case 'low':
        this.selector?.addLow(delta);
        return undefined;
      case 'stats': {
        if (!this.sparsified) return [0, 0];
        const before = sumAbs(delta);
        this.mask.apply(delta, this.spec.cols);
        return [before, sumAbs(delta)];
      }
      case 'output': {
        this.mask.apply(delta, this.spec.cols);
        const s = this.scale;
        if (s !== 1) for (let k = 0; k < delta.length; k++) delta[k] = delta[k]! * s;
        return undefined;
      }
    }
  }

  finishHigh(): void {
    this.selector?.finishHigh();
  }

  /** After the two selection passes: fix the mask's boundaries. */
  select(): void {
    if (this.selector) this.mask.setBoundaries(this.selector.boundaries());
  }

  reset(): void {
    this.mask.reset();
  }
}

function sumAbs(d: Float32Array): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += Math.abs(d[i]!);
  return s;
}
