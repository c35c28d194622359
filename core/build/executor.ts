// Executes a build plan: fetch the models, compute the gates on the base, then stream
// every output tensor in plan (= shard) order into a CheckpointWriter, which writes a
// temporary sibling folder and renames it into place only when everything, config,
// tokenizer, model card and provenance included, is there. Any error, SIGINT or
// SIGTERM removes the temporary folder (core/fs/atomic.ts); after a SIGKILL only a
// hidden `.<name>.tmp-*` sibling can remain, never a half-written output folder.
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { CheckpointWriter } from '../checkpoint/writer.js';
import { fsError } from '../errors.js';
import { Rng } from '../rng.js';
import { fetchModel } from '../sources.js';
import { computeGates } from './gates.js';
import { COPY_SLICE_BYTES, type BuildPlan } from './plan.js';
import { SafetensorsReader } from '../safetensors/reader.js';
import { provenanceYaml, renderBuildCard } from './provenance.js';
import { tensorStream } from './tensor-streams.js';
import { CARRIED_FILES } from '../tokenizer/files.js';


export interface ExecuteOptions {
  out: string;
  overwrite?: boolean;
  /** Engine limit (float32 weight bytes) for the gate computation; above it the base is layer-streamed. */
  maxResidentBytes?: number;
  onPhase?: (phase: 'fetch' | 'gates' | 'write' | 'finish') => void;
  onProgress?: (p: { bytesWritten: number; totalBytes: number; tensor: string }) => void;
}

export interface BuildResult {
  out: string;
  tensors: number;
  bytes: number;
  shards: number;
  seconds: number;
  gateSeconds: number;
  writeSeconds: number;
  forwardPasses: number;
  /** What the gate strategy reported (gate_mode learned: held-out routing accuracy per layer). */
  gateReport: string[];
  parameters: number;
  activeParameters: number;
}

export async function executeBuild(container: DependencyContainer, plan: BuildPlan, options: ExecuteOptions): Promise<BuildResult> {
  const t0 = performance.now();
  options.onPhase?.('fetch');
  const folders: string[] = [];
  for (const m of plan.inputs.models) folders.push((await fetchModel(container, m.ref)).folder);
  const baseFolder = folders[plan.inputs.base.index]!;

  options.onPhase?.('gates');
  const rng = new Rng(plan.seed);
  const gates = await computeGates(plan, baseFolder, rng, {
    maxResidentBytes: options.maxResidentBytes,
    expertFolders: plan.inputs.experts.map((m) => folders[m.index]!),
  });
  const t1 = performance.now();

  options.onPhase?.('write');
  const checkpoints: Checkpoint[] = [];
  const openReaders: Promise<SafetensorsReader>[] = [];
  let writer: CheckpointWriter | undefined;
  try {
    for (const f of folders) checkpoints.push(await Checkpoint.open(f));
    writer = await CheckpointWriter.create(
      options.out,
      plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
      { shardSizeBytes: plan.shardSizeBytes, overwrite: options.overwrite ?? false, metadata: { format: 'pt' } },
    );
    const readers = new Map<string, Promise<SafetensorsReader>>();
    const rawReader = (model: number, tensor: string): Promise<SafetensorsReader> => {
      const file = path.join(folders[model]!, checkpoints[model]!.header(tensor).file);
      let r = readers.get(file);
      if (!r) {
        r = SafetensorsReader.open(file);
        openReaders.push(r);
        readers.set(file, r);
      }
      return r;
    };
    const ctx = {
      checkpoints,
      rawReader,
      copyBuffers: [new Uint8Array(COPY_SLICE_BYTES), new Uint8Array(COPY_SLICE_BYTES)] as [Uint8Array, Uint8Array],
      gates: gates.weights,
      rng,
      chunkElements: plan.chunkElements,
      numLayers: plan.outputConfig.numLayers,
      mergeMethod: plan.mergeMethod,
      mergeParams: plan.mergeParams,
      sharedExpertMerge: plan.sharedExpertMerge,
    };
    // Shard order is plan order (planShards keeps it), which is the order the writer expects.
    for (const shard of writer.shards) {
      for (const spec of shard.tensors) {
        const t = plan.tensors.find((x) => x.name === spec.name)!;
        await writer.writeTensor(t.name, tensorStream(t, ctx));
        options.onProgress?.({ bytesWritten: writer.bytesWritten, totalBytes: writer.totalBytes, tensor: t.name });
      }
    }
    const t2 = performance.now();

    options.onPhase?.('finish');
    const tmp = writer.tempFolder;
    const put = async (name: string, text: string) => {
      try {
        await writeFile(path.join(tmp, name), text);
      } catch (e) {
        throw fsError(e, path.join(options.out, name), 'write');
      }
    };
    // Sorted keys, 2-space indent: as save_pretrained writes config.json.
    const sortedConfig = Object.fromEntries(Object.entries(plan.configJson).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    await put('config.json', `${JSON.stringify(sortedConfig, null, 2)}\n`);
    const baseFiles = new Set(plan.inputs.base.description.files);
    for (const f of CARRIED_FILES) {
      if (!baseFiles.has(f)) continue;
      try {
        await copyFile(path.join(baseFolder, f), path.join(tmp, f));
      } catch (e) {
        throw fsError(e, path.join(baseFolder, f), 'copy');
      }
    }
    const parameters = plan.tensors.reduce((a, t) => a + t.numel, 0);
    const moe = plan.outputConfig.moe!;
    const expertParams = plan.tensors.filter((t) => t.slot.expert !== undefined).reduce((a, t) => a + t.numel, 0);
    const activeParameters = parameters - Math.round((expertParams * (moe.numExperts - moe.expertsPerToken)) / moe.numExperts);
    const gateSection = gates.report.length ? `\n## Gate training\n\n${gates.report.map((l) => `- ${l}`).join('\n')}\n` : '';
    await put('README.md', renderBuildCard(plan, { parameters, activeParameters }) + gateSection);
    await put('moeforge.yml', provenanceYaml(plan));
    await writer.finish();
    writer = undefined;
    return {
      out: options.out,
      tensors: plan.tensors.length,
      bytes: plan.totalBytes,
      shards: plan.shards.length,
      seconds: (performance.now() - t0) / 1000,
      gateSeconds: (t1 - t0) / 1000,
      writeSeconds: (t2 - t1) / 1000,
      forwardPasses: gates.forwardPasses,
      gateReport: gates.report,
      parameters,
      activeParameters,
    };
  } finally {
    if (writer) await writer.abort();
    await Promise.all(checkpoints.map((c) => c.close()));
    await Promise.all(openReaders.map(async (r) => (await r.catch(() => undefined))?.close()));
  }
}
