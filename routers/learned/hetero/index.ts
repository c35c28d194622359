// The HeteroTrainer plugin (core/plugins.ts, issue 9): the trainings behind a
// heterogeneous MoE, resolved by its build through TOKENS.HeteroTrainer.
import type { HeteroTrainer } from '../../../core/plugins.js';
import { parseHeteroGateOptions } from './options.js';
import { trainProjected } from './projected-trainer.js';
import { trainSequenceRouter } from './sequence-router.js';

export { parseHeteroGateOptions, type HeteroGateOptions } from './options.js';
export { projectedForward } from './projected-forward.js';

export const heteroTrainer: HeteroTrainer = {
  checkOptions: (options) => void parseHeteroGateOptions(options),
  trainSequenceRouter,
  trainProjected,
};
