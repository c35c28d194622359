// `task_arithmetic`: task arithmetic: base + λ Σ wᵢ (modelᵢ − base).
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus none, sparsification none, normalize defaults to false, rescale to false.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const taskArithmetic = makeTaskVectorMethod({
  name: 'task_arithmetic',
  reference: 'Editing Models with Task Arithmetic, Ilharco et al. 2022, https://arxiv.org/abs/2212.04089',
  consensus: null,
  sparsification: null,
  defaultNormalize: false,
  defaultRescale: false,
});
