// `moeforge forward <model> --input-ids 1,2,3 --output out.safetensors`: one
// forward pass, written with the goldens' names and shapes (`input_ids` I32 [B, T],
// `logits` [B, T, V], `hidden_states.K` [B, T, d] for K = 0..L, `router_logits.N`
// [B*T, E] per sparse layer N), so any model can be compared with transformers.
// A heterogeneous MoE (issue 9) writes `logits` (its mixture log-probabilities, as
// modeling_moeforge_hetero.py returns them) and `routing_weights` [B, E] instead of
// hidden states and router logits: its experts differ in width and it routes per
// sequence, so neither exists.
import type { Command } from 'commander';
import { encodeFloat32 } from '../../core/dtypes.js';
import { MoeforgeError } from '../../core/errors.js';
import type { CausalLM } from '../../core/model/causal-lm.js';
import type { HeteroMoE } from '../../core/hetero/model.js';
import { SafetensorsReader } from '../../core/safetensors/reader.js';
import { writeSafetensors } from '../../core/safetensors/writer.js';
import { formatRouting, openModelFolder, withModelOptions, type ModelCliOptions } from '../model-folder.js';


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

function idsTensor(ids: number[][]) {
  return { name: 'input_ids', dtype: 'I32' as const, shape: [ids.length, ids[0]!.length], data: new Uint8Array(Int32Array.from(ids.flat()).buffer) };
}

async function writeDense(model: CausalLM, ids: number[][], folder: string, output: string): Promise<void> {
  const r = await model.forward(ids, { outputHiddenStates: true, outputRouterLogits: true });
  const { batch: b, seqLen: t } = r;
  const c = model.config;
  const tensors = [
    idsTensor(ids),
    { name: 'logits', dtype: 'F32' as const, shape: [b, t, c.vocabSize], data: encodeFloat32('F32', r.logits) },
    ...r.hiddenStates!.map((h, k) => ({ name: `hidden_states.${k}`, dtype: 'F32' as const, shape: [b, t, c.hiddenSize], data: encodeFloat32('F32', h) })),
    ...[...r.routerLogits!].map(([layer, v]) => ({
      name: `router_logits.${layer}`,
      dtype: 'F32' as const,
      shape: [b * t, c.moe!.numExperts],
      data: encodeFloat32('F32', v),
    })),
  ];
  await writeSafetensors(output, tensors, { format: 'pt', model: folder, mode: model.mode });
  process.stdout.write(
    `wrote ${output}: logits [${b}, ${t}, ${c.vocabSize}], ${r.hiddenStates!.length} hidden states, ${r.routerLogits!.size} router logits (${model.mode})\n`,
  );
}

async function writeHetero(model: HeteroMoE, ids: number[][], folder: string, output: string): Promise<void> {
  const r = await model.forward(ids);
  const { batch: b, seqLen: t } = r;
  const v = model.config.vocabSize;
  const e = model.names.length;
  const tensors = [
    idsTensor(ids),
    { name: 'logits', dtype: 'F32' as const, shape: [b, t, v], data: encodeFloat32('F32', r.logits) },
    { name: 'routing_weights', dtype: 'F32' as const, shape: [b, e], data: encodeFloat32('F32', Float32Array.from(r.routingWeights.flat())) },
  ];
  await writeSafetensors(output, tensors, { format: 'pt', model: folder, expert_names: JSON.stringify(model.names) });
  process.stdout.write(`wrote ${output}: logits [${b}, ${t}, ${v}] (mixture log-probs), routing_weights [${b}, ${e}] (heterogeneous MoE)\n`);
  r.routingWeights.forEach((w, row) => process.stderr.write(`row ${row}: ${formatRouting(model.names, w)}\n`));
}

export function register(program: Command): void {
  withModelOptions(
    program
      .command('forward')
      .description('run one forward pass and write logits, hidden states and router logits (a heterogeneous MoE: logits and routing weights) to a safetensors file')
      .argument('<model>', 'model folder (config.json + safetensors)')
      .requiredOption('--input-ids <ids>', 'token ids: 1,2,3 (rows separated by ;) or a .safetensors file with an input_ids tensor [B, T]')
      .requiredOption('--output <file>', 'where to write the outputs (.safetensors)'),
  )
    .addHelpText('after', '\nExample:\n  $ moeforge forward ./my-moe --input-ids 1,15,42,7 --output out.safetensors')
    .action(async (folder: string, opts: ModelCliOptions & { inputIds: string; output: string }) => {
      const ids = opts.inputIds.endsWith('.safetensors') ? await readIdFile(opts.inputIds) : parseIdList(opts.inputIds);
      const m = await openModelFolder(folder, opts);
      try {
        if (m.kind === 'hetero') await writeHetero(m.model, ids, folder, opts.output);
        else await writeDense(m.model, ids, folder, opts.output);
      } finally {
        m.model.dispose();
      }
    });
}
