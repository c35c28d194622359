// Real mergekit-yaml configs, as their authors published them (read in place from the shared
// corpus, never copied): the ones mergekit accepts for these methods parse; the broken or
// unsupported ones get one clear error; a few merge end to end with every model reference
// substituted (in memory) by a tiny synthetic model.
import 'reflect-metadata';
import test from 'ava';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { MoeforgeError } from '../core/errors.js';
import { executeMerge, prepareMerge } from '../core/merge/execute.js';
import { parseMergeConfig } from '../core/recipe/merge-config.js';
import { loadYamlDocument } from '../core/recipe/yaml.js';
import { BUILTIN_MERGE_METHODS } from '../experts/methods/register.js';
import { mergeArrays } from '../experts/methods/in-memory.js';
import { slerp } from '../experts/methods/slerp.js';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { CORPUS_DIR, tempDir } from './helpers/paths.js';

const names = BUILTIN_MERGE_METHODS.map((m) => m.name);
const file = (n: string) => path.join(CORPUS_DIR, 'dense', `${n}.yml`);
const load = async (n: string) => readFile(file(n), 'utf8');
const readFileSyncUtf8 = (n: string) => readFileSync(file(n), 'utf8');

const ACCEPTED: Record<string, string> = {
  '001': 'slerp', '002': 'ties', '007': 'linear', '008': 'dare_ties', '009': 'slerp', '010': 'dare_ties',
  '011': 'dare_ties', '012': 'task_arithmetic', '015': 'slerp', '016': 'della_linear', '017': 'breadcrumbs_ties',
  '018': 'ties', '020': 'dare_linear', '022': 'breadcrumbs_ties', '024': 'dare_ties', '027': 'slerp', '030': 'slerp',
  '033': 'ties', '034': 'model_stock', '036': 'model_stock', '037': 'della', '038': 'della', '044': 'della',
  '045': 'dare_ties', '046': 'model_stock',
};

const REJECTED: Record<string, RegExp> = {
  '003': /holds 2 YAML documents .*second starting at line 44/, // two merges separated by ---
  '004': /duplicate key 'merge_method' at line 15/, // two configs pasted together
  '005': /invalid YAML at line 1/, // free text mixed into the block
  '006': /unsupported merge method "passthrough"/,
  '014': /^t: unknown key 't'/, // mis-indented t: silently ignored by mergekit
  '019': /11 slices: only one slice/,
  '029': /layer_range: missing/,
  '032': /invalid YAML at line 14/,
  '035': /LoRA references \(model\+lora\) are not supported/,
  '039': /unknown keys 'select_topk', 'dype'/,
  '040': /invalid YAML at line 3/,
  '042': /unsupported merge method "karcher"/,
  '043': /modules form is not supported/,
  '047': /unsupported merge method "nuslerp"/,
};

for (const [n, method] of Object.entries(ACCEPTED)) {
  test(`dense/${n}.yml parses as ${method}`, async (t) => {
    const c = parseMergeConfig(await load(n), `${n}.yml`, names);
    t.is(c.mergeMethod, method);
    t.true(c.models.length >= 1);
  });
}

for (const [n, want] of Object.entries(REJECTED)) {
  test(`dense/${n}.yml is refused with one clear error`, async (t) => {
    const e = t.throws(() => parseMergeConfig(readFileSyncUtf8(n), `${n}.yml`, names));
    t.true(e instanceof MoeforgeError, String(e));
    t.is((e as MoeforgeError).code, 'invalid_recipe');
    const line = (e as MoeforgeError).toLine();
    t.is(line.split('\n').length, 1);
    t.regex(line.replace(/^error\[invalid_recipe\]: \d+\.yml: /, ''), want);
  });
}


test('details read as mergekit reads them: global params as per-model fallback, numbers for booleans', (t) => {
  const c8 = parseMergeConfig(readFileSyncUtf8('008'), '008.yml', names);
  t.true(c8.models.every((m) => m.parameters === null));
  t.like(c8.parameters, { density: 0.3, weight: 1, normalize: true });
  t.deepEqual(c8.tokenizerSource, { kind: 'base' });
  const c16 = parseMergeConfig(readFileSyncUtf8('016'), '016.yml', names); // CRLF + Windows paths
  t.regex(c16.models[0]!.model, /^E:\\/);
  const c10 = parseMergeConfig(readFileSyncUtf8('010'), '010.yml', names);
  t.is(c10.parameters, null); // `parameters:` with only comments
});

// --- end to end, with the models substituted -------------------------------------------------

const SIZE = { hiddenSize: 16, intermediateSize: 32, numLayers: 3, vocabSize: 64, numHeads: 2, numKvHeads: 1 };

/** Replaces every model reference by one of the synthetic folders and every layer_range by the whole stack. */
function substitute(value: unknown, folders: string[], map: Map<string, string>): unknown {
  const pick = (ref: string) => {
    if (!map.has(ref)) map.set(ref, folders[map.size % folders.length]!);
    return map.get(ref)!;
  };
  const walk = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) return key === 'layer_range' ? [0, SIZE.numLayers] : v.map((x) => walk(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    if (typeof v === 'string' && (key === 'model' || key === 'base_model')) return pick(v);
    if (typeof v === 'string' && (key === 'tokenizer_source' || key === 'source') && v !== 'base' && v !== 'union') return pick(v.replace(/^model:/, ''));
    return v;
  };
  return walk(value);
}

async function zoo(t: import('ava').ExecutionContext): Promise<{ dir: string; folders: string[] }> {
  const { dir, cleanup } = await tempDir('moeforge-corpus-');
  t.teardown(cleanup);
  const folders: string[] = [];
  for (let i = 0; i < 6; i++) {
    const f = path.join(dir, `m${i}`);
    if (i === 0) await writeSyntheticModel(f, { ...SIZE, seed: 1 });
    else await writeSyntheticModel(f, { ...SIZE, seed: 1, perturb: { from: folders[0]!, scale: 0.01, seed: 100 + i } });
    folders.push(f);
  }
  return { dir, folders };
}

for (const n of ['001', '002', '017', '020', '034', '038']) {
  test.serial(`dense/${n}.yml merges end to end with substituted models`, async (t) => {
    const { dir, folders } = await zoo(t);
    const raw = loadYamlDocument(await load(n), `${n}.yml`) as Record<string, unknown>;
    // Distinct base: the first reference met (base_model when present) gets the unperturbed model.
    const map = new Map<string, string>();
    if (typeof raw.base_model === 'string') map.set(raw.base_model, folders[0]!);
    const cfgPath = path.join(dir, `${n}.yml`);
    await writeFile(cfgPath, stringify(substitute(raw, folders, map)));
    const prepared = await prepareMerge({ configPath: cfgPath, methods: BUILTIN_MERGE_METHODS, chunkSize: 100 });
    const out = path.join(dir, 'out');
    try {
      await executeMerge(prepared, out);
    } finally {
      await prepared.close();
    }
    const ck = await Checkpoint.open(out);
    t.teardown(() => ck.close());
    const ref = await Checkpoint.open(folders[0]!);
    t.teardown(() => ref.close());
    t.deepEqual(ck.names(), ref.names());
    for (const name of ck.names()) {
      const v = await ck.readFloat32(name);
      t.true(v.every(Number.isFinite), name);
    }
    if (n === '001') {
      // NeuralPipe slerp: t for self_attn is the gradient [0, 0.5, 0.3, 0.7, 1] at layer 1 of 3 (t = 0.5 → 0.3).
      const name = 'model.layers.1.self_attn.o_proj.weight';
      const c = parseMergeConfig(await readFile(cfgPath, 'utf8'), 'x', names);
      const other = c.models.find((m) => m.model !== c.baseModel)!.model;
      const b = await Checkpoint.open(c.baseModel!);
      const o = await Checkpoint.open(other);
      t.teardown(() => Promise.all([b.close(), o.close()]).then(() => undefined));
      const want = await mergeArrays(slerp, { base: await b.readFloat32(name), models: [await o.readFloat32(name)], perModel: [{}], global: { t: 0.3 } });
      const got = await ck.readFloat32(name);
      const dtypeTol = ck.header(name).dtype === 'BF16' ? 1 / 128 : 1e-6;
      want.forEach((w, i) => t.true(Math.abs(got[i]! - w) <= dtypeTol * Math.max(1e-2, Math.abs(w)), `${i}: ${got[i]} vs ${w}`));
    }
  });
}
