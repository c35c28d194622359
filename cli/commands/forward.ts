// `moeforge forward <model> --input-ids 1,2,3 --output out.safetensors`: one
// forward pass, written with the goldens' names and shapes (`input_ids` I32 [B, T],
// `logits` [B, T, V], `hidden_states.K` [B, T, d] for K = 0..L, `router_logits.N`
// [B*T, E] per sparse layer N), so any model can be compared with transformers.
// Also exports the model options the generate and score commands share.
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { BACKEND_NAMES, type BackendName } from '../../core/backend.js';
import { encodeFloat32 } from '../../core/dtypes.js';
import { MoeforgeError, fsError } from '../../core/errors.js';
import { CausalLM } from '../../core/model/causal-lm.js';
import { SafetensorsReader } from '../../core/safetensors/reader.js';
import { writeSafetensors } from '../../core/safetensors/writer.js';

export interface ModelCliOptions {
  backend?: string;
  maxResidentBytes?: string;
  mode?: string;
}

/** Adds --backend, --max-resident-bytes and --mode to a command. */
export function withModelOptions(cmd: Command): Command {
  return cmd
    .option('--backend <name>', `tfjs backend (${BACKEND_NAMES.join(', ')}); default wasm, cpu if wasm fails`)
    .option('--max-resident-bytes <n>', 'float32 weight bytes allowed in memory at once (e.g. 2G); larger models are streamed layer by layer')
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

export async function loadModelFromOptions(folder: string, opts: ModelCliOptions): Promise<CausalLM> {
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
  const load: Parameters<typeof CausalLM.load>[1] = { mode };
  if (opts.backend !== undefined) load.backend = opts.backend as BackendName;
  if (opts.maxResidentBytes !== undefined) load.maxResidentBytes = parseBytes(opts.maxResidentBytes, '--max-resident-bytes');
  return CausalLM.load(folder, load);
}

/** `1,2,3` (one row) or `1,2,3;4,5,6` (rows of equal length). */
function parseIdList(text: string): number[][] {
  return text.split(';').map((row, r) =>
    row.split(',').map((s, i) => {
      const v = Number(s.trim());
      if (s.trim() === '' || !Number.isInteger(v)) {
        throw new MoeforgeError('invalid_argument', `'${s.trim()}' (row ${r}, item ${i}) is not an integer token id`, { path: '--input-ids' });
      }
      return v;
    }),
  );
}

/** input_ids from a safetensors file: tensor `input_ids`, [B, T] or [T], I32 or I64. */
async function readIdFile(file: string): Promise<number[][]> {
  const reader = await SafetensorsReader.open(file);
  try {
    const header = reader.tensors.get('input_ids');
    if (!header) throw new MoeforgeError('missing_tensor', 'no input_ids tensor in this file', { path: file });
    if (header.dtype !== 'I32' && header.dtype !== 'I64') {
      throw new MoeforgeError('invalid_argument', `input_ids is ${header.dtype}, expected I32 or I64`, { path: `${file}: input_ids` });
    }
    if (header.shape.length !== 1 && header.shape.length !== 2) {
      throw new MoeforgeError('invalid_argument', `input_ids has shape [${header.shape.join(', ')}], expected [B, T]`, { path: `${file}: input_ids` });
    }
    const values = Array.from(await reader.readTyped('input_ids'), Number);
    const t = header.shape[header.shape.length - 1]!;
    const rows: number[][] = [];
    for (let i = 0; i < values.length; i += t) rows.push(values.slice(i, i + t));
    return rows;
  } finally {
    await reader.close();
  }
}

export function register(program: Command): void {
  withModelOptions(
    program
      .command('forward')
      .description('run one forward pass and write logits, hidden states and router logits to a safetensors file')
      .argument('<model>', 'model folder (config.json + safetensors)')
      .requiredOption('--input-ids <ids>', 'token ids: 1,2,3 (rows separated by ;) or a .safetensors file with an input_ids tensor [B, T]')
      .requiredOption('--output <file>', 'where to write the outputs (.safetensors)'),
  )
    .addHelpText('after', '\nExample:\n  $ moeforge forward ./my-moe --input-ids 1,15,42,7 --output out.safetensors')
    .action(async (folder: string, opts: ModelCliOptions & { inputIds: string; output: string }) => {
      const ids = opts.inputIds.endsWith('.safetensors') ? await readIdFile(opts.inputIds) : parseIdList(opts.inputIds);
      const model = await loadModelFromOptions(folder, opts);
      try {
        const r = await model.forward(ids, { outputHiddenStates: true, outputRouterLogits: true });
        const { batch: b, seqLen: t } = r;
        const c = model.config;
        const tensors = [
          { name: 'input_ids', dtype: 'I32' as const, shape: [b, t], data: new Uint8Array(Int32Array.from(ids.flat()).buffer) },
          { name: 'logits', dtype: 'F32' as const, shape: [b, t, c.vocabSize], data: encodeFloat32('F32', r.logits) },
          ...r.hiddenStates!.map((h, k) => ({ name: `hidden_states.${k}`, dtype: 'F32' as const, shape: [b, t, c.hiddenSize], data: encodeFloat32('F32', h) })),
          ...[...r.routerLogits!].map(([layer, v]) => ({
            name: `router_logits.${layer}`,
            dtype: 'F32' as const,
            shape: [b * t, c.moe!.numExperts],
            data: encodeFloat32('F32', v),
          })),
        ];
        await writeSafetensors(opts.output, tensors, { format: 'pt', model: folder, mode: model.mode });
        process.stdout.write(
          `wrote ${opts.output}: logits [${b}, ${t}, ${c.vocabSize}], ${r.hiddenStates!.length} hidden states, ${r.routerLogits!.size} router logits (${model.mode})\n`,
        );
      } finally {
        model.dispose();
      }
    });
}
