// The recipe's `gate:` block for a heterogeneous MoE (issue 9), validated strictly (an
// unknown key or a wrong value is one line naming `gate.<key>`). `form` picks the MoE:
// `whole` keeps every expert whole behind a sequence router (the build reads it too);
// `projected` is MergeME's trained form (arXiv 2502.00997 §3.2), whose projections are
// trained with the `proj_*` keys. epochs … patience train the sequence router in both.
// Defaults differ from MergeME's recipe where the zoo showed it loses the experts' skills
// (benchmarks/demo/hetero.ts): least-squares projections and a distillation objective.
import { z } from 'zod';
import { parseGateBlock } from '../options.js';

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
  // least_squares: projections fitted to each expert's own embedding and head; identity: MergeME's [I | 0].
  proj_init: z.enum(['least_squares', 'identity']).default('least_squares'),
  // distill: match each expert's own next-token distributions (KL); lm: the next-token loss of its data.
  proj_objective: z.enum(['distill', 'lm']).default('distill'),
  train_shared: z.boolean().default(false),
});

export type HeteroGateOptions = z.infer<typeof schema>;

export function parseHeteroGateOptions(raw: unknown): HeteroGateOptions {
  return parseGateBlock(schema, raw);
}
