// config.json of an exported heterogeneous MoE (a transformers trust_remote_code repo,
// export/formats/hetero). Each expert's own config.json is kept whole under
// `expert_configs`, so the remote code builds each expert with AutoConfig.for_model and
// moeforge normalises each with normalizeConfig, exactly as it would the expert's folder.
// Weights of expert i are stored under `experts.{i}.` (the state-dict names of
// `self.experts = nn.ModuleList(...)` in modeling_moeforge_hetero.py); centroid
// routing stores `router.centroids.{i}` ([hidden_size of expert i]), learned and
// embedding routing `router.gate.weight` ([E, features]).
// Two forms (`hetero_form`):
//   whole      (default) every expert keeps its embeddings, layers and head;
//   projected  MergeME §3.2's trained form: `shared.embed_tokens.weight` and
//              `shared.lm_head.weight` [V, D] (D = `shared_hidden_size`, the widest
//              expert), `proj_in.{i}.weight` [d_i, D] and `proj_out.{i}.weight`
//              [D, d_i]; the experts store their layers and final norm only.
import { z } from 'zod';
import { normalizeConfig } from '../config/normalize.js';
import type { NormalizedConfig } from '../config/types.js';
import { MoeforgeError } from '../errors.js';
import { SEQUENCE_ROUTER_KINDS, type SequenceRouterKind } from './router.js';

export const HETERO_MODEL_TYPE = 'moeforge_hetero';
export const HETERO_ARCHITECTURE = 'MoeforgeHeteroForCausalLM';
export const HETERO_CONFIG_MODULE = 'configuration_moeforge_hetero';
export const HETERO_MODELING_MODULE = 'modeling_moeforge_hetero';

export const expertPrefix = (i: number): string => `experts.${i}.`;
export const centroidName = (i: number): string => `router.centroids.${i}`;
export const ROUTER_WEIGHT = 'router.gate.weight';
export const SHARED_EMBED = 'shared.embed_tokens.weight';
export const SHARED_HEAD = 'shared.lm_head.weight';
export const projInName = (i: number): string => `proj_in.${i}.weight`;
export const projOutName = (i: number): string => `proj_out.${i}.weight`;

export type HeteroForm = 'whole' | 'projected';

/** Router kinds each form can use: the projected form has one shared embedding for its router to read. */
const FORM_ROUTERS: Record<HeteroForm, readonly SequenceRouterKind[]> = {
  whole: ['perplexity', 'centroid', 'learned', 'uniform'],
  projected: ['embedding', 'uniform'],
};

const schema = z.looseObject({
  model_type: z.literal(HETERO_MODEL_TYPE),
  expert_configs: z.array(z.record(z.string(), z.unknown())).min(1),
  expert_names: z.array(z.string()),
  router_type: z.enum(SEQUENCE_ROUTER_KINDS as [SequenceRouterKind, ...SequenceRouterKind[]]),
  num_experts_per_tok: z.number().int().min(1),
  router_temperature: z.number().positive(),
  vocab_size: z.number().int().positive(),
  hetero_form: z.enum(['whole', 'projected']).default('whole'),
  shared_hidden_size: z.number().int().positive().optional(),
});

export interface HeteroConfig {
  expertConfigs: Record<string, unknown>[];
  experts: NormalizedConfig[];
  expertNames: string[];
  routerType: SequenceRouterKind;
  topK: number;
  temperature: number;
  vocabSize: number;
  form: HeteroForm;
  /** projected: D, the width of the shared embedding and head. */
  sharedHiddenSize: number | undefined;
  raw: Record<string, unknown>;
}

export function isHeteroConfig(raw: Record<string, unknown>): boolean {
  return raw['model_type'] === HETERO_MODEL_TYPE;
}

/** Validates the config.json of an exported repo and normalises every expert's config. */
export function parseHeteroConfig(raw: Record<string, unknown>, label: string): HeteroConfig {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new MoeforgeError('invalid_config', `${issue.path.join('.') || '(root)'}: ${issue.message}`, { path: label });
  }
  const c = r.data;
  if (c.expert_names.length !== c.expert_configs.length) {
    throw new MoeforgeError('invalid_config', `expert_names has ${c.expert_names.length} entries for ${c.expert_configs.length} experts`, { path: label });
  }
  if (c.num_experts_per_tok > c.expert_configs.length) {
    throw new MoeforgeError('invalid_config', `num_experts_per_tok ${c.num_experts_per_tok} exceeds the ${c.expert_configs.length} experts`, { path: label });
  }
  if (!FORM_ROUTERS[c.hetero_form].includes(c.router_type)) {
    throw new MoeforgeError('invalid_config', `router_type ${c.router_type} does not fit hetero_form ${c.hetero_form} (expected ${FORM_ROUTERS[c.hetero_form].join(' or ')})`, { path: label });
  }
  const experts = c.expert_configs.map((e, i) => normalizeConfig(e, `${label}: expert_configs[${i}]`));
  if (c.hetero_form === 'projected') {
    const widest = Math.max(...experts.map((e) => e.hiddenSize));
    if (c.shared_hidden_size === undefined || c.shared_hidden_size < widest) {
      throw new MoeforgeError('invalid_config', `hetero_form projected needs shared_hidden_size ≥ the widest expert's hidden_size ${widest}, got ${c.shared_hidden_size ?? 'none'}`, { path: label });
    }
  }
  experts.forEach((e, i) => {
    if (e.vocabSize !== c.vocab_size) {
      throw new MoeforgeError('invalid_config', `expert_configs[${i}] has vocab_size ${e.vocabSize}, the model ${c.vocab_size}`, { path: label });
    }
  });
  return {
    expertConfigs: c.expert_configs,
    experts,
    expertNames: c.expert_names,
    routerType: c.router_type,
    topK: c.num_experts_per_tok,
    temperature: c.router_temperature,
    vocabSize: c.vocab_size,
    form: c.hetero_form,
    sharedHiddenSize: c.shared_hidden_size,
    raw,
  };
}

export interface HeteroConfigInput {
  expertConfigs: Record<string, unknown>[];
  expertNames: string[];
  routerType: SequenceRouterKind;
  topK: number;
  temperature: number;
  torchDtype: string;
  moeforge: Record<string, unknown>;
  form?: HeteroForm;
  sharedHiddenSize?: number;
}

/** The config.json written by the exporter (keys sorted as save_pretrained writes them). */
export function heteroConfigJson(o: HeteroConfigInput): Record<string, unknown> {
  const first = o.expertConfigs[0]!;
  const config: Record<string, unknown> = {
    architectures: [HETERO_ARCHITECTURE],
    auto_map: {
      AutoConfig: `${HETERO_CONFIG_MODULE}.MoeforgeHeteroConfig`,
      AutoModelForCausalLM: `${HETERO_MODELING_MODULE}.${HETERO_ARCHITECTURE}`,
    },
    bos_token_id: first['bos_token_id'] ?? null,
    eos_token_id: first['eos_token_id'] ?? null,
    expert_configs: o.expertConfigs,
    expert_names: o.expertNames,
    hetero_form: o.form ?? 'whole',
    model_type: HETERO_MODEL_TYPE,
    moeforge: o.moeforge,
    num_experts: o.expertConfigs.length,
    num_experts_per_tok: o.topK,
    router_temperature: o.temperature,
    router_type: o.routerType,
    ...(o.form === 'projected' ? { shared_hidden_size: o.sharedHiddenSize } : {}),
    tie_word_embeddings: false,
    torch_dtype: o.torchDtype,
    transformers_version: '4.49.0',
    vocab_size: first['vocab_size'],
  };
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));
}
