// `dare_linear`: DARE drop-and-rescale of each task vector, then a weighted sum.
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus none, sparsification random, normalize defaults to false, rescale to true.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const dareLinear = makeTaskVectorMethod({
  name: 'dare_linear',
  reference: 'DARE (Language Models are Super Mario), Yu et al. 2023, https://arxiv.org/abs/2311.03099',
  consensus: null,
  sparsification: 'random',
  defaultNormalize: false,
  defaultRescale: true,
});
