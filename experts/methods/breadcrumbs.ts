// `breadcrumbs`: Model Breadcrumbs: drop the gamma largest outliers and the smallest magnitudes so density stays, then a weighted sum.
// Follows mergekit's registry entry of the same name (mergekit/merge_methods/registry.py):
// consensus none, sparsification magnitude_outliers, normalize defaults to false, rescale to false.
import { makeTaskVectorMethod } from './task-vector-core.js';

export const breadcrumbs = makeTaskVectorMethod({
  name: 'breadcrumbs',
  reference: 'Model Breadcrumbs, Davari & Belilovsky 2023, https://arxiv.org/abs/2312.06795',
  consensus: null,
  sparsification: 'magnitude_outliers',
  defaultNormalize: false,
  defaultRescale: false,
});
