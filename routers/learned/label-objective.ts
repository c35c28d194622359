// `objective: label`, layer by layer on the MoE's own router inputs: layer l's inputs
// come from the assembled MoE with the gates already trained for layers < l, each
// expert's tokens are labelled with it, and the router is fitted by softmax
// cross-entropy (label-trainer.ts). The BOS token, shared by every sample, is not
// labelled: no router can tell experts apart on it.
import type { GateContext } from '../../core/plugins.js';
import { MoeLayerRunner } from './moe-runner.js';
import { meanVectorInit, trainLabelGate, type LabelTrainResult } from './label-trainer.js';
import type { LearnedGateOptions } from './options.js';

export interface LabelledSequences {
  ids: number[][];
  /** Expert of each sequence. */
  experts: number[];
  /** Token id never labelled (BOS), or null. */
  bosTokenId: number | null;
}

export interface LayerTraining extends LabelTrainResult {
  layer: number;
}

/**
 * With `initOnly`, no training: each layer gets the router_input initialisation (mean of
 * its expert's router inputs over all tokens, unit norm), still computed on the MoE's own
 * inputs with the gates of the layers before (objective lm starts from these).
 */
export async function trainLabelObjective(
  ctx: GateContext,
  data: LabelledSequences,
  o: LearnedGateOptions,
  initOnly = false,
): Promise<{ gates: Float32Array[]; layers: LayerTraining[] }> {
  const moe = ctx.moe!;
  const d = ctx.config.hiddenSize;
  const E = moe.expertFolders.length;
  const runner = await MoeLayerRunner.open(moe.baseFolder, moe.expertFolders, moe);
  const gates: Float32Array[] = [];
  const layers: LayerTraining[] = [];
  try {
    await runner.start(data.ids);
    for (const layer of ctx.layers) {
      const xs = await runner.routerInputs(layer);
      const rows: number[] = [];
      const labels: number[] = [];
      const sequences: number[] = [];
      data.ids.forEach((ids, s) => {
        ids.forEach((id, t) => {
          if (t === 0 && id === data.bosTokenId) return;
          rows.push(s, t);
          labels.push(data.experts[s]!);
          sequences.push(s);
        });
      });
      const x = new Float32Array(labels.length * d);
      for (let i = 0; i < labels.length; i++) {
        const s = rows[2 * i]!;
        const t = rows[2 * i + 1]!;
        x.set(xs[s]!.subarray(t * d, (t + 1) * d), i * d);
      }
      const labelData = { x, labels: Int32Array.from(labels), sequences: Int32Array.from(sequences) };
      if (initOnly) {
        const w = meanVectorInit(labelData, E, d, labels.map((_, i) => i));
        await runner.advance(layer, w);
        gates.push(w);
        continue;
      }
      const result = trainLabelGate(
        labelData,
        E,
        d,
        undefined,
        { epochs: o.epochs, lr: o.lr, balance: o.balance, holdout: o.holdout, patience: o.patience, expertsPerToken: moe.expertsPerToken },
        ctx.rng.derive(`layer.${layer}`),
      );
      await runner.advance(layer, result.weights);
      gates.push(result.weights);
      layers.push({ layer, ...result });
    }
  } finally {
    await runner.close();
  }
  return { gates, layers };
}
