// `moeforge forward / score / generate / serve` on an exported heterogeneous MoE
// (issue 9), as a user runs them, checked number for number against HeteroMoE called
// directly on the same folder: the mixture's log-probs, the routing weights, the
// greedy continuation.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadHeteroRepo } from '../core/hetero/load.js';
import type { HeteroMoE } from '../core/hetero/model.js';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { ServeEngine } from '../core/serve/engine.js';
import { startServer } from '../core/serve/server.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { runCli, spawnServe } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
let repo = '';
let moe: HeteroMoE;
let tokenizer: Tokenizer;

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-run-'));
  const llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  const qwen2 = await goldenCopy(dir, 'qwen2-tiny', 'qwen2');
  const narrow = await narrowQwen2(dir);
  // Perplexity routing, top 2 of 3: each text picks its own pair, with unequal weights.
  const recipe = path.join(dir, 'recipe.yml');
  await writeFile(recipe, [`base_model: ${llama}`, 'gate_mode: random', 'experts_per_token: 2', 'experts:', ...[llama, qwen2, narrow].map((e) => `  - source_model: ${e}`), ''].join('\n'));
  repo = path.join(dir, 'moe');
  const r = await runCli(['build', recipe, '--out', repo, '--quiet']);
  if (r.code !== 0) throw new Error(r.stderr);
  moe = await loadHeteroRepo(repo);
  tokenizer = await Tokenizer.fromFolder(repo);
});
test.after.always(async () => {
  moe?.dispose();
  await cleanup();
});

/** Two experts chosen, weights summing to 1: the routing really is top 2 of 3. */
function checkTopTwo(t: import('ava').ExecutionContext, w: number[]): void {
  t.is(w.length, 3);
  t.is(w.filter((x) => x > 0).length, 2, JSON.stringify(w));
  t.true(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-6);
}

test('forward writes the mixture log-probs and routing_weights [B, E], equal to HeteroMoE.forward', async (t) => {
  const out = path.join(dir, 'forward.safetensors');
  const ids = [
    [1, 40, 41, 42, 43],
    [1, 70, 71, 90, 91],
  ];
  const r = await runCli(['forward', repo, '--input-ids', ids.map((row) => row.join(',')).join(';'), '--output', out]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `wrote ${out}: logits [2, 5, 128] (mixture log-probs), routing_weights [2, 3] (heterogeneous MoE)\n`);
  const direct = await moe.forward(ids);
  const reader = await SafetensorsReader.open(out);
  t.teardown(() => reader.close());
  t.deepEqual([...reader.tensors.keys()].sort(), ['input_ids', 'logits', 'routing_weights']);
  t.deepEqual(reader.header('logits').shape, [2, 5, 128]);
  t.deepEqual(await reader.readFloat32('logits'), direct.logits);
  const weights = await reader.readFloat32('routing_weights');
  t.deepEqual(reader.header('routing_weights').shape, [2, 3]);
  t.deepEqual(Array.from(weights), direct.routingWeights.flat().map(Math.fround));
  for (const w of direct.routingWeights) checkTopTwo(t, w);
  // Log-probabilities: each position's distribution sums to 1.
  const logits = await reader.readFloat32('logits');
  const mass = logits.subarray(0, 128).reduce((s, x) => s + Math.exp(x), 0);
  t.true(Math.abs(mass - 1) < 1e-4, String(mass));
  // The chosen experts per row, on stderr, heaviest first.
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 2, r.stderr);
  direct.routingWeights.forEach((w, row) => {
    const chosen = w.map((x, e) => [moe.names[e]!, x] as const).filter(([, x]) => x > 0).sort((a, b) => b[1] - a[1]);
    t.is(lines[row], `row ${row}: ${chosen.map(([n, x]) => `${n} ${x.toFixed(4)}`).join(', ')}`);
  });
});

test('score --json: per-token log-probs and perplexity of the mixture, with the routing of the text', async (t) => {
  const text = 'abc def ghi';
  const r = await runCli(['score', repo, '--text', text, '--json']);
  t.is(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { tokens: { id: number; logprob: number }[]; perplexity: number; routing: { expert: string; weight: number }[] };
  const ids = tokenizer.encode(text);
  const expected = await moe.tokenLogprobs(ids);
  t.deepEqual(
    json.tokens.map((x) => x.id),
    ids.slice(1),
  );
  t.deepEqual(
    json.tokens.map((x) => x.logprob),
    expected,
  );
  t.is(json.perplexity, Math.exp(-expected.reduce((a, b) => a + b, 0) / expected.length));
  const w = await moe.route(ids);
  t.deepEqual(json.routing, moe.names.map((expert, e) => ({ expert, weight: w[e]! })));
  checkTopTwo(t, w);

  const plain = await runCli(['score', repo, '--text', text]);
  t.is(plain.code, 0, plain.stderr);
  t.regex(plain.stdout, /^position\tid\tlogprob\ttoken\n/);
  t.regex(plain.stdout, new RegExp(`\\nperplexity ${json.perplexity.toFixed(4)} over ${ids.length - 1} tokens .*\\nrouted to \\S+ 0\\.\\d{4}, \\S+ 0\\.\\d{4}\\n$`));
});

test('generate: the greedy continuation of HeteroMoE.generate, the chosen experts on stderr', async (t) => {
  const prompt = 'hello there';
  const r = await runCli(['generate', repo, '--prompt', prompt, '--max-new-tokens', '6']);
  t.is(r.code, 0, r.stderr);
  const ids = tokenizer.encode(prompt);
  const out = await moe.generate(ids, { maxNewTokens: 6, temperature: 0, topP: 1, seed: 0, stopTokens: tokenizer.eosTokenIds });
  t.true(out.length > 0);
  t.is(r.stdout, `${tokenizer.decode(out, { skipSpecialTokens: true })}\n`);
  const w = await moe.route(ids);
  checkTopTwo(t, w);
  const chosen = moe.names.filter((_, e) => w[e]! > 0);
  t.regex(r.stderr, new RegExp(`^routed to (${chosen.join('|')}) 0\\.\\d{4}, (${chosen.join('|')}) 0\\.\\d{4}\\n$`));
});

test('an option the loader refuses is one line and exit 2 on a heterogeneous folder too', async (t) => {
  const r = await runCli(['score', repo, '--text', 'abc', '--mode', 'lazy']);
  t.is(r.code, 2);
  t.is(r.stderr, "error[invalid_argument]: --mode: expected resident, streamed or auto, got 'lazy'\n");
});

test('ServeEngine serves a heterogeneous MoE: completions equal its greedy generate, logprobs are the mixture', async (t) => {
  const server = await startServer(new ServeEngine(moe, tokenizer, 'hetero'), { port: 0 });
  t.teardown(() => server.close());
  const prompt = 'abc';
  const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt, max_tokens: 4, temperature: 0, logprobs: 1, echo: true }) });
  t.is(res.status, 200);
  const json = (await res.json()) as { choices: { text: string; logprobs: { token_logprobs: (number | null)[] } }[] };
  const ids = tokenizer.encode(prompt);
  const gen = await moe.generate(ids, { maxNewTokens: 4, temperature: 0, stopTokens: tokenizer.eosTokenIds });
  const eos = new Set(tokenizer.eosTokenIds);
  const kept = gen.filter((id) => !eos.has(id));
  t.is(json.choices[0]!.text, `${prompt}${tokenizer.decode(kept, { skipSpecialTokens: true })}`);
  // The echoed prompt tokens' log-probs: the mixture routed on prompt + output (one pass over both, as the engine does for any model).
  const all = [...ids, ...kept];
  const { logits } = await moe.forward([all.slice(0, -1)]);
  const lp = json.choices[0]!.logprobs.token_logprobs;
  t.is(lp[0], null);
  for (let i = 1; i < ids.length; i++) t.true(Math.abs(lp[i]! - logits[(i - 1) * 128 + ids[i]!]!) < 1e-5, `${i}: ${lp[i]} vs ${logits[(i - 1) * 128 + ids[i]!]}`);
});

test('the CLI: `moeforge serve` on a heterogeneous folder answers completions', async (t) => {
  const server = await spawnServe(repo);
  const { url } = server;
  let code: number | null = null;
  try {
    const res = await fetch(`${url}/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'hello there', max_tokens: 6, temperature: 0 }) });
    t.is(res.status, 200);
    const ids = tokenizer.encode('hello there');
    const gen = await moe.generate(ids, { maxNewTokens: 6, temperature: 0, stopTokens: tokenizer.eosTokenIds });
    const eos = new Set(tokenizer.eosTokenIds);
    t.is(((await res.json()) as { choices: { text: string }[] }).choices[0]!.text, tokenizer.decode(gen.filter((id) => !eos.has(id)), { skipSpecialTokens: true }));
  } finally {
    code = await server.stop();
  }
  t.is(code, 0, server.stderr());
});

test('routes on a heterogeneous folder: one line saying routing is per sequence, exit 2', async (t) => {
  const prompts = path.join(dir, 'groups.yml');
  await writeFile(prompts, 'a:\n  - hello\n');
  const r = await runCli(['routes', repo, '--prompts', prompts]);
  t.is(r.code, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /a heterogeneous MoE routes whole sequences, not tokens per layer/);
});
