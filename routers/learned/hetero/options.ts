// The recipe's `gate:` block for a heterogeneous MoE (issue 9), validated strictly (an
// unknown key or a wrong value is one line naming `gate.<key>`). `form` picks the MoE:
// `whole` keeps every expert whole behind a sequence router (the build reads it too);
// `projected` is MergeME's trained form (arXiv 2502.00997 §3.2), whose projections are
// trained with the `proj_*` keys. epochs … patience train the sequence router in both.
import { z } from 'zod';
import { MoeforgeError } from '../../../core/errors.js';

const schema = z.strictObject({
  form: z.enum(['whole', 'projected']).default('whole'),
  epochs: z.number().int().min(1).max(100000).default(300),
  lr: z.number().positive().max(10).default(0.05),
  balance: z.number().min(0).default(0),
  holdout: z.number().min(0).lt(1).default(0.2),
  patience: z.number().int().min(1).default(30),
  // 0 keeps the initialisation (the padded-mean embedding and identity projections).
  proj_epochs: z.number().int().min(0).max(100000).default(200),
  proj_lr: z.number().positive().max(10).default(0.01),
  train_shared: z.boolean().default(false),
});

export type HeteroGateOptions = z.infer<typeof schema>;

export function parseHeteroGateOptions(raw: unknown): HeteroGateOptions {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = issue.code === 'unrecognized_keys' ? issue.keys[0]! : issue.path.map(String).join('.');
  const message =
    issue.code === 'unrecognized_keys' ? `unknown key; expected one of ${Object.keys(schema.shape).join(', ')}` : issue.message;
  throw new MoeforgeError('invalid_recipe', message, { path: `gate${key ? `.${key}` : ''}` });
}
