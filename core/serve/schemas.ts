// Request bodies of the OpenAI API subset `moeforge serve` answers, as zod
// schemas. Fields follow the OpenAI reference (and vLLM's protocol.py, which
// accepts token-id prompts): unknown fields are ignored as OpenAI-compatible
// servers do (clients send `user`, `frequency_penalty`, …), a wrong type is a 400
// naming the field.
import { z } from 'zod';
import { HttpError } from './http.js';

const tokenIds = z.array(z.number().int().min(0)).min(1);

const stop = z.union([z.string(), z.array(z.string()).max(16)]).nullish();

const sampling = {
  model: z.string().optional(),
  /** OpenAI's default is 1 (sampling); the scorer always sends 0 for greedy. */
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop,
  n: z.literal(1, 'only n = 1 is supported').nullish(),
  stream: z.literal(false, 'streaming is not supported').nullish(),
};

export const completionBody = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)], 'expected a string, a list of strings, a list of token ids or a list of such lists'),
  max_tokens: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  /** Legacy completions: how many top alternatives per token (OpenAI allows up to 5; vLLM up to 20). */
  logprobs: z.number().int().min(0).max(20).nullish(),
});
export type CompletionBody = z.infer<typeof completionBody>;

const textPart = z.object({ type: z.literal('text'), text: z.string() });

export const chatBody = z.object({
  ...sampling,
  messages: z
    .array(
      z.object({
        role: z.string().min(1),
        content: z.union([z.string(), z.array(textPart)], 'expected a string or a list of text parts'),
      }),
    )
    .min(1),
  max_tokens: z.number().int().min(0).nullish(),
  max_completion_tokens: z.number().int().min(0).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
});
export type ChatBody = z.infer<typeof chatBody>;

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON: ${(e as Error).message}`);
  }
}

export function validate<T>(schema: z.ZodType<T>, raw: unknown): T {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HttpError(400, 'the request body must be a JSON object');
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.map(String).join('.') || null;
  throw new HttpError(400, `${param ?? 'body'}: ${issue.message}`, 'invalid_request_error', param);
}

export function stopList(s: string | string[] | null | undefined): string[] {
  if (s === null || s === undefined) return [];
  return (typeof s === 'string' ? [s] : s).filter((x) => x.length > 0);
}
