// The recipe's `gate:` block for gate_mode learned, validated strictly (an unknown key
// or a wrong value is one line naming `gate.<key>`).
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';

const schema = z.strictObject({
  objective: z.enum(['label', 'lm']).default('label'),
  epochs: z.number().int().min(1).max(100000).default(300),
  lr: z.number().positive().max(10).default(0.05),
  balance: z.number().min(0).default(0),
  holdout: z.number().min(0).lt(1).default(0.2),
  patience: z.number().int().min(1).default(30),
});

export type LearnedGateOptions = z.infer<typeof schema>;

export function parseLearnedGateOptions(raw: unknown): LearnedGateOptions {
  return parseGateBlock(schema, raw);
}

/** A recipe's `gate:` block parsed by a strict schema: the first problem is one invalid_recipe naming `gate.<key>`. */
export function parseGateBlock<S extends z.ZodObject>(block: S, raw: unknown): z.infer<S> {
  const r = block.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = issue.code === 'unrecognized_keys' ? issue.keys[0]! : issue.path.map(String).join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown key; expected one of ${Object.keys(block.shape).join(', ')}` : issue.message;
  throw new MoeforgeError('invalid_recipe', message, { path: `gate${key ? `.${key}` : ''}` });
}
