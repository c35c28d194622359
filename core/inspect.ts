// The model summary behind `moeforge inspect`. It works from config.json and the
// safetensors headers only (no weights read), so it serves local folders and Hub
// repos alike (whose headers @huggingface/hub's parseSafetensorsMetadata fetches).

import { expectedTensors, getArchitecture, parseTensorName, validateTensors, type TensorHeader, type ValidationProblem } from './architectures/index.js';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Checkpoint, CONFIG_FILE, INDEX_FILE } from './checkpoint/checkpoint.js';
import { isSparseLayer } from './config/types.js';
import { fsError } from './errors.js';
import { normalizeConfig } from './config/normalize.js';
import { DTYPE_BYTES, isDtype } from './dtypes.js';

export interface ModelSummary {
  modelType: string;
  architecture: string;
  layers: number;
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  intermediateSize: number;
  /** MoE only. */
  experts?: number;
  expertsPerToken?: number;
  expertIntermediateSize?: number;
  sharedExpertIntermediateSize?: number;
  sparseLayers?: number[];
  tieWordEmbeddings: boolean;
  torchDtype: string;
  parameters: {
    /** Sum of the element counts of every stored tensor. */
    total: number;
    /** MoE: total minus, in every sparse layer, the (E − k) routed experts a token does not use. */
    activePerToken?: number;
  };
  /** Stored dtype → tensor count. */
  dtypes: Record<string, number>;
  /** Stored dtype → bytes of tensor data. */
  dtypeBytes: Record<string, number>;
  /** Number of .safetensors files among `files`. */
  shards: number;
  /** Sum of the sizes of `files`. */
  bytesOnDisk: number;
  problems: ValidationProblem[];
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface SummaryInput {
  rawConfig: Record<string, unknown>;
  tensors: ReadonlyMap<string, TensorHeader>;
  /** The checkpoint's files (at least its safetensors shards) with their sizes on disk. */
  files: { name: string; bytes: number }[];
  /** Names the config in errors, e.g. `models/x/config.json`. */
  label: string;
}

/** Throws what normalizeConfig throws (invalid_config, unknown_architecture); tensor problems are listed, not thrown. */
export function summarizeModel(input: SummaryInput): ModelSummary {
  const config = normalizeConfig(input.rawConfig, input.label);
  const dtypes: Record<string, number> = {};
  const dtypeBytes: Record<string, number> = {};
  let total = 0;
  for (const { dtype, shape } of input.tensors.values()) {
    const n = numel(shape);
    total += n;
    dtypes[dtype] = (dtypes[dtype] ?? 0) + 1;
    dtypeBytes[dtype] = (dtypeBytes[dtype] ?? 0) + n * (isDtype(dtype) ? DTYPE_BYTES[dtype] : 0);
  }
  const summary: ModelSummary = {
    modelType: config.modelType,
    architecture: config.architecture,
    layers: config.numLayers,
    hiddenSize: config.hiddenSize,
    heads: config.numHeads,
    kvHeads: config.numKvHeads,
    headDim: config.headDim,
    vocabSize: config.vocabSize,
    intermediateSize: config.intermediateSize,
    tieWordEmbeddings: config.tieWordEmbeddings,
    torchDtype: config.torchDtype,
    parameters: { total },
    dtypes,
    dtypeBytes,
    shards: input.files.filter((f) => f.name.endsWith('.safetensors')).length,
    bytesOnDisk: input.files.reduce((a, f) => a + f.bytes, 0),
    problems: validateTensors(config, input.tensors),
  };
  const moe = config.moe;
  if (moe) {
    const sparseLayers = Array.from({ length: config.numLayers }, (_, i) => i).filter((i) => isSparseLayer(config, i));
    summary.experts = moe.numExperts;
    summary.expertsPerToken = moe.expertsPerToken;
    summary.expertIntermediateSize = moe.expertIntermediateSize;
    if (moe.sharedExpertIntermediateSize !== null) summary.sharedExpertIntermediateSize = moe.sharedExpertIntermediateSize;
    summary.sparseLayers = sparseLayers;
    // Unused experts counted from the stored tensors (as stored, like the total): per sparse
    // layer, the routed experts' parameters × (E − k) / E.
    const arch = getArchitecture(config.modelType);
    const expertParams = new Map<number, number>();
    for (const [name, { shape }] of input.tensors) {
      const slot = parseTensorName(arch, name);
      if (slot?.expert === undefined || slot.layer === undefined || !isSparseLayer(config, slot.layer)) continue;
      expertParams.set(slot.layer, (expertParams.get(slot.layer) ?? 0) + numel(shape));
    }
    let unused = 0;
    for (const layerParams of expertParams.values()) {
      unused += (layerParams * (moe.numExperts - moe.expertsPerToken)) / moe.numExperts;
    }
    summary.parameters.activePerToken = total - Math.round(unused);
  }
  return summary;
}

/**
 * Summary of a local model folder: config.json and the safetensors headers (no weights
 * read). `files` = the weight shards plus config.json and the index, so `bytesOnDisk`
 * is what a download of the checkpoint costs (tokenizer files aside).
 */
export async function summarizeFolder(folder: string): Promise<ModelSummary> {
  const checkpoint = await Checkpoint.open(folder);
  try {
    const names = [...checkpoint.files, CONFIG_FILE, INDEX_FILE];
    const files: { name: string; bytes: number }[] = [];
    for (const name of names) {
      const file = path.join(folder, name);
      try {
        files.push({ name, bytes: (await stat(file)).size });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && name === INDEX_FILE) continue;
        throw fsError(e, file, 'stat');
      }
    }
    return summarizeModel({ rawConfig: checkpoint.rawConfig, tensors: checkpoint.headers(), files, label: path.join(folder, CONFIG_FILE) });
  } finally {
    await checkpoint.close();
  }
}

/** Expected element count of a checkpoint of this config (from the expected shapes, not stored ones). */
export function expectedParameterCount(rawConfig: Record<string, unknown>, label: string): number {
  return expectedTensors(normalizeConfig(rawConfig, label)).reduce((a, t) => a + numel(t.shape), 0);
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(2)} ${units[u]}`;
}

/** The text `moeforge inspect` prints: aligned `key: value` lines, then the problems. */
export function formatSummary(s: ModelSummary): string {
  const rows: [string, string][] = [
    ['model_type', s.modelType],
    ['architecture', s.architecture],
    ['layers', String(s.layers)],
    ['hidden size', String(s.hiddenSize)],
    ['heads / kv heads', `${s.heads} / ${s.kvHeads}`],
    ['head dim', String(s.headDim)],
    ['vocab', String(s.vocabSize)],
    ['intermediate size', String(s.intermediateSize)],
  ];
  if (s.experts !== undefined) {
    rows.push(['experts', `${s.experts} (${s.expertsPerToken} per token)`]);
    if (s.expertIntermediateSize !== undefined) rows.push(['expert size', String(s.expertIntermediateSize)]);
    if (s.sharedExpertIntermediateSize !== undefined) rows.push(['shared expert size', String(s.sharedExpertIntermediateSize)]);
    if (s.sparseLayers) rows.push(['sparse layers', s.sparseLayers.length === s.layers ? 'all' : `[${s.sparseLayers.join(', ')}]`]);
  }
  rows.push(['tied embeddings', s.tieWordEmbeddings ? 'yes' : 'no']);
  const p = s.parameters;
  rows.push([
    'parameters',
    `${p.total} (${formatCount(p.total)})` + (p.activePerToken !== undefined ? `, active per token ${p.activePerToken} (${formatCount(p.activePerToken)})` : ''),
  ]);
  const dtypeText = Object.keys(s.dtypes)
    .sort()
    .map((d) => `${d} ×${s.dtypes[d]} (${formatBytes(s.dtypeBytes[d] ?? 0)})`)
    .join(', ');
  rows.push(['dtypes', `${dtypeText || 'none'}; config torch_dtype ${s.torchDtype}`]);
  rows.push(['shards', String(s.shards)]);
  rows.push(['bytes on disk', `${s.bytesOnDisk} (${formatBytes(s.bytesOnDisk)})`]);
  const errors = s.problems.filter((q) => q.severity === 'error').length;
  const warnings = s.problems.length - errors;
  rows.push(['problems', s.problems.length === 0 ? 'none' : `${errors} error(s), ${warnings} warning(s)`]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const lines = rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`);
  for (const q of s.problems) lines.push(`  ${q.severity} ${q.kind}: ${q.tensor}: ${q.message}`);
  return lines.join('\n');
}
