// Export of a heterogeneous MoE as a transformers `trust_remote_code` repo (issue 9 §4):
//   config.json                         model_type moeforge_hetero, auto_map → the two modules
//   configuration_moeforge_hetero.py    MoeforgeHeteroConfig (templates/, copied unchanged)
//   modeling_moeforge_hetero.py         MoeforgeHeteroForCausalLM (templates/, copied unchanged)
//   model*.safetensors (+ index)        expert i's tensors under `experts.{i}.` with their
//                                       own HF names, `router.centroids.{i}` for centroid routing,
//                                       `router.gate.weight` for learned and embedding routing;
//                                       the projected form (core/hetero/projected.ts) drops the
//                                       experts' embeddings and heads for `shared.*`, `proj_in.{i}`,
//                                       `proj_out.{i}` (float32, as trained)
//   tokenizer files, README.md, moeforge.yml (when a recipe built it)
// Tensors are streamed as stored bytes (each expert keeps its dtype: no conversion, no
// decode), in chunks, through the sharded atomic CheckpointWriter.
import { copyFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../../../core/checkpoint/checkpoint.js';
import { CheckpointWriter } from '../../../core/checkpoint/writer.js';
import { dtypeToTorchDtype, encodeFloat32 } from '../../../core/dtypes.js';
import { MoeforgeError, fsError } from '../../../core/errors.js';
import { getArchitecture, tensorName } from '../../../core/architectures/index.js';
import { normalizeConfig } from '../../../core/config/normalize.js';
import {
  centroidName,
  expertPrefix,
  HETERO_CONFIG_MODULE,
  HETERO_MODELING_MODULE,
  heteroConfigJson,
  projInName,
  projOutName,
  ROUTER_WEIGHT,
  SHARED_EMBED,
  SHARED_HEAD,
} from '../../../core/hetero/config.js';
import type { ProjectedWeights } from '../../../core/plugins.js';
import type { SequenceRouterSpec } from '../../../core/hetero/router.js';
import { copyCarriedFiles } from '../../../core/tokenizer/files.js';
import { VERSION } from '../../../core/version.js';
import { renderHeteroCard } from './card.js';

export interface HeteroExportExpert {
  /** Display name (recipe order). */
  name: string;
  /** The reference as the recipe wrote it (model card base_model). */
  ref: string;
  /** Local folder with config.json and safetensors. */
  folder: string;
}

export interface HeteroExportOptions {
  experts: HeteroExportExpert[];
  router: SequenceRouterSpec;
  /** Folder whose tokenizer files are carried (the experts share one tokenizer). */
  tokenizerFolder: string;
  shardSizeBytes?: number;
  overwrite?: boolean;
  /** The resolved recipe, written as moeforge.yml and quoted in the card. */
  recipeYaml?: string;
  /** The projected form's trained weights (router.kind is then 'embedding'); absent for the whole form. */
  projected?: ProjectedWeights;
  /** Lines about how the router was fitted, for the model card. */
  report?: string[];
  /** Output dtype of every floating-point tensor (round-to-nearest-even); absent: each tensor as stored, computed ones float32. */
  dtype?: FloatDtype;
}

type FloatDtype = 'F32' | 'F16' | 'BF16';
const FLOAT_DTYPES = new Set<string>(['F32', 'F16', 'BF16']);

/** A float32 tensor computed by the build (centroids, router, the projected form's shared weights). */
interface ComputedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The tensors the build computed, in file order after the experts'. */
function computedTensors(o: HeteroExportOptions, expertWidths: number[]): ComputedTensor[] {
  const out: ComputedTensor[] = [];
  const E = o.experts.length;
  if (o.router.kind === 'centroid') (o.router.centroids ?? []).forEach((c, i) => out.push({ name: centroidName(i), shape: [c.length], data: c }));
  if (o.router.weight) out.push({ name: ROUTER_WEIGHT, shape: [E, o.router.weight.length / E], data: o.router.weight });
  const p = o.projected;
  if (p) {
    const V = p.embed.length / p.sharedHiddenSize;
    out.push({ name: SHARED_EMBED, shape: [V, p.sharedHiddenSize], data: p.embed }, { name: SHARED_HEAD, shape: [V, p.sharedHiddenSize], data: p.lmHead });
    expertWidths.forEach((d, i) => {
      out.push({ name: projInName(i), shape: [d, p.sharedHiddenSize], data: p.projIn[i]! }, { name: projOutName(i), shape: [p.sharedHiddenSize, d], data: p.projOut[i]! });
    });
  }
  for (const t of out) {
    if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length) throw new Error(`${t.name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  }
  return out;
}

/** The projected form keeps each expert's layers and final norm; its embedding and head are the shared ones. */
function keepsTensor(o: HeteroExportOptions, raw: Record<string, unknown>, folder: string, name: string): boolean {
  if (!o.projected) return true;
  const arch = getArchitecture(normalizeConfig(raw, path.join(folder, 'config.json')).modelType);
  return name !== tensorName(arch, { role: 'embed' }) && name !== tensorName(arch, { role: 'lm_head' });
}

export interface HeteroExportResult {
  out: string;
  tensors: number;
  bytes: number;
  shards: number;
  report: string[];
}

const CHUNK_BYTES = 16 << 20;

/** templates/ beside this file (tsx, tests) or in the source tree next to dist/ (tsc output has no .py). */
export function templatesDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'templates'), path.resolve(here, '..', '..', '..', '..', 'export', 'formats', 'hetero', 'templates')];
  const found = candidates.find((c) => existsSync(path.join(c, `${HETERO_MODELING_MODULE}.py`)));
  if (!found) throw new MoeforgeError('missing_file', `the remote-code templates are missing (looked in ${candidates.join(', ')})`, { path: `${HETERO_MODELING_MODULE}.py` });
  return found;
}

async function* rawChunks(cp: Checkpoint, name: string, bytes: number): AsyncIterable<Uint8Array> {
  for (let b = 0; b < bytes; b += CHUNK_BYTES) yield cp.readRawRange(name, b, Math.min(bytes, b + CHUNK_BYTES));
}

/** A stored tensor re-encoded as `dtype`, 4M elements at a time. */
async function* convertedChunks(cp: Checkpoint, name: string, numel: number, dtype: FloatDtype): AsyncIterable<Uint8Array> {
  const step = CHUNK_BYTES / 4;
  for (let e = 0; e < numel; e += step) yield encodeFloat32(dtype, await cp.readFloat32Range(name, e, Math.min(numel, e + step)));
}

export async function writeHeteroRepo(out: string, o: HeteroExportOptions): Promise<HeteroExportResult> {
  const templates = templatesDir();
  const cps: Checkpoint[] = [];
  try {
    for (const e of o.experts) cps.push(await Checkpoint.open(e.folder));
    const specs = cps.flatMap((cp, i) =>
      cp.names().filter((name) => keepsTensor(o, cp.rawConfig, o.experts[i]!.folder, name)).map((name) => {
        const h = cp.header(name);
        const convert = o.dtype !== undefined && FLOAT_DTYPES.has(h.dtype) && h.dtype !== o.dtype;
        return { name: expertPrefix(i) + name, dtype: convert ? o.dtype! : h.dtype, shape: [...h.shape], cp, source: name, bytes: h.end - h.begin, numel: h.numel, convert };
      }),
    );
    const computed = computedTensors(o, cps.map((cp) => normalizeConfig(cp.rawConfig, cp.folder).hiddenSize));
    const computedDtype: FloatDtype = o.dtype ?? 'F32';
    const computedSpecs = computed.map((t) => ({ name: t.name, dtype: computedDtype, shape: t.shape }));
    const writer = await CheckpointWriter.create(out, [...specs.map(({ name, dtype, shape }) => ({ name, dtype, shape })), ...computedSpecs], {
      shardSizeBytes: o.shardSizeBytes ?? 5_000_000_000,
      overwrite: o.overwrite ?? false,
      metadata: { format: 'pt' },
    });
    try {
      for (const s of specs) await writer.writeTensor(s.name, s.convert ? convertedChunks(s.cp, s.source, s.numel, s.dtype as FloatDtype) : rawChunks(s.cp, s.source, s.bytes));
      for (const t of computed) await writer.writeTensor(t.name, encodeFloat32(computedDtype, t.data));
      const tmp = writer.tempFolder;
      const dtypes = new Set(specs.map((s) => s.dtype));
      const config = heteroConfigJson({
        expertConfigs: cps.map((cp) => cp.rawConfig),
        expertNames: o.experts.map((e) => e.name),
        routerType: o.router.kind,
        topK: o.router.topK,
        temperature: o.router.temperature,
        // Mixed expert dtypes: float32 is what transformers would cast to without loss.
        ...(o.projected ? { form: 'projected' as const, sharedHiddenSize: o.projected.sharedHiddenSize } : {}),
        torchDtype: o.dtype ? dtypeToTorchDtype(o.dtype) : !o.projected && dtypes.size === 1 && ['F32', 'F16', 'BF16'].includes([...dtypes][0]!) ? dtypeToTorchDtype([...dtypes][0] as 'F32' | 'F16' | 'BF16') : 'float32',
        moeforge: { version: VERSION, sources: o.experts.map((e) => e.ref) },
      });
      await write(path.join(tmp, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      for (const m of [HETERO_CONFIG_MODULE, HETERO_MODELING_MODULE]) {
        const src = path.join(templates, `${m}.py`);
        await copyFile(src, path.join(tmp, `${m}.py`)).catch((e: unknown) => {
          throw fsError(e, src, 'copy');
        });
      }
      await copyCarriedFiles(o.tokenizerFolder, tmp);
      await write(path.join(tmp, 'README.md'), renderHeteroCard(o, cps.map((cp) => cp.rawConfig)));
      if (o.recipeYaml) await write(path.join(tmp, 'moeforge.yml'), o.recipeYaml);
      await writer.finish();
      return { out, tensors: specs.length + computed.length, bytes: writer.totalBytes, shards: writer.shards.length, report: o.report ?? [] };
    } catch (e) {
      await writer.abort();
      throw e;
    }
  } finally {
    await Promise.all(cps.map((cp) => cp.close()));
  }
}

async function write(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text);
  } catch (e) {
    throw fsError(e, file, 'write');
  }
}
