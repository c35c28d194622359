// `ties`: TIES-Merging: trim each task vector to its top-k magnitudes (k = ⌊density·n⌋), elect the sign per element by summed mass, average the agreeing values (disjoint mean).
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus sum, sparsification magnitude, normalize defaults to true, rescale to false.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const ties = makeTaskVectorMethod({
  name: 'ties',
  reference: 'TIES-Merging, Yadav et al. 2023, https://arxiv.org/abs/2306.01708',
  consensus: 'sum',
  sparsification: 'magnitude',
  defaultNormalize: true,
  defaultRescale: false,
});
