// An architecture is data: which Hugging Face tensor name each tensor role has in
// one model family. Templates use `{layer}` and `{expert}` placeholders, e.g.
// `model.layers.{layer}.block_sparse_moe.experts.{expert}.w3.weight`. Every spec is
// checked strictly when it is defined (defineArchitecture): an unknown role, or a
// template whose placeholders disagree with the role's scope, fails at load time.

import { z } from 'zod';
import type { ModelFamily } from '../config/types.js';
import { ROLE_INFO, type TensorRole } from '../roles.js';

export interface ArchitectureSpec {
  family: ModelFamily;
  /** The transformers class this layout belongs to, e.g. `LlamaForCausalLM`. */
  hfArchitecture: string;
  /** Role → name template. A role absent here does not exist in this family. */
  names: Partial<Record<TensorRole, string>>;
}

const FAMILIES = ['llama', 'mistral', 'qwen2', 'qwen3', 'mixtral', 'qwen2_moe', 'qwen3_moe'] as const;

const roleKeys = Object.keys(ROLE_INFO) as TensorRole[];

const specSchema = z.strictObject({
  family: z.enum(FAMILIES),
  hfArchitecture: z.string().regex(/^[A-Za-z0-9]+ForCausalLM$/),
  names: z.strictObject(Object.fromEntries(roleKeys.map((r) => [r, z.string().min(1).optional()]))),
});

/** Validates a family's table once, when its module loads; a bad table is a bug (plain Error). */
export function defineArchitecture(spec: ArchitectureSpec): ArchitectureSpec {
  const parsed = specSchema.safeParse(spec);
  if (!parsed.success) {
    throw new Error(`architecture ${spec.family}: invalid spec: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  for (const [role, template] of Object.entries(spec.names) as [TensorRole, string][]) {
    const scope = ROLE_INFO[role].scope;
    const hasLayer = template.includes('{layer}');
    const hasExpert = template.includes('{expert}');
    if (hasLayer !== (scope !== 'global') || hasExpert !== (scope === 'expert')) {
      throw new Error(`architecture ${spec.family}: template for ${role} (${scope} scope) has the wrong placeholders: ${template}`);
    }
  }
  return Object.freeze({ ...spec, names: Object.freeze({ ...spec.names }) });
}
