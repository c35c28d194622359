// `dare_ties`: DARE drop-and-rescale (keep each element with probability density, rescale the L1 mass) followed by TIES sign election.
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus sum, sparsification random, normalize defaults to false, rescale to true.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const dareTies = makeTaskVectorMethod({
  name: 'dare_ties',
  reference: 'DARE (Language Models are Super Mario), Yu et al. 2023, https://arxiv.org/abs/2311.03099',
  consensus: 'sum',
  sparsification: 'random',
  defaultNormalize: false,
  defaultRescale: true,
});
