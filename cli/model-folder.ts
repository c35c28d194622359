// What the model commands (forward, generate, score, serve, eval, routes) share: the
// --backend / --mode / --max-resident-bytes options, and opening "a model folder",
// dense (CausalLM: llama, Mixtral, Qwen-MoE, …) or a heterogeneous MoE repo (issue 9,
// model_type moeforge_hetero), so each command switches on `kind` once.
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { BACKEND_NAMES, type BackendName } from '../core/backend.js';
import { MoeforgeError, fsError } from '../core/errors.js';
import { isHeteroFolder, loadHeteroRepo } from '../core/hetero/load.js';
import type { HeteroMoE } from '../core/hetero/model.js';
import { CausalLM, type LoadOptions } from '../core/model/causal-lm.js';

export interface ModelCliOptions {
  backend?: string;
  maxResidentBytes?: string;
  mode?: string;
}

/** Adds --backend, --max-resident-bytes and --mode to a command. */
export function withModelOptions(cmd: Command): Command {
  return cmd
    .option('--backend <name>', `tfjs backend (${BACKEND_NAMES.join(', ')}); default wasm, cpu if wasm fails`)
    .option('--max-resident-bytes <n>', 'float32 weight bytes allowed in memory at once (e.g. 2G; per expert for a heterogeneous MoE); larger models are streamed layer by layer')
    .option('--mode <mode>', 'resident | streamed | auto (default auto)');
}

/** `123`, `512K`, `1.5G` (powers of 1024) → bytes. */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?$/i.exec(text.trim());
  if (!m) throw new MoeforgeError('invalid_argument', `expected a byte count like 1048576 or 2G, got '${text}'`, { path: flag });
  const unit = (m[2] ?? '').toLowerCase()[0];
  const scale = unit === 'k' ? 2 ** 10 : unit === 'm' ? 2 ** 20 : unit === 'g' ? 2 ** 30 : unit === 't' ? 2 ** 40 : 1;
  return Math.floor(Number(m[1]) * scale);
}

/** The folder checked to be a folder, and the options as LoadOptions (a heterogeneous MoE applies them to each expert). */
export async function loadOptionsFromCli(folder: string, opts: ModelCliOptions): Promise<LoadOptions> {
  let isDir = false;
  try {
    isDir = (await stat(folder)).isDirectory();
  } catch (e) {
    throw fsError(e, folder, 'open model folder');
  }
  if (!isDir) throw new MoeforgeError('invalid_argument', 'expected a model folder (config.json + safetensors)', { path: folder });
  if (opts.backend !== undefined && !BACKEND_NAMES.includes(opts.backend as BackendName)) {
    throw new MoeforgeError('invalid_argument', `unknown backend '${opts.backend}' (expected one of ${BACKEND_NAMES.join(', ')})`, { path: '--backend' });
  }
  const mode = opts.mode ?? 'auto';
  if (mode !== 'resident' && mode !== 'streamed' && mode !== 'auto') {
    throw new MoeforgeError('invalid_argument', `expected resident, streamed or auto, got '${mode}'`, { path: '--mode' });
  }
  const load: LoadOptions = { mode };
  if (opts.backend !== undefined) load.backend = opts.backend as BackendName;
  if (opts.maxResidentBytes !== undefined) load.maxResidentBytes = parseBytes(opts.maxResidentBytes, '--max-resident-bytes');
  return load;
}

/** A dense (or Mixtral-style) model folder only: the commands that read per-layer internals (routes, eval's batch scorer). */
export async function loadModelFromOptions(folder: string, opts: ModelCliOptions): Promise<CausalLM> {
  return CausalLM.load(folder, await loadOptionsFromCli(folder, opts));
}

export type ModelFolder = { kind: 'dense'; model: CausalLM } | { kind: 'hetero'; model: HeteroMoE };

/** Any model folder the engine runs: a CausalLM, or a heterogeneous MoE routed per sequence. */
export async function openModelFolder(folder: string, opts: ModelCliOptions): Promise<ModelFolder> {
  const load = await loadOptionsFromCli(folder, opts);
  if (await isHeteroFolder(folder)) return { kind: 'hetero', model: await loadHeteroRepo(folder, load) };
  return { kind: 'dense', model: await CausalLM.load(folder, load) };
}

/** `llama 0.6234, narrow 0.3766`: the experts a sequence was routed to (weight > 0), heaviest first. */
export function formatRouting(names: readonly string[], weights: readonly number[]): string {
  return weights
    .map((w, e) => ({ name: names[e] ?? `expert ${e}`, w }))
    .filter((x) => x.w > 0)
    .sort((a, b) => b.w - a.w)
    .map((x) => `${x.name} ${x.w.toFixed(4)}`)
    .join(', ');
}

