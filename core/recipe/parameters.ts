// Merge parameters in mergekit's forms, resolved for one tensor (mergekit/config.py
// `evaluate_setting` and `ConfigReader.parameter`, read there and reimplemented):
//   scalar                      0.5, true, "x"
//   gradient                    [0, 0.5, 1]: interpolated at t ∈ [0, 1], the layer's place in the
//                               stack (layer / (numLayers − 1); 1 when there is one layer; t = 0 for
//                               the tensors before the layers, 1 for those after, as mergekit's planner)
//   list of non-numbers         ["a", "b"]: the element at ⌊t·(len − 1)⌋
//   filter list                 [{filter: self_attn, value: …}, …, {value: …}]: the first entry whose
//                               filter is absent, "*", a substring of the HF tensor name (mergekit)
//                               or the tensor role's mergekit group (moeforge: names of any family)
// Lookup order for a per-model parameter: the model's own `parameters`, then the slice's, then
// the top-level `parameters`; a setting that matches no filter falls through to the next level.
import { MoeforgeError } from '../errors.js';
import { ROLE_INFO, type TensorRole } from '../roles.js';

export type ParameterScalar = number | boolean | string;
export interface ConditionalParameter {
  filter?: string | null;
  value: ParameterScalar | ParameterScalar[];
}
export type ParameterSetting = ParameterScalar | ParameterScalar[] | ConditionalParameter | ConditionalParameter[];
export type ParameterBlock = Record<string, ParameterSetting>;

export interface TensorContext {
  tensorName: string;
  role: TensorRole | undefined;
  /** Position in the layer stack, in [0, 1]. */
  t: number;
}

/** mergekit's t: a layer's place in the stack; tensors before the layers get 0, after them 1. */
export function layerT(layer: number | undefined, numLayers: number, after = false): number {
  if (layer === undefined) return after ? 1 : 0;
  return numLayers > 1 ? layer / (numLayers - 1) : 1;
}

function isConditional(v: unknown): v is ConditionalParameter {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'value' in v;
}

function filterMatches(filter: string | null | undefined, ctx: TensorContext): boolean {
  if (filter === undefined || filter === null || filter === '*') return true;
  if (ctx.tensorName.includes(filter)) return true;
  return ctx.role !== undefined && ROLE_INFO[ctx.role].group === filter;
}

/** The value of one setting for one tensor, or undefined when a filter list matches nothing. */
export function evaluateSetting(setting: ParameterSetting, ctx: TensorContext): ParameterScalar | undefined {
  if (typeof setting === 'number' || typeof setting === 'boolean' || typeof setting === 'string') return setting;
  if (isConditional(setting)) return filterMatches(setting.filter, ctx) ? evaluateSetting(setting.value, ctx) : undefined;
  if (setting.length === 0) return undefined;
  if (setting.every((e) => typeof e === 'number')) {
    const list = setting as number[];
    const scaled = ctx.t * (list.length - 1);
    const i0 = Math.floor(scaled);
    const i1 = Math.min(list.length - 1, i0 + 1);
    const frac = scaled - i0;
    return (1 - frac) * list[i0]! + frac * list[i1]!;
  }
  if (setting.every((e) => typeof e !== 'object')) {
    return (setting as ParameterScalar[])[Math.floor(ctx.t * (setting.length - 1))];
  }
  for (const cond of setting) {
    if (!isConditional(cond)) {
      throw new MoeforgeError('invalid_recipe', 'a list mixing values and {filter, value} entries', { path: ctx.tensorName });
    }
    if (filterMatches(cond.filter, ctx)) return evaluateSetting(cond.value, ctx);
  }
  return undefined;
}

/** The first level (most specific first) whose block sets `name` to something that applies. */
export function resolveParameter(
  name: string,
  levels: (ParameterBlock | null | undefined)[],
  ctx: TensorContext,
): ParameterScalar | undefined {
  for (const block of levels) {
    if (!block || !Object.prototype.hasOwnProperty.call(block, name)) continue;
    const v = evaluateSetting(block[name]!, ctx);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Resolves a list of parameter definitions; a missing required one is an error naming model and tensor. */
export function resolveParameters(
  defs: readonly { name: string; default?: ParameterScalar; required?: boolean }[],
  levels: (ParameterBlock | null | undefined)[],
  ctx: TensorContext,
  where: string,
  requireRequired = true,
): Record<string, ParameterScalar> {
  const out: Record<string, ParameterScalar> = {};
  for (const def of defs) {
    const v = resolveParameter(def.name, levels, ctx);
    if (v !== undefined) out[def.name] = v;
    else if (def.default !== undefined) out[def.name] = def.default;
    else if (def.required && requireRequired) {
      throw new MoeforgeError('invalid_parameter', `missing required parameter ${def.name} for ${ctx.tensorName}`, {
        path: `${where}${def.name}`,
      });
    }
  }
  return out;
}
