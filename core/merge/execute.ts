// `moeforge merge`: plan (plan.ts), then stream every tensor through the merge method chunk by
// chunk into an atomic sharded checkpoint (core/checkpoint/writer.ts), then config.json, the
// tokenizer files, a model card and `moeforge.yml` (resolved config, seed, tool version, source
// revisions). Nothing appears at the output path unless everything succeeded.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { stringify } from 'yaml';
import { CheckpointWriter } from '../checkpoint/writer.js';
import { dtypeToTorchDtype, encodeFloat32 } from '../dtypes.js';
import { MoeforgeError, fsError } from '../errors.js';
import { codeBlock, renderModelCard } from '../model-card.js';
import type { MergeMethod, ModelEnhancer } from '../plugins.js';
import { parseMergeConfig, type MergeConfig } from '../recipe/merge-config.js';
import { resolveParameters } from '../recipe/parameters.js';
import { Rng } from '../rng.js';
import { VERSION } from '../version.js';
import { openModel, type OpenedModel } from './models.js';
import { planMerge, type MergePlan, type PlannedTensor } from './plan.js';
import { checkSameTokenizer } from './tokenizer-files.js';
import { copyCarriedFiles } from '../tokenizer/files.js';

export interface MergeRunOptions {
  configPath: string;
  /** The registered methods (container.resolveAll(TOKENS.MergeMethod)). */
  methods: readonly MergeMethod[];
  /** For model references that are not local folders (ExpertSource plugins). */
  container?: DependencyContainer;
  /** Largest shard in bytes (default 5 GB, mergekit's default). */
  shardSizeBytes?: number;
  /** Elements per chunk (default 2^20). */
  chunkSize?: number;
  /** Used when the config has no random_seed (default 0). */
  seed?: number;
  /** Importance-based expert enhancement (`enhance_threshold` / `enhance_keep` per model), from the composition root. */
  enhancer?: ModelEnhancer;
}

export interface PreparedMerge {
  config: MergeConfig;
  plan: MergePlan;
  seed: number;
  configText: string;
  notes: string[];
  /** The config file's folder (relative data paths of data-driven methods). */
  configDir: string;
  /** Models (index in plan.models) whose layers the enhancer may revert, with their parameters. */
  enhance: { enhancer: ModelEnhancer; models: { index: number; params: Record<string, unknown>; where: string }[] } | undefined;
  close(): Promise<void>;
}

export interface MergeProgress {
  index: number;
  total: number;
  tensor: string;
  bytesWritten: number;
  totalBytes: number;
}

/** Reads and validates the config, opens the models and plans every tensor (reads no weights). */
export async function prepareMerge(opts: MergeRunOptions): Promise<PreparedMerge> {
  let configText: string;
  try {
    configText = await readFile(opts.configPath, 'utf8');
  } catch (e) {
    throw fsError(e, opts.configPath, 'read the merge config');
  }
  const label = path.basename(opts.configPath);
  const config = parseMergeConfig(configText, label, opts.methods.map((m) => m.name));
  const method = opts.methods.find((m) => m.name === config.mergeMethod)!;
  const notes = [...config.notes];
  if (config.chatTemplate) notes.push(`chat_template ${JSON.stringify(config.chatTemplate)} is ignored: the tokenizer source's template is kept`);

  const baseDir = path.dirname(path.resolve(opts.configPath));
  const opened = new Map<string, OpenedModel>();
  const open = async (ref: string) => {
    let m = opened.get(ref);
    if (!m) {
      m = await openModel(opts.container, ref, baseDir);
      opened.set(ref, m);
    }
    return m;
  };
  const close = async () => {
    await Promise.all([...opened.values()].map((m) => m.checkpoint.close()));
  };
  try {
    let base: OpenedModel | undefined;
    const entries: number[] = [];
    if (method.requiresBase) {
      if (!config.baseModel) {
        throw new MoeforgeError('invalid_recipe', `merge_method ${method.name} needs a base_model`, { path: `${label}: base_model` });
      }
      base = await open(config.baseModel);
      // As mergekit: the base model is the task-vector origin, never one of the task vectors.
      config.models.forEach((m, i) => {
        if (m.model !== config.baseModel) entries.push(i);
      });
    } else {
      config.models.forEach((_, i) => entries.push(i));
      if (config.baseModel && !config.models.some((m) => m.model === config.baseModel)) {
        notes.push(`base_model ${config.baseModel} is not among the models: ${method.name} uses it only for the tensor list, config and tokenizer`);
      }
    }
    const models = await Promise.all(entries.map((i) => open(config.models[i]!.model)));
    const template = base ?? (config.baseModel ? await open(config.baseModel) : models[0]!);
    const plan = planMerge({
      config,
      method,
      template,
      base,
      models,
      modelEntries: entries,
      shardSizeBytes: opts.shardSizeBytes ?? 5_000_000_000,
      chunkSize: opts.chunkSize ?? 1 << 20,
    });
    const seed = config.randomSeed ?? opts.seed ?? 0;
    const enhance = planEnhance(opts.enhancer, config, plan, label);
    return { config, plan, seed, configText, notes, configDir: baseDir, enhance, close };
  } catch (e) {
    await close();
    throw e;
  }
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** What `--dry-run` prints: every tensor with its shard, then the totals and the memory estimate. */
export function describePlan(p: PreparedMerge): string {
  const { plan } = p;
  const shardOf = new Map<string, string>();
  for (const s of plan.shards) for (const t of s.tensors) shardOf.set(t.name, s.file);
  const lines = [
    `merge_method ${plan.method.name} (${plan.method.reference})`,
    `base ${plan.base?.ref ?? '(none)'}; models ${plan.models.map((m) => m.ref).join(', ')}; seed ${p.seed}`,
  ];
  for (const t of plan.tensors) {
    lines.push(`  ${t.name} [${t.shape.join(', ')}] ${t.dtype} ${formatBytes(t.bytes)} -> ${shardOf.get(t.name)}`);
  }
  lines.push(
    `${plan.tensors.length} tensors, ${formatBytes(plan.totalBytes)} in ${plan.shards.length} shard${plan.shards.length === 1 ? '' : 's'}`,
    `peak memory estimate ${formatBytes(plan.peakMemoryBytes)} (chunks of ${plan.chunkSize} elements × ${plan.models.length + (plan.base ? 1 : 0)} inputs)`,
  );
  for (const n of p.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

/** Streams one tensor through the method as encoded byte chunks, one chunk in flight. */
async function* mergedBytes(plan: MergePlan, t: PlannedTensor, rng: Rng, prepared: unknown, reverted: Set<number>[]): AsyncGenerator<Uint8Array> {
  const reader = (m: OpenedModel, i?: number) => {
    // An enhanced model's reverted layer reads as the base's.
    const from = i !== undefined && t.layer !== undefined && reverted[i]?.has(t.layer) ? plan.base! : m;
    return (s: number, e: number) => from.checkpoint.readFloat32Range(t.name, s, e);
  };
  const queue: Uint8Array[] = [];
  let finished = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let release: (() => void) | undefined;
  let expected = 0;
  const run = plan.method
    .mergeTensor(
      {
        tensorName: t.name,
        role: t.role,
        layer: t.layer,
        numLayers: plan.numLayers,
        shape: t.shape,
        numel: t.numel,
        base: plan.base ? reader(plan.base) : undefined,
        models: plan.models.map((m, i) => reader(m, i)),
        global: t.global,
        perModel: t.perModel,
        rng,
        chunkSize: plan.chunkSize,
        prepared,
      },
      async (start, values) => {
        if (start !== expected) throw new Error(`${plan.method.name} wrote ${t.name} out of order (${start}, expected ${expected})`);
        expected += values.length;
        queue.push(encodeFloat32(t.dtype, values));
        wake?.();
        await new Promise<void>((r) => (release = r));
      },
    )
    .then(
      () => {
        finished = true;
        wake?.();
      },
      (e: unknown) => {
        failure = e;
        finished = true;
        wake?.();
      },
    );
  for (;;) {
    const next = queue.shift();
    if (next) {
      const r = release;
      release = undefined;
      yield next;
      r?.();
      continue;
    }
    if (finished) break;
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
  await run;
  if (failure) throw failure;
  if (expected !== t.numel) throw new Error(`${plan.method.name} wrote ${expected} of ${t.numel} elements of ${t.name}`);
}

/** Executes a prepared merge into `outFolder` (atomic). */
export async function executeMerge(
  p: PreparedMerge,
  outFolder: string,
  opts: { overwrite?: boolean; onProgress?: (e: MergeProgress) => void; onNote?: (line: string) => void } = {},
): Promise<void> {
  const { plan, config } = p;
  const tokenizerFolder = await tokenizerSourceFolder(p);
  const reverted = await runEnhance(p, opts.onNote);
  const prepared = await runPrepare(p, opts.onNote);
  const writer = await CheckpointWriter.create(
    outFolder,
    plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    { shardSizeBytes: plan.shardSizeBytes, overwrite: opts.overwrite, metadata: { format: 'pt' } },
  );
  try {
    const root = new Rng(p.seed);
    for (const [index, t] of plan.tensors.entries()) {
      await writer.writeTensor(t.name, mergedBytes(plan, t, root.derive(t.name), prepared, reverted));
      opts.onProgress?.({ index: index + 1, total: plan.tensors.length, tensor: t.name, bytesWritten: writer.bytesWritten, totalBytes: plan.totalBytes });
    }
    const dir = writer.tempFolder;
    const outDtype = plan.tensors[0]?.dtype ?? 'F32';
    const cfg: Record<string, unknown> = { ...plan.template.checkpoint.rawConfig, torch_dtype: dtypeToTorchDtype(outDtype) };
    if ('dtype' in cfg) cfg.dtype = dtypeToTorchDtype(outDtype);
    await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
    const tokenizerFiles = await copyCarriedFiles(tokenizerFolder, dir);
    const sources = [...new Map([plan.base, ...plan.models, plan.template].filter((m): m is OpenedModel => !!m).map((m) => [m.ref, m])).values()];
    const provenance = {
      tool: 'moeforge',
      version: VERSION,
      command: 'merge',
      seed: p.seed,
      merge_method: plan.method.name,
      method_reference: plan.method.reference,
      output_dtype: dtypeToTorchDtype(outDtype),
      sources: sources.map((m) => ({ ref: m.ref, ...(m.revision ? { revision: m.revision } : {}) })),
      tokenizer_files: tokenizerFiles,
      notes: p.notes,
      config: config.raw,
    };
    await writeFile(path.join(dir, 'moeforge.yml'), stringify(provenance));
    await writeFile(path.join(dir, 'README.md'), modelCard(p));
    await writer.finish();
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

/** Which models ask for enhancement; their parameters are checked here, before any weight is read. */
function planEnhance(enhancer: ModelEnhancer | undefined, config: MergeConfig, plan: MergePlan, label: string): PreparedMerge['enhance'] {
  if (!enhancer) return undefined;
  const ctx = { tensorName: '', role: undefined, t: 0 };
  const models = plan.modelEntries.flatMap((e, index) => {
    const where = `models[${e}].parameters.`;
    const params = resolveParameters(enhancer.modelParameterDefs, [config.models[e]?.parameters, config.sliceParameters, config.parameters], ctx, where, false);
    return enhancer.wants(params, where) ? [{ index, params, where }] : [];
  });
  if (models.length === 0) return undefined;
  if (!plan.base) {
    throw new MoeforgeError('invalid_recipe', `enhance_threshold / enhance_keep revert layers to the base: merge_method ${plan.method.name} has no base`, {
      path: `${label}: base_model`,
    });
  }
  return { enhancer, models };
}

/** Per model, the layers the enhancer reverts to the base (empty sets when none asked). */
async function runEnhance(p: PreparedMerge, onNote: ((line: string) => void) | undefined): Promise<Set<number>[]> {
  const sets = p.plan.models.map(() => new Set<number>());
  if (!p.enhance) return sets;
  for (const m of p.enhance.models) {
    const model = p.plan.models[m.index]!;
    const layers = await p.enhance.enhancer.revertedLayers({
      baseFolder: p.plan.base!.folder,
      folder: model.folder,
      ref: model.ref,
      templateFolder: p.plan.template.folder,
      params: m.params,
      where: m.where,
      configDir: p.configDir,
      note: (line) => {
        p.notes.push(line);
        onNote?.(line);
      },
    });
    for (const l of layers) sets[m.index]!.add(l);
  }
  return sets;
}

/** A data-driven method's pre-pass (MergeMethod.prepare), with parameters resolved for no particular tensor. */
async function runPrepare(p: PreparedMerge, onNote: ((line: string) => void) | undefined): Promise<unknown> {
  const { plan, config } = p;
  if (!plan.method.prepare) return undefined;
  const ctx = { tensorName: '', role: undefined, t: 0 };
  return plan.method.prepare({
    baseFolder: plan.base?.folder,
    modelFolders: plan.models.map((m) => m.folder),
    modelRefs: plan.models.map((m) => m.ref),
    templateFolder: plan.template.folder,
    global: resolveParameters(plan.method.globalParameterDefs, [config.parameters], ctx, 'parameters.', false),
    perModel: plan.modelEntries.map((e) =>
      resolveParameters(plan.method.modelParameterDefs, [config.models[e]?.parameters, config.sliceParameters, config.parameters], ctx, `models[${e}].parameters.`, false),
    ),
    configDir: p.configDir,
    seed: p.seed,
    note: (line) => {
      p.notes.push(line);
      onNote?.(line);
    },
  });
}

async function tokenizerSourceFolder(p: PreparedMerge): Promise<string> {
  const src = p.config.tokenizerSource;
  const { plan } = p;
  if (!src || src.kind === 'base') return plan.template.folder;
  if (src.kind === 'union') {
    await checkSameTokenizer([plan.template, ...plan.models]);
    return plan.template.folder;
  }
  const found = [plan.template, ...plan.models, ...(plan.base ? [plan.base] : [])].find((m) => m.ref === src.model);
  if (!found) {
    throw new MoeforgeError('invalid_recipe', `tokenizer source ${src.model} is not one of the merged models`, { path: 'tokenizer_source' });
  }
  return found.folder;
}

function modelCard(p: PreparedMerge): string {
  const { plan, config } = p;
  const refs = [...(plan.base ? [plan.base.ref] : []), ...plan.models.map((m) => m.ref)];
  return renderModelCard({
    title: config.name ?? `${plan.method.name} merge`,
    baseModels: refs,
    tags: ['merge', 'moeforge'],
    summary: `A merge of pre-trained language models made with moeforge ${VERSION} using the \`${plan.method.name}\` method (${plan.method.reference}).`,
    sections: [
      {
        heading: 'Models merged',
        body: [
          ...(plan.base ? [`- base: ${plan.base.ref}`] : []),
          ...plan.models.map((m) => `- ${m.ref}${m.revision ? ` (revision ${m.revision})` : ''}`),
        ].join('\n'),
      },
      { heading: 'Configuration', body: `The configuration used, as given:\n\n${codeBlock(p.configText, 'yaml')}` },
      ...(p.notes.length ? [{ heading: 'Notes', body: p.notes.map((n) => `- ${n}`).join('\n') }] : []),
    ],
  });
}
