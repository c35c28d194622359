// `della_linear`: DELLA MagPrune without sign election: a weighted sum of the pruned, rescaled task vectors.
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus none, sparsification della_magprune, normalize defaults to false, rescale to true.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const dellaLinear = makeTaskVectorMethod({
  name: 'della_linear',
  reference: 'DELLA-Merging, Deep et al. 2024, https://arxiv.org/abs/2406.11617',
  consensus: null,
  sparsification: 'della_magprune',
  defaultNormalize: false,
  defaultRescale: true,
});
