// `moeforge inspect` of an exported heterogeneous MoE: the router, then each expert
// summarised as inspect summarises a dense model (core/inspect.ts summarizeModel over
// the expert's config and its `experts.{i}.` tensors), plus tensors under no expert.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint, CONFIG_FILE, INDEX_FILE } from '../checkpoint/checkpoint.js';
import type { ValidationProblem } from '../architectures/index.js';
import { fsError } from '../errors.js';
import { formatBytes, formatSummary, summarizeModel, type ModelSummary } from '../inspect.js';
import { getArchitecture, tensorName } from '../architectures/index.js';
import {
  centroidName,
  expertPrefix,
  HETERO_ARCHITECTURE,
  parseHeteroConfig,
  projInName,
  projOutName,
  ROUTER_WEIGHT,
  SHARED_EMBED,
  SHARED_HEAD,
  type HeteroConfig,
  type HeteroForm,
} from './config.js';

export interface HeteroSummary {
  modelType: 'moeforge_hetero';
  architecture: string;
  autoMap: Record<string, string>;
  form: HeteroForm;
  router: { type: string; expertsPerSequence: number; temperature: number };
  vocabSize: number;
  experts: { name: string; prefix: string; summary: ModelSummary }[];
  parameters: { total: number };
  shards: number;
  bytesOnDisk: number;
  /** Tensors neither under an expert prefix nor a router tensor, and missing remote-code files. */
  problems: ValidationProblem[];
}

export async function summarizeHeteroFolder(folder: string): Promise<HeteroSummary> {
  const cp = await Checkpoint.open(folder);
  try {
    const label = path.join(folder, CONFIG_FILE);
    const config = parseHeteroConfig(cp.rawConfig, label);
    const headers = cp.headers();
    const experts = config.expertConfigs.map((rawConfig, i) => {
      let raw = rawConfig;
      const prefix = expertPrefix(i);
      const tensors = new Map([...headers].filter(([n]) => n.startsWith(prefix)).map(([n, h]) => [n.slice(prefix.length), h]));
      if (config.form === 'projected') {
        // Its embedding and head are computed at load from the shared ones (core/hetero/projected.ts).
        const c = config.experts[i]!;
        const arch = getArchitecture(c.modelType);
        for (const role of ['embed', 'lm_head'] as const) tensors.set(tensorName(arch, { role }), { dtype: 'F32', shape: [c.vocabSize, c.hiddenSize] });
        raw = { ...raw, tie_word_embeddings: false };
      }
      const summary = summarizeModel({ rawConfig: raw, tensors, files: [], label: `${label}: expert_configs[${i}]` });
      // Expert problems name the stored tensor.
      summary.problems = summary.problems.map((p) => ({ ...p, tensor: prefix + p.tensor }));
      return { name: config.expertNames[i]!, prefix, summary };
    });
    const problems: ValidationProblem[] = [];
    const own = ownTensors(config);
    for (const [name, h] of headers) {
      if (experts.some((e) => name.startsWith(e.prefix))) continue;
      const want = own.get(name);
      if (!want) problems.push({ severity: 'error', kind: 'extra', tensor: name, message: 'belongs to no expert and is not a router or shared tensor' });
      else if (want.shape.join(',') !== h.shape.join(',')) problems.push({ severity: 'error', kind: 'shape', tensor: name, message: `shape [${h.shape.join(', ')}], expected [${want.shape.join(', ')}]` });
    }
    for (const [name, want] of own) {
      if (!headers.has(name)) problems.push({ severity: 'error', kind: 'missing', tensor: name, message: want.why });
    }
    const autoMap = (cp.rawConfig['auto_map'] ?? {}) as Record<string, string>;
    for (const ref of Object.values(autoMap)) {
      const file = `${ref.split('.')[0]}.py`;
      try {
        await stat(path.join(folder, file));
      } catch {
        problems.push({ severity: 'error', kind: 'missing', tensor: file, message: 'auto_map names a module the repo does not ship' });
      }
    }
    let bytesOnDisk = 0;
    for (const name of [...cp.files, CONFIG_FILE, INDEX_FILE]) {
      try {
        bytesOnDisk += (await stat(path.join(folder, name))).size;
      } catch (e) {
        if (name !== INDEX_FILE) throw fsError(e, path.join(folder, name), 'stat');
      }
    }
    let total = 0;
    for (const h of headers.values()) total += h.shape.reduce((a, b) => a * b, 1);
    return {
      modelType: 'moeforge_hetero',
      architecture: Array.isArray(cp.rawConfig['architectures']) ? String(cp.rawConfig['architectures'][0]) : HETERO_ARCHITECTURE,
      autoMap,
      form: config.form,
      router: { type: config.routerType, expertsPerSequence: config.topK, temperature: config.temperature },
      vocabSize: config.vocabSize,
      experts,
      parameters: { total },
      shards: cp.files.length,
      bytesOnDisk,
      problems,
    };
  } finally {
    await cp.close();
  }
}

/** The tensors a repo holds besides the experts' own: router tensors, and the projected form's shared ones. */
function ownTensors(config: HeteroConfig): Map<string, { shape: number[]; why: string }> {
  const out = new Map<string, { shape: number[]; why: string }>();
  const E = config.experts.length;
  const D = config.sharedHiddenSize ?? 0;
  if (config.routerType === 'centroid') config.experts.forEach((c, i) => out.set(centroidName(i), { shape: [c.hiddenSize], why: 'centroid routing needs one centroid per expert' }));
  if (config.routerType === 'learned') out.set(ROUTER_WEIGHT, { shape: [E, config.experts.reduce((s, c) => s + c.hiddenSize, 0)], why: 'learned routing needs its weight' });
  if (config.routerType === 'embedding') out.set(ROUTER_WEIGHT, { shape: [E, D], why: 'embedding routing needs its weight' });
  if (config.form === 'projected') {
    out.set(SHARED_EMBED, { shape: [config.vocabSize, D], why: 'the projected form needs the shared embedding' });
    out.set(SHARED_HEAD, { shape: [config.vocabSize, D], why: 'the projected form needs the shared head' });
    config.experts.forEach((c, i) => {
      out.set(projInName(i), { shape: [c.hiddenSize, D], why: 'the projected form needs one projection in per expert' });
      out.set(projOutName(i), { shape: [D, c.hiddenSize], why: 'the projected form needs one projection out per expert' });
    });
  }
  return out;
}

export function heteroHasErrors(s: HeteroSummary): boolean {
  return [...s.problems, ...s.experts.flatMap((e) => e.summary.problems)].some((p) => p.severity === 'error');
}

export function formatHeteroSummary(s: HeteroSummary): string {
  const lines = [
    `model_type:   ${s.modelType} (heterogeneous MoE, trust_remote_code)`,
    `architecture: ${s.architecture}`,
    `auto_map:     ${Object.entries(s.autoMap).map(([k, v]) => `${k} → ${v}`).join(', ') || 'none'}`,
    `form:         ${s.form === 'projected' ? "projected (MergeME's trained form: shared embedding and head, per-expert projections)" : 'whole (every expert keeps its embeddings and head)'}`,
    `router:       ${s.router.type}, ${s.router.expertsPerSequence} expert(s) per sequence, temperature ${s.router.temperature}`,
    `vocab:        ${s.vocabSize}`,
    `experts:      ${s.experts.length}`,
    `parameters:   ${s.parameters.total}`,
    `shards:       ${s.shards}`,
    `bytes on disk: ${s.bytesOnDisk} (${formatBytes(s.bytesOnDisk)})`,
    `problems:     ${s.problems.length === 0 ? 'none' : s.problems.length}`,
    ...s.problems.map((q) => `  ${q.severity} ${q.kind}: ${q.tensor}: ${q.message}`),
  ];
  for (const e of s.experts) {
    // Shards and bytes on disk belong to the repo (above), not to one expert.
    const own = formatSummary(e.summary)
      .split('\n')
      .filter((l) => !/^(shards|bytes on disk):/.test(l));
    lines.push('', `expert ${e.prefix.slice(0, -1)} (${e.name}):`, ...own.map((l) => `  ${l}`));
  }
  return lines.join('\n');
}
