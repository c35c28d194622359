// Registers every built-in merge method under TOKENS.MergeMethod (called from the
// composition root; no registration by import side effect).
import type { DependencyContainer } from 'tsyringe';
import { TOKENS, type MergeMethod } from '../../core/plugins.js';
import { breadcrumbs } from './breadcrumbs.js';
import { breadcrumbsTies } from './breadcrumbs-ties.js';
import { dareLinear } from './dare-linear.js';
import { dareTies } from './dare-ties.js';
import { della } from './della.js';
import { dellaLinear } from './della-linear.js';
import { divmerge } from './divmerge.js';
import { linear } from './linear.js';
import { modelStock } from './model-stock.js';
import { led } from './led.js';
import { sens } from './sens.js';
import { neuro } from './neuro.js';
import { slerp } from './slerp.js';
import { taskArithmetic } from './task-arithmetic.js';
import { ties } from './ties.js';

export const BUILTIN_MERGE_METHODS: readonly MergeMethod[] = [
  linear,
  taskArithmetic,
  ties,
  dareLinear,
  dareTies,
  breadcrumbs,
  breadcrumbsTies,
  della,
  dellaLinear,
  slerp,
  modelStock,
  neuro,
  led,
  sens,
  divmerge,
];

export function registerMergeMethods(container: DependencyContainer): void {
  for (const method of BUILTIN_MERGE_METHODS) container.register(TOKENS.MergeMethod, { useValue: method });
}

/** The registered method of that mergekit name, or a typed error listing the known ones. */
export function findMergeMethod(methods: readonly MergeMethod[], name: string): MergeMethod | undefined {
  return methods.find((m) => m.name === name);
}
