// Export of a heterogeneous MoE as a transformers `trust_remote_code` repo (issue 9 §4):
//   config.json                         model_type moeforge_hetero, auto_map → the two modules
//   configuration_moeforge_hetero.py    MoeforgeHeteroConfig (templates/, copied unchanged)
//   modeling_moeforge_hetero.py         MoeforgeHeteroForCausalLM (templates/, copied unchanged)
//   model*.safetensors (+ index)        expert i's tensors under `experts.{i}.` with their
//                                       own HF names, `router.centroids.{i}` for centroid routing
//   tokenizer files, README.md, moeforge.yml (when a recipe built it)
// Tensors are streamed as stored bytes (each expert keeps its dtype: no conversion, no
// decode), in chunks, through the sharded atomic CheckpointWriter.
import { copyFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../../../core/checkpoint/checkpoint.js';
import { CheckpointWriter } from '../../../core/checkpoint/writer.js';
import { dtypeToTorchDtype } from '../../../core/dtypes.js';
import { MoeforgeError, fsError } from '../../../core/errors.js';
import { centroidName, expertPrefix, HETERO_CONFIG_MODULE, HETERO_MODELING_MODULE, heteroConfigJson } from '../../../core/hetero/config.js';
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
}

export interface HeteroExportResult {
  out: string;
  tensors: number;
  bytes: number;
  shards: number;
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

export async function writeHeteroRepo(out: string, o: HeteroExportOptions): Promise<HeteroExportResult> {
  const templates = templatesDir();
  const cps: Checkpoint[] = [];
  try {
    for (const e of o.experts) cps.push(await Checkpoint.open(e.folder));
    const specs = cps.flatMap((cp, i) =>
      cp.names().map((name) => {
        const h = cp.header(name);
        return { name: expertPrefix(i) + name, dtype: h.dtype, shape: [...h.shape], cp, source: name, bytes: h.end - h.begin };
      }),
    );
    const centroids = o.router.kind === 'centroid' ? (o.router.centroids ?? []) : [];
    const centroidSpecs = centroids.map((c, i) => ({ name: centroidName(i), dtype: 'F32' as const, shape: [c.length] }));
    const writer = await CheckpointWriter.create(out, [...specs.map(({ name, dtype, shape }) => ({ name, dtype, shape })), ...centroidSpecs], {
      shardSizeBytes: o.shardSizeBytes ?? 5_000_000_000,
      overwrite: o.overwrite ?? false,
      metadata: { format: 'pt' },
    });
    try {
      for (const s of specs) await writer.writeTensor(s.name, rawChunks(s.cp, s.source, s.bytes));
      for (const [i, c] of centroids.entries()) await writer.writeTensor(centroidName(i), new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
      const tmp = writer.tempFolder;
      const dtypes = new Set(specs.map((s) => s.dtype));
      const config = heteroConfigJson({
        expertConfigs: cps.map((cp) => cp.rawConfig),
        expertNames: o.experts.map((e) => e.name),
        routerType: o.router.kind,
        topK: o.router.topK,
        temperature: o.router.temperature,
        // Mixed expert dtypes: float32 is what transformers would cast to without loss.
        torchDtype: dtypes.size === 1 && ['F32', 'F16', 'BF16'].includes([...dtypes][0]!) ? dtypeToTorchDtype([...dtypes][0] as 'F32' | 'F16' | 'BF16') : 'float32',
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
      return { out, tensors: specs.length + centroids.length, bytes: writer.totalBytes, shards: writer.shards.length };
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
