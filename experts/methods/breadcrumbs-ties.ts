// `breadcrumbs_ties`: Model Breadcrumbs masks with TIES sign election.
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus sum, sparsification magnitude_outliers, normalize defaults to false, rescale to false.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const breadcrumbsTies = makeTaskVectorMethod({
  name: 'breadcrumbs_ties',
  reference: 'Model Breadcrumbs, Davari & Belilovsky 2023, https://arxiv.org/abs/2312.06795 (+ TIES sign election, https://arxiv.org/abs/2306.01708)',
  consensus: 'sum',
  sparsification: 'magnitude_outliers',
  defaultNormalize: false,
  defaultRescale: false,
});
