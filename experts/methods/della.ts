// `della`: DELLA: MagPrune (keep probability rising with the magnitude rank in each row, density ± epsilon), L1 rescale, TIES sign election.
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus sum, sparsification della_magprune, normalize defaults to true, rescale to true.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const della = makeTaskVectorMethod({
  name: 'della',
  reference: 'DELLA-Merging, Deep et al. 2024, https://arxiv.org/abs/2406.11617',
  consensus: 'sum',
  sparsification: 'della_magprune',
  defaultNormalize: true,
  defaultRescale: true,
});
