// The tensors a checkpoint of a given config must hold, with their shapes, as
// transformers builds the modules (nn.Linear weights are [out_features, in_features]).
import { isSparseLayer, type NormalizedConfig } from '../config/types.js';
import type { TensorRole, TensorSlot } from '../roles.js';
import { tensorName } from './names.js';
import { getArchitecture } from './registry.js';

export interface ExpectedTensor {
  name: string;
  slot: TensorSlot;
  shape: number[];
}

/**
 * Every tensor of a checkpoint of this config, sorted by name as `save_pretrained`
 * (and the goldens) lay them out: `lm_head.weight` only when embeddings are untied,
 * biases and q/k norms where the config has them, routed experts (and the shared
 * expert, Qwen2-MoE) in sparse layers, a dense FFN in the others.
 */
export function expectedTensors(config: NormalizedConfig): ExpectedTensor[] {
  const arch = getArchitecture(config.modelType);
  const d = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const out: ExpectedTensor[] = [];
  const add = (role: TensorRole, shape: number[], layer?: number, expert?: number): void => {
    const slot: TensorSlot = { role };
    if (layer !== undefined) slot.layer = layer;
    if (expert !== undefined) slot.expert = expert;
    out.push({ name: tensorName(arch, slot), slot, shape });
  };

  add('embed', [config.vocabSize, d]);
  add('final_norm', [d]);
  if (!config.tieWordEmbeddings) add('lm_head', [config.vocabSize, d]);

  for (let layer = 0; layer < config.numLayers; layer++) {
    add('input_norm', [d], layer);
    add('post_attn_norm', [d], layer);
    add('attn_q', [qDim, d], layer);
    add('attn_k', [kvDim, d], layer);
    add('attn_v', [kvDim, d], layer);
    add('attn_o', [d, qDim], layer);
    if (config.attentionBias) {
      add('attn_q_bias', [qDim], layer);
      add('attn_k_bias', [kvDim], layer);
      add('attn_v_bias', [kvDim], layer);
    }
    if (config.attentionOutBias) add('attn_o_bias', [d], layer);
    if (config.qkNorm) {
      add('attn_q_norm', [config.headDim], layer);
      add('attn_k_norm', [config.headDim], layer);
    }
    const moe = config.moe;
    if (moe && isSparseLayer(config, layer)) {
      const ie = moe.expertIntermediateSize;
      add('router', [moe.numExperts, d], layer);
      for (let e = 0; e < moe.numExperts; e++) {
        add('expert_gate', [ie, d], layer, e);
        add('expert_up', [ie, d], layer, e);
        add('expert_down', [d, ie], layer, e);
      }
      const s = moe.sharedExpertIntermediateSize;
      if (s !== null && s > 0) {
        add('shared_expert_gate_proj', [s, d], layer);
        add('shared_expert_up', [s, d], layer);
        add('shared_expert_down', [d, s], layer);
        add('shared_expert_gate', [1, d], layer);
      }
    } else {
      add('mlp_gate', [config.intermediateSize, d], layer);
      add('mlp_up', [config.intermediateSize, d], layer);
      add('mlp_down', [d, config.intermediateSize], layer);
    }
  }
  // Byte order of names, as Python's sorted() orders the str keys of a state dict.
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
