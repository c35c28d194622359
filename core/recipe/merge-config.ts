// The mergekit-yaml subset `moeforge merge` reads (mergekit/config.py MergeConfiguration):
// models[{model, parameters}] or one slice whose sources each cover every layer, base_model,
// merge_method, parameters, dtype / out_dtype, tokenizer_source (base | union | a model,
// `model:` prefix accepted) or tokenizer {source}, chat_template, name, random_seed. Strict:
// an unknown key or a wrong type is one error naming the YAML path (mergekit's pydantic models
// silently drop unknown keys, which turns a typo like `dype:` or a mis-indented `t:` into a
// different merge). YAML through core/recipe/yaml.ts: CRLF and BOM fine, duplicate keys and
// several documents refused with the line.
import { z } from 'zod';
import { torchDtypeToDtype } from '../dtypes.js';
import { MoeforgeError } from '../errors.js';
import type { ParameterBlock } from './parameters.js';
import { loadYamlDocument } from './yaml.js';

const scalar = z.union([z.number(), z.boolean(), z.string()]);
const conditional = z.strictObject({ filter: z.string().nullish(), value: z.union([scalar, z.array(scalar)]) });
const setting = z.union([scalar, z.array(scalar), conditional, z.array(conditional)]);
// `parameters:` whose children are all comments is null in YAML: the same as absent.
const block = z.record(z.string(), setting).nullish();
const modelRef = z.string().min(1);

const modelEntry = z.strictObject({ model: modelRef, parameters: block });
const sliceSource = z.strictObject({
  model: modelRef,
  layer_range: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
  parameters: block,
});
const slice = z.strictObject({ sources: z.array(sliceSource).min(1), base_model: modelRef.nullish(), parameters: block });

const schema = z.strictObject({
  merge_method: z.string().min(1),
  base_model: modelRef.nullish(),
  models: z.array(modelEntry).min(1).optional(),
  slices: z.array(slice).min(1).optional(),
  modules: z.unknown().optional(),
  parameters: block,
  dtype: z.string().nullish(),
  out_dtype: z.string().nullish(),
  tokenizer_source: z.string().nullish(),
  tokenizer: z
    .strictObject({ source: z.string().nullish(), tokens: z.unknown().optional(), pad_to_multiple_of: z.number().int().nullish() })
    .nullish(),
  chat_template: z.string().nullish(),
  name: z.string().nullish(),
  random_seed: z.number().nullish(),
});

export type RawMergeConfig = z.infer<typeof schema>;

export interface MergeModelEntry {
  model: string;
  parameters: ParameterBlock | null;
  /** From the slices form: must cover every layer of the model (checked against its config). */
  layerRange?: [number, number];
}

export type TokenizerSource = { kind: 'base' } | { kind: 'union' } | { kind: 'model'; model: string };

export interface MergeConfig {
  mergeMethod: string;
  baseModel: string | undefined;
  models: MergeModelEntry[];
  /** The slice's own `parameters` (between a model's and the top-level ones). */
  sliceParameters: ParameterBlock | null;
  parameters: ParameterBlock | null;
  /** Output dtype: out_dtype, else dtype (mergekit loads in `dtype` and saves in `out_dtype`); undefined = the base's. */
  outDtype: 'F32' | 'F16' | 'BF16' | undefined;
  tokenizerSource: TokenizerSource | undefined;
  chatTemplate: string | undefined;
  name: string | undefined;
  randomSeed: number | undefined;
  /** Things accepted but not acted on, said once to the user. */
  notes: string[];
  /** The validated YAML object, for provenance. */
  raw: RawMergeConfig;
}

function yamlPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `'${k}'`).join(', ');
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
  }
  if (issue.code === 'invalid_type' && value === undefined) return `missing (expected ${issue.expected})`;
  if (issue.code === 'invalid_union') return `not a valid value (got ${JSON.stringify(value)}): expected a number, string, boolean, a list of them, or a filter list of {filter, value}`;
  return `${issue.message.replace(/^Invalid input: /, '')} (got ${JSON.stringify(value)})`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p as string] : undefined;
  return v;
}

function fail(label: string, path: string, message: string): never {
  throw new MoeforgeError('invalid_recipe', message, { path: `${label}: ${path}` });
}

function outDtypeOf(label: string, key: string, value: string | null | undefined): 'F32' | 'F16' | 'BF16' | undefined {
  if (value === undefined || value === null) return undefined;
  const d = torchDtypeToDtype(value);
  if (!d) fail(label, key, `unknown dtype ${JSON.stringify(value)} (expected float32, bfloat16 or float16)`);
  return d;
}

function checkRef(label: string, path: string, ref: string): string {
  if (/\+/.test(ref)) fail(label, path, `LoRA references (model+lora) are not supported: ${JSON.stringify(ref)}`);
  if (/\s$|^\s/.test(ref)) fail(label, path, `model reference has surrounding spaces: ${JSON.stringify(ref)}`);
  return ref;
}

/** Validates an already-loaded YAML value. `methods` (the registered names) checks merge_method. */
export function parseMergeConfigValue(value: unknown, label: string, methods?: readonly string[]): MergeConfig {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(label, '(top level)', 'a merge config must be a YAML mapping (merge_method, models, …)');
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' && issue.keys.length === 1 ? [...issue.path, issue.keys[0]!] : issue.path;
    fail(label, yamlPath(path), issueMessage(issue, valueAt(value, issue.path)));
  }
  const c = r.data;
  const notes: string[] = [];
  if (methods && !methods.includes(c.merge_method)) {
    fail(label, 'merge_method', `unsupported merge method ${JSON.stringify(c.merge_method)} (supported: ${methods.join(', ')})`);
  }
  if (c.modules !== undefined) fail(label, 'modules', 'the modules form is not supported; use models (or one slice)');
  const forms = [c.models, c.slices].filter((x) => x !== undefined).length;
  if (forms !== 1) fail(label, forms ? 'slices' : 'models', "exactly one of 'models' or 'slices' must be present");
  if (c.tokenizer_source && c.tokenizer) fail(label, 'tokenizer', 'give tokenizer_source or tokenizer, not both');

  let models: MergeModelEntry[];
  let sliceParameters: ParameterBlock | null = null;
  let baseModel = c.base_model ?? undefined;
  if (c.models) {
    models = c.models.map((m, i) => ({ model: checkRef(label, `models[${i}].model`, m.model), parameters: (m.parameters ?? null) as ParameterBlock | null }));
  } else {
    if (c.slices!.length !== 1) {
      fail(label, 'slices', `${c.slices!.length} slices: only one slice whose sources each cover all layers is supported (no frankenmerges)`);
    }
    const s = c.slices![0]!;
    if (s.base_model) baseModel = s.base_model;
    sliceParameters = (s.parameters ?? null) as ParameterBlock | null;
    models = s.sources.map((src, i) => ({
      model: checkRef(label, `slices[0].sources[${i}].model`, src.model),
      parameters: (src.parameters ?? null) as ParameterBlock | null,
      layerRange: src.layer_range as [number, number],
    }));
  }
  if (baseModel !== undefined) checkRef(label, 'base_model', baseModel);
  const params = (c.parameters ?? null) as ParameterBlock | null;
  const allBlocks = [params, sliceParameters, ...models.map((m) => m.parameters)];
  if (allBlocks.some((b) => b && 'int8_mask' in b)) {
    notes.push('int8_mask is accepted and ignored: moeforge always keeps its masks as booleans');
  }
  if (c.dtype && c.out_dtype) notes.push(`dtype ${c.dtype} is ignored for compute (moeforge computes in float32); output is ${c.out_dtype}`);

  let tokenizerSource: TokenizerSource | undefined;
  const ts = c.tokenizer?.source ?? c.tokenizer_source ?? undefined;
  if (c.tokenizer?.tokens !== undefined || c.tokenizer?.pad_to_multiple_of) {
    fail(label, 'tokenizer', 'tokenizer.tokens and tokenizer.pad_to_multiple_of are not supported');
  }
  if (ts === 'base') tokenizerSource = { kind: 'base' };
  else if (ts === 'union') tokenizerSource = { kind: 'union' };
  else if (ts) tokenizerSource = { kind: 'model', model: checkRef(label, 'tokenizer_source', ts.replace(/^model:/, '')) };

  let randomSeed: number | undefined;
  if (c.random_seed !== undefined && c.random_seed !== null) {
    if (!Number.isSafeInteger(c.random_seed) || c.random_seed < 0) fail(label, 'random_seed', `expected a non-negative integer (got ${c.random_seed})`);
    randomSeed = c.random_seed;
  }

  return {
    mergeMethod: c.merge_method,
    baseModel,
    models,
    sliceParameters,
    parameters: params,
    outDtype: outDtypeOf(label, c.out_dtype ? 'out_dtype' : 'dtype', c.out_dtype ?? c.dtype),
    tokenizerSource,
    chatTemplate: c.chat_template ?? undefined,
    name: c.name ?? undefined,
    randomSeed,
    notes,
    raw: c,
  };
}

/** Parses a mergekit-yaml file's text. */
export function parseMergeConfig(text: string, label: string, methods?: readonly string[]): MergeConfig {
  return parseMergeConfigValue(loadYamlDocument(text, label), label, methods);
}
