// `moeforge serve`: the OpenAI API subset over the built-in engine, checked
// against the engine called directly (generation, logprobs), and for what a
// server must survive (oversized and malformed bodies, wrong types, unknown
// routes, 32 requests at once). Every socket is on 127.0.0.1.
import test from 'ava';
import { copyFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { charTokenizerFiles } from '../benchmarks/synthetic/char-tokenizer.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { ServeEngine } from '../core/serve/engine.js';
import { startServer, type RunningServer } from '../core/serve/server.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { runCli, spawnServe } from './helpers/cli.js';
import { golden, tempDir } from './helpers/paths.js';

interface Ctx {
  folder: string;
  model: CausalLM;
  tokenizer: Tokenizer;
  server: RunningServer;
  cleanup: () => Promise<void>;
}
let ctx: Ctx;

/** llama-tiny (vocab 128) with a character tokenizer: a model that reads and writes text. */
async function textModel(dir: string): Promise<string> {
  for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(golden('llama-tiny'), f), path.join(dir, f));
  for (const [name, text] of Object.entries(charTokenizerFiles({ vocabSize: 128, bosId: 1, eosId: 2 }))) await writeFile(path.join(dir, name), text);
  return dir;
}

test.before(async () => {
  const { dir, cleanup } = await tempDir('moeforge-serve-');
  const folder = await textModel(dir);
  const model = await CausalLM.load(folder);
  const tokenizer = await Tokenizer.fromFolder(folder);
  const server = await startServer(new ServeEngine(model, tokenizer, 'tiny'), { port: 0, maxBodyBytes: 64 * 1024 });
  ctx = { folder, model, tokenizer, server, cleanup };
});

test.after.always(async () => {
  await ctx?.server.close();
  ctx?.model.dispose();
  await ctx?.cleanup();
});

async function post(route: string, body: unknown, raw = false): Promise<{ status: number; json: any }> {
  const res = await fetch(`${ctx.server.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? (body as string) : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const greedy = async (prompt: string, maxNewTokens: number) => {
  const ids = await ctx.model.generate(ctx.tokenizer.encode(prompt), { maxNewTokens, temperature: 0, stopTokens: ctx.tokenizer.eosTokenIds });
  const eos = new Set(ctx.tokenizer.eosTokenIds);
  return ctx.tokenizer.decode(ids.filter((id) => !eos.has(id)), { skipSpecialTokens: true });
};

test('binds 127.0.0.1 by default and lists the served model', async (t) => {
  const address = ctx.server.server.address() as AddressInfo;
  t.is(address.address, '127.0.0.1');
  t.regex(ctx.server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${ctx.server.url}/v1/models`);
  t.is(res.status, 200);
  const json = (await res.json()) as { object: string; data: { id: string; max_model_len: number }[] };
  t.is(json.object, 'list');
  t.deepEqual(
    json.data.map((m) => [m.id, m.max_model_len]),
    [['tiny', 256]],
  );
  t.is((await fetch(`${ctx.server.url}/health`)).status, 200);
});

test('greedy completion equals the engine; usage counts tokens', async (t) => {
  const { status, json } = await post('/v1/completions', { model: 'tiny', prompt: 'hello world', max_tokens: 12, temperature: 0 });
  t.is(status, 200, JSON.stringify(json));
  t.is(json.object, 'text_completion');
  t.is(json.choices[0].text, await greedy('hello world', 12));
  t.is(json.choices[0].logprobs, null);
  t.is(json.usage.prompt_tokens, 12); // BOS + 11 characters
  t.true(json.usage.completion_tokens <= 12);
  t.is(json.usage.total_tokens, json.usage.prompt_tokens + json.usage.completion_tokens);
});

test('echo + logprobs + max_tokens 0: the prompt scored as the engine scores it, in the legacy format', async (t) => {
  const prompt = 'the cat sat';
  const ids = ctx.tokenizer.encode(prompt);
  const { status, json } = await post('/v1/completions', { prompt: ids, max_tokens: 0, echo: true, logprobs: 3, temperature: 0 });
  t.is(status, 200, JSON.stringify(json));
  const c = json.choices[0];
  t.is(c.finish_reason, 'length');
  t.is(c.text, ctx.tokenizer.decode(ids)); // token prompts echo their decoding
  const lp = c.logprobs;
  t.deepEqual(lp.tokens, ids.map((id) => ctx.tokenizer.decode([id])));
  t.is(lp.token_logprobs[0], null);
  t.is(lp.top_logprobs[0], null);
  const direct = await ctx.model.tokenLogprobs(ids);
  t.is(lp.token_logprobs.length, ids.length);
  for (let i = 1; i < ids.length; i++) t.true(Math.abs(lp.token_logprobs[i] - direct[i - 1]!) < 1e-5, `token ${i}`);
  // top 3 alternatives plus the token itself, the best first, none above the best
  for (let i = 1; i < ids.length; i++) {
    const alts = Object.values(lp.top_logprobs[i] as Record<string, number>);
    t.true(alts.length >= 3 && alts.length <= 4);
    // (object keys that look like integers come first in JS, so order is not checked)
    t.true(alts.every((v) => v <= 0));
    t.true(Math.max(...alts) >= lp.token_logprobs[i]);
  }
  let offset = 0;
  lp.text_offset.forEach((o: number, i: number) => {
    t.is(o, offset);
    offset += lp.tokens[i].length;
  });
});

test('a list of prompts gets one choice each, by index; generated logprobs follow the output', async (t) => {
  const prompts = ['abc', 'xyz q', 'hello'];
  const { status, json } = await post('/v1/completions', { prompt: prompts, max_tokens: 5, temperature: 0, logprobs: 1 });
  t.is(status, 200, JSON.stringify(json));
  t.deepEqual(
    json.choices.map((c: { index: number }) => c.index),
    [0, 1, 2],
  );
  for (const [i, p] of prompts.entries()) {
    const c = json.choices[i];
    t.is(c.text, await greedy(p, 5));
    // greedy: every generated token is the best of its alternatives
    t.is(c.logprobs.tokens.join(''), c.text);
    c.logprobs.token_logprobs.forEach((v: number, k: number) => t.is(v, Math.max(...(Object.values(c.logprobs.top_logprobs[k]) as number[]))));
  }
});

test('stop strings cut the text and end generation; seeded sampling repeats', async (t) => {
  const full = await greedy('ab', 12);
  const stopAt = full.slice(3, 5);
  t.true(stopAt.length === 2, `model output too short: ${JSON.stringify(full)}`);
  const { json } = await post('/v1/completions', { prompt: 'ab', max_tokens: 12, temperature: 0, stop: [stopAt, 'never there'] });
  t.is(json.choices[0].text, full.slice(0, full.indexOf(stopAt)));
  t.is(json.choices[0].finish_reason, 'stop');
  t.true(json.usage.completion_tokens <= full.indexOf(stopAt) + stopAt.length, 'generation stopped at the stop string');
  const a = await post('/v1/completions', { prompt: 'ab', max_tokens: 6, temperature: 1.2, top_p: 0.9, seed: 7 });
  const b = await post('/v1/completions', { prompt: 'ab', max_tokens: 6, temperature: 1.2, top_p: 0.9, seed: 7 });
  t.is(a.json.choices[0].text, b.json.choices[0].text);
  const ids = await ctx.model.generate(ctx.tokenizer.encode('ab'), { maxNewTokens: 6, temperature: 1.2, topP: 0.9, seed: 7, stopTokens: ctx.tokenizer.eosTokenIds });
  t.is(a.json.choices[0].text, ctx.tokenizer.decode(ids, { skipSpecialTokens: true }));
});

test('chat completions go through the model\'s chat template', async (t) => {
  const messages = [{ role: 'user', content: 'hi there' }];
  const { status, json } = await post('/v1/chat/completions', { model: 'tiny', messages, max_tokens: 8, temperature: 0 });
  t.is(status, 200, JSON.stringify(json));
  const ids = ctx.tokenizer.encode(ctx.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  const out = await ctx.model.generate(ids, { maxNewTokens: 8, temperature: 0, stopTokens: ctx.tokenizer.eosTokenIds });
  t.is(json.object, 'chat.completion');
  t.deepEqual(json.choices[0].message, { role: 'assistant', content: ctx.tokenizer.decode(out, { skipSpecialTokens: true }) });
  t.is(json.usage.prompt_tokens, ids.length);
  const parts = await post('/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi ' }, { type: 'text', text: 'there' }] }], max_tokens: 8, temperature: 0 });
  t.is(parts.json.choices[0].message.content, json.choices[0].message.content);
});

test('bad requests get 4xx with an OpenAI error object, and the server keeps answering', async (t) => {
  const big = JSON.stringify({ prompt: 'x'.repeat(100 * 1024), max_tokens: 1 });
  const tooBig = await post('/v1/completions', big, true);
  t.is(tooBig.status, 413);
  t.regex(tooBig.json.error.message, /larger than the limit of 65536 bytes/);
  const malformed = await post('/v1/completions', '{"prompt": "abc", ', true);
  t.is(malformed.status, 400);
  t.is(malformed.json.error.type, 'invalid_request_error');
  t.regex(malformed.json.error.message, /not valid JSON/);
  const wrongType = await post('/v1/completions', { prompt: 'abc', max_tokens: '5' });
  t.is(wrongType.status, 400);
  t.is(wrongType.json.error.param, 'max_tokens');
  const notObject = await post('/v1/completions', [1, 2]);
  t.is(notObject.status, 400);
  const badId = await post('/v1/completions', { prompt: [1, 500], max_tokens: 1 });
  t.is(badId.status, 400);
  t.regex(badId.json.error.message, /outside the vocabulary/);
  const tooLong = await post('/v1/completions', { prompt: 'a'.repeat(250), max_tokens: 16 });
  t.is(tooLong.status, 400);
  t.regex(tooLong.json.error.message, /maximum context length is 256 tokens/);
  const stream = await post('/v1/completions', { prompt: 'a', stream: true });
  t.is(stream.status, 400);
  const wrongModel = await post('/v1/completions', { model: 'gpt-4', prompt: 'a' });
  t.is(wrongModel.status, 404);
  t.regex(wrongModel.json.error.message, /`gpt-4` does not exist/);
  const route = await post('/v1/embeddings', { input: 'a' });
  t.is(route.status, 404);
  t.is(route.json.error.type, 'not_found_error');
  const method = await fetch(`${ctx.server.url}/v1/completions`);
  t.is(method.status, 405);
  const ok = await post('/v1/completions', { prompt: 'abc', max_tokens: 2, temperature: 0 });
  t.is(ok.status, 200);
});

test('32 parallel requests with different prompts each get their own output', async (t) => {
  const prompts = Array.from({ length: 32 }, (_, i) => `p${i} ${'abcdefghij'.slice(0, (i % 7) + 1)}`);
  const body = (p: string, i: number) => ({ prompt: p, max_tokens: 4, temperature: i % 2 ? 0.8 : 0, seed: i, logprobs: i % 3 === 0 ? 2 : undefined });
  const parallel = await Promise.all(prompts.map((p, i) => post('/v1/completions', body(p, i))));
  const sequential = [];
  for (const [i, p] of prompts.entries()) sequential.push(await post('/v1/completions', body(p, i)));
  t.true(parallel.every((r) => r.status === 200));
  t.deepEqual(
    parallel.map((r) => [r.json.choices[0].text, r.json.choices[0].logprobs]),
    sequential.map((r) => [r.json.choices[0].text, r.json.choices[0].logprobs]),
  );
  // and the greedy ones are the engine's own answers
  for (let i = 0; i < 32; i += 2) t.is(parallel[i]!.json.choices[0].text, await greedy(prompts[i]!, 4));
  // not all alike (otherwise mixing could go unnoticed)
  t.true(new Set(parallel.map((r) => r.json.choices[0].text)).size > 8);
});

test('the CLI: `moeforge serve` prints its 127.0.0.1 URL, answers, and stops on SIGTERM', async (t) => {
  const server = await spawnServe(ctx.folder);
  const { url } = server;
  let code: number | null = null;
  try {
    t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    t.true(server.stdout().startsWith(`serving ${ctx.folder} at `));
    const models = (await (await fetch(`${url}/models`)).json()) as { data: { id: string }[] };
    t.is(models.data[0]!.id, ctx.folder);
    const res = await fetch(`${url}/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'hello world', max_tokens: 12, temperature: 0 }) });
    t.is(((await res.json()) as { choices: { text: string }[] }).choices[0]!.text, await greedy('hello world', 12));
  } finally {
    code = await server.stop();
  }
  t.is(code, 0, server.stderr());
});

test('the CLI refuses a bad port and a busy port with one line, exit 2', async (t) => {
  const bad = await runCli(['serve', ctx.folder, '--port', '80000']);
  t.is(bad.code, 2);
  t.is(bad.stderr, "error[invalid_argument]: --port: expected a port number 0..65535 (0 = any free port), got '80000'\n");
  const busyPort = String((ctx.server.server.address() as AddressInfo).port);
  const busy = await runCli(['serve', ctx.folder, '--port', busyPort]);
  t.is(busy.code, 2);
  t.is(busy.stderr, `error[io_error]: --port: cannot listen on 127.0.0.1:${busyPort}: the port is in use (choose another with --port)\n`);
});
