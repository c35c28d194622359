// /v1/models, /v1/completions and /v1/chat/completions over a ServeEngine, with
// the response shapes of the OpenAI API (legacy completions `logprobs`: `tokens`,
// `token_logprobs`, `top_logprobs`, `text_offset`; chat `logprobs.content`) as vLLM
// returns them, so the openai clients and lm-evaluation-harness parse them.
import { MoeforgeError } from '../errors.js';
import { type CompletionJob, type CompletionOutput, type ServeEngine, type TokenLogprob } from './engine.js';
import { HttpError } from './http.js';
import { chatBody, completionBody, stopList, validate, type ChatBody, type CompletionBody } from './schemas.js';

let counter = 0;
const requestId = (prefix: string) => `${prefix}-${Date.now().toString(36)}${(counter++).toString(36)}`;
const now = () => Math.floor(Date.now() / 1000);

/** Engine and tokenizer errors a client caused (bad token ids, a template that refuses the messages) are 400s. */
function clientError(e: unknown): never {
  if (e instanceof MoeforgeError && ['invalid_argument', 'invalid_data', 'missing_file'].includes(e.code)) {
    throw new HttpError(400, e.message, 'invalid_request_error', e.path ?? null);
  }
  throw e;
}

function checkModel(engine: ServeEngine, model: string | undefined): void {
  if (model !== undefined && model !== engine.modelName) {
    throw new HttpError(404, `The model \`${model}\` does not exist (this server serves \`${engine.modelName}\`).`, 'not_found_error', 'model');
  }
}

function checkLength(engine: ServeEngine, promptTokens: number, maxTokens: number): void {
  // As vLLM: prompt plus requested completion must fit the context.
  if (promptTokens === 0) throw new HttpError(400, 'the prompt is empty', 'invalid_request_error', 'prompt');
  if (promptTokens + maxTokens > engine.maxContext) {
    throw new HttpError(
      400,
      `This model's maximum context length is ${engine.maxContext} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the prompt, ${maxTokens} for the completion).`,
      'invalid_request_error',
      'max_tokens',
    );
  }
}

export function listModels(engine: ServeEngine): unknown {
  return { object: 'list', data: [{ id: engine.modelName, object: 'model', created: now(), owned_by: 'moeforge', max_model_len: engine.maxContext }] };
}

function jobSettings(b: CompletionBody | ChatBody): Omit<CompletionJob, 'prompt' | 'maxTokens' | 'logprobs' | 'echo'> {
  return { temperature: b.temperature ?? 1, topP: b.top_p ?? 1, seed: b.seed ?? undefined, stop: stopList(b.stop) };
}

function legacyLogprobs(engine: ServeEngine, lp: TokenLogprob[]): unknown {
  const text = (id: number) => engine.tokenizer.decode([id]);
  const tokens = lp.map((t) => text(t.id));
  const textOffset: number[] = [];
  let offset = 0;
  for (const t of tokens) {
    textOffset.push(offset);
    offset += t.length;
  }
  return {
    tokens,
    token_logprobs: lp.map((t) => t.logprob),
    // vLLM adds the token itself to its alternatives; the first string wins where two ids decode alike.
    top_logprobs: lp.map((t) => {
      if (t.top === null) return null;
      const dict: Record<string, number> = {};
      for (const alt of [...t.top, { id: t.id, logprob: t.logprob! }]) {
        const key = text(alt.id);
        if (!(key in dict)) dict[key] = alt.logprob;
      }
      return dict;
    }),
    text_offset: textOffset,
  };
}

export async function completions(engine: ServeEngine, raw: unknown): Promise<unknown> {
  const b = validate(completionBody, raw);
  checkModel(engine, b.model);
  const maxTokens = b.max_tokens ?? 16; // OpenAI's default
  const prompts: { ids: number[]; text: string | undefined }[] = [];
  const p = b.prompt;
  try {
    if (typeof p === 'string') prompts.push({ ids: engine.tokenizer.encode(p), text: p });
    else if (p.every((x) => typeof x === 'string')) for (const s of p as string[]) prompts.push({ ids: engine.tokenizer.encode(s), text: s });
    else if (p.every((x) => typeof x === 'number')) prompts.push({ ids: p as number[], text: undefined });
    else for (const ids of p as number[][]) prompts.push({ ids, text: undefined });
  } catch (e) {
    clientError(e);
  }
  for (const q of prompts) checkLength(engine, q.ids.length, maxTokens);
  const settings = jobSettings(b);
  const echo = b.echo ?? false;
  const outputs: CompletionOutput[] = await Promise.all(
    prompts.map((q) => engine.complete({ ...settings, prompt: q.ids, maxTokens, logprobs: b.logprobs ?? undefined, echo }).catch(clientError)),
  );
  let completionTokens = 0;
  const choices = outputs.map((o, index) => {
    completionTokens += o.ids.length;
    const q = prompts[index]!;
    const promptText = echo ? (q.text ?? engine.tokenizer.decode(q.ids)) : '';
    return { index, text: promptText + o.text, logprobs: o.logprobs ? legacyLogprobs(engine, o.logprobs) : null, finish_reason: o.finishReason };
  });
  const promptTokens = prompts.reduce((a, q) => a + q.ids.length, 0);
  return {
    id: requestId('cmpl'),
    object: 'text_completion',
    created: now(),
    model: engine.modelName,
    choices,
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}

export async function chatCompletions(engine: ServeEngine, raw: unknown): Promise<unknown> {
  const b = validate(chatBody, raw);
  checkModel(engine, b.model);
  const messages = b.messages.map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : m.content.map((x) => x.text).join('') }));
  let ids: number[] = [];
  try {
    // apply_chat_template(tokenize=True): the template writes the special tokens itself.
    ids = engine.tokenizer.encode(engine.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  } catch (e) {
    clientError(e);
  }
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? Math.max(0, engine.maxContext - ids.length);
  checkLength(engine, ids.length, maxTokens);
  const top = b.logprobs ? (b.top_logprobs ?? 0) : undefined;
  const o = await engine.complete({ ...jobSettings(b), prompt: ids, maxTokens, logprobs: top, echo: false }).catch(clientError);
  const entry = (id: number, logprob: number) => {
    const token = engine.tokenizer.decode([id]);
    return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  };
  const logprobs = o.logprobs ? { content: o.logprobs.map((t) => ({ ...entry(t.id, t.logprob!), top_logprobs: (t.top ?? []).map((a) => entry(a.id, a.logprob)) })) } : null;
  return {
    id: requestId('chatcmpl'),
    object: 'chat.completion',
    created: now(),
    model: engine.modelName,
    choices: [{ index: 0, message: { role: 'assistant', content: o.text }, logprobs, finish_reason: o.finishReason }],
    usage: { prompt_tokens: ids.length, completion_tokens: o.ids.length, total_tokens: ids.length + o.ids.length },
  };
}
