// The remote scorer (`openai:<base-url>#<model>` in `moeforge eval`): against fake
// servers that misbehave (429, a connection cut mid-answer, no prompt logprobs,
// 5xx for good), and end to end against `moeforge serve` on the same model, where
// a suite must score as the built-in engine scores it. Every socket is on 127.0.0.1.
import test from 'ava';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { causalLMScorer, prepareTasks } from '../benchmarks/eval/evaluate.js';
import { OpenAiClient } from '../benchmarks/eval/remote/client.js';
import { openRemoteScorer, parseRemoteRef, remoteModel } from '../benchmarks/eval/remote/open.js';
import { RemoteScorer } from '../benchmarks/eval/remote/remote-scorer.js';
import { runTask } from '../benchmarks/eval/runners.js';
import type { Scorer } from '../benchmarks/eval/scorer.js';
import { loadSuite } from '../benchmarks/eval/suite.js';
import { charTokenizerFiles } from '../benchmarks/synthetic/char-tokenizer.js';
import { MoeforgeError } from '../core/errors.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { ServeEngine } from '../core/serve/engine.js';
import { startServer, type RunningServer } from '../core/serve/server.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { runCli } from './helpers/cli.js';
import { golden, tempDir } from './helpers/paths.js';

let folder: string;
let moeFolder: string;
let cleanup: () => Promise<void>;
let tokenizer: Tokenizer;

test.before(async () => {
  const t = await tempDir('moeforge-remote-');
  cleanup = t.cleanup;
  // Goldens with a character tokenizer (vocab 128): a dense llama and a Qwen2-MoE (shared expert, top-k routing).
  const textModel = async (name: 'llama-tiny' | 'qwen2moe-tiny') => {
    const dir = path.join(t.dir, name);
    await mkdir(dir);
    for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(golden(name), f), path.join(dir, f));
    for (const [file, text] of Object.entries(charTokenizerFiles({ vocabSize: 128, bosId: 1, eosId: 2 }))) await writeFile(path.join(dir, file), text);
    return dir;
  };
  folder = await textModel('llama-tiny');
  moeFolder = await textModel('qwen2moe-tiny');
  tokenizer = await Tokenizer.fromFolder(folder);
});

test.after.always(() => cleanup?.());

interface Fake {
  url: string;
  bodies: Record<string, unknown>[];
  headers: IncomingMessage['headers'][];
  maxInFlight: number;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 whose n-th request (0-based) is answered by `answer`. */
async function fakeServer(answer: (n: number, body: Record<string, unknown>, res: ServerResponse) => void | Promise<void>): Promise<Fake> {
  const fake = { bodies: [] as Record<string, unknown>[], headers: [] as IncomingMessage['headers'][], maxInFlight: 0 };
  let inFlight = 0;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', async () => {
      const n = fake.bodies.length;
      fake.bodies.push(JSON.parse(text) as Record<string, unknown>);
      fake.headers.push(req.headers);
      fake.maxInFlight = Math.max(fake.maxInFlight, ++inFlight);
      try {
        await answer(n, fake.bodies[n]!, res);
      } finally {
        inFlight--;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    ...fake,
    get bodies() {
      return fake.bodies;
    },
    get headers() {
      return fake.headers;
    },
    get maxInFlight() {
      return fake.maxInFlight;
    },
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** An echo answer for token prompts: token i gets logprob -(i/10), and is the top alternative unless `notBest` includes i. */
function echoAnswer(prompts: number[][], notBest: number[] = []): unknown {
  return {
    choices: prompts.map((p, index) => ({
      index,
      text: '',
      logprobs: {
        tokens: p.map(String),
        token_logprobs: p.map((_, i) => (i === 0 ? null : -i / 10)),
        top_logprobs: p.map((_, i) => (i === 0 ? null : notBest.includes(i) ? { x: -0.01, [String(p[i])]: -i / 10 } : { [String(p[i])]: -i / 10 })),
        text_offset: p.map((_, i) => i),
      },
      finish_reason: 'length',
    })),
  };
}

const fast = { baseDelayMs: 1, maxDelayMs: 5 };

test('openai: references name a base URL and a model', (t) => {
  t.deepEqual(parseRemoteRef('openai:http://127.0.0.1:8000/v1#./my-moe'), { baseUrl: 'http://127.0.0.1:8000/v1', model: './my-moe' });
  t.deepEqual(parseRemoteRef('openai:http://127.0.0.1:8000/v1/completions/#org/name'), { baseUrl: 'http://127.0.0.1:8000/v1', model: 'org/name' });
  const noName = t.throws(() => parseRemoteRef('openai:http://127.0.0.1:8000/v1'), { instanceOf: MoeforgeError });
  t.regex(noName.message, /no model name after '#'.*openai:<base-url>#<model-name>/);
  t.throws(() => parseRemoteRef('openai:ftp://x/v1#m'), { message: /http or https/ });
  t.throws(() => parseRemoteRef('openai:not a url#m'), { message: /not a URL/ });
  t.deepEqual(parseRemoteRef('openai:https://host.example/v1?tokenizer=org/tok#served'), { baseUrl: 'https://host.example/v1', model: 'served', tokenizer: 'org/tok' });
  t.is(remoteModel('openai:http://127.0.0.1:1/v1#./some/my-moe').name, 'my-moe');
});

test('the tokenizer comes from the model name or ?tokenizer=; a missing one is named with the way out', async (t) => {
  const fake = await fakeServer((_n, body, res) => json(res, 200, echoAnswer(body.prompt as number[][])));
  t.teardown(() => fake.close());
  const e = await t.throwsAsync(openRemoteScorer(`openai:${fake.url}#${path.join(folder, 'absent')}`), { instanceOf: MoeforgeError });
  t.is(e!.code, 'missing_file');
  t.regex(e!.message, /add \?tokenizer=<folder or org\/name> to the base URL/);
  const scorer = await openRemoteScorer(`openai:${fake.url}?tokenizer=${encodeURIComponent(folder)}#served-name`);
  t.like(scorer.info, { modelType: 'llama' });
  t.deepEqual(await scorer.logLikelihood([{ context: 'ab', continuation: 'c' }]), [{ logprob: -0.3, isGreedy: true, tokens: 1 }]);
  t.is(fake.bodies[0]!.model, 'served-name');
});

test('a 429 is retried after Retry-After and the answer scored as lm-eval does; the key goes as a Bearer token', async (t) => {
  const fake = await fakeServer((n, body, res) => {
    if (n === 0) return json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0' });
    json(res, 200, echoAnswer(body.prompt as number[][], [4]));
  });
  t.teardown(() => fake.close());
  const scorer = new RemoteScorer(new OpenAiClient(fake.url, { ...fast, apiKey: 'sk-test-secret' }), tokenizer, { model: 'tiny' });
  const [a, b] = await scorer.logLikelihood([
    { context: 'ab', continuation: 'c' },
    { context: 'ab ', continuation: 'cd' }, // the trailing space moves to the continuation (lm-eval's _encode_pair)
  ]);
  t.is(fake.bodies.length, 2);
  const sent = fake.bodies[1]!;
  t.like(sent, { model: 'tiny', echo: true, logprobs: 1, max_tokens: 0, temperature: 0 });
  const enc = (s: string) => tokenizer.encode(s);
  t.deepEqual(sent.prompt, [enc('abc'), enc('ab cd')]);
  t.is(fake.headers[1]!.authorization, 'Bearer sk-test-secret');
  // [BOS a b c]: the context is 3 tokens, token 3 scored: -0.3, the best → greedy
  t.deepEqual(a, { logprob: -0.3, isGreedy: true, tokens: 1 });
  // [BOS a b ' ' c d]: tokens 3..5 scored; token 4 is not the best alternative → not greedy
  t.is(b!.tokens, 3);
  t.true(Math.abs(b!.logprob - -(0.3 + 0.4 + 0.5)) < 1e-12);
  t.false(b!.isGreedy);
});

test('a connection cut in the middle of an answer is retried', async (t) => {
  const fake = await fakeServer((n, body, res) => {
    if (n === 0) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
      res.write('{"choices": [{"index": 0, "text": "');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    if (n === 1) {
      res.socket?.destroy(); // no answer at all
      return;
    }
    json(res, 200, echoAnswer(body.prompt as number[][]));
  });
  t.teardown(() => fake.close());
  const client = new OpenAiClient(fake.url, fast);
  const scorer = new RemoteScorer(client, tokenizer, { model: 'tiny' });
  const [r] = await scorer.logLikelihood([{ context: 'xy', continuation: 'z' }]);
  t.is(fake.bodies.length, 3);
  t.is(client.retried, 2);
  t.deepEqual(r, { logprob: -0.3, isGreedy: true, tokens: 1 });
});

test('a server without prompt logprobs is refused with one clear line; 5xx for good gives up; 4xx is not retried', async (t) => {
  const noLogprobs = await fakeServer((_n, _body, res) => json(res, 200, { choices: [{ index: 0, text: '', logprobs: null, finish_reason: 'length' }] }));
  t.teardown(() => noLogprobs.close());
  const scorer = new RemoteScorer(new OpenAiClient(noLogprobs.url, fast), tokenizer, { model: 'tiny' });
  const e = await t.throwsAsync(scorer.logLikelihood([{ context: 'ab', continuation: 'c' }]), { instanceOf: MoeforgeError });
  t.is(e!.code, 'remote_error');
  t.regex(e!.toLine(), /^error\[remote_error\]: http:\/\/127\.0\.0\.1:\d+\/v1\/completions: the server returned no prompt logprobs \(no logprobs object\)/);
  t.false(e!.toLine().includes('\n'));

  // Only the generated token's logprob (a server that ignores echo)
  const onlyGenerated = await fakeServer((_n, _body, res) =>
    json(res, 200, { choices: [{ index: 0, text: 'q', logprobs: { tokens: ['q'], token_logprobs: [-1], top_logprobs: [{ q: -1 }], text_offset: [0] } }] }),
  );
  t.teardown(() => onlyGenerated.close());
  const s2 = new RemoteScorer(new OpenAiClient(onlyGenerated.url, fast), tokenizer, { model: 'tiny' });
  await t.throwsAsync(s2.logLikelihood([{ context: 'ab', continuation: 'c' }]), { message: /no prompt logprobs \(token_logprobs has 1 entries for a 4-token prompt\)/ });

  const down = await fakeServer((_n, _body, res) => json(res, 503, { error: { message: 'overloaded' } }));
  t.teardown(() => down.close());
  const s3 = new RemoteScorer(new OpenAiClient(down.url, { ...fast, retries: 2 }), tokenizer, { model: 'tiny' });
  await t.throwsAsync(s3.generate([{ context: 'a', until: [], maxNewTokens: 2, temperature: 0, topP: 1, seed: 0 }]), {
    message: 'server answered 503: overloaded (gave up after 3 attempts)',
  });
  t.is(down.bodies.length, 3);

  const denied = await fakeServer((_n, _body, res) => json(res, 401, { error: { message: 'bad key' } }));
  t.teardown(() => denied.close());
  const s4 = new RemoteScorer(new OpenAiClient(denied.url, { ...fast, apiKey: 'sk-very-secret' }), tokenizer, { model: 'tiny' });
  const e4 = await t.throwsAsync(s4.generate([{ context: 'a', until: [], maxNewTokens: 2, temperature: 0, topP: 1, seed: 0 }]));
  t.is(e4!.message, 'server answered 401: bad key (check OPENAI_API_KEY)');
  t.false(e4!.message.includes('sk-very-secret'));
  t.is(denied.bodies.length, 1);
});

test('generation sends the suite\'s stop sequences and settings, cuts at a stop the server ignored, bounded in flight', async (t) => {
  const fake = await fakeServer(async (_n, body, res) => {
    await new Promise((r) => setTimeout(r, 15));
    json(res, 200, { choices: [{ index: 0, text: `${String((body.prompt as number[]).length)} tokens\nmore`, finish_reason: 'length' }] });
  });
  t.teardown(() => fake.close());
  const scorer = new RemoteScorer(new OpenAiClient(fake.url, { ...fast, concurrency: 2 }), tokenizer, { model: 'tiny' });
  const prompts = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff'];
  const out = await scorer.generate(prompts.map((context, i) => ({ context, until: ['\n'], maxNewTokens: 7, temperature: 0.5, topP: 0.9, seed: i })));
  t.deepEqual(
    out,
    prompts.map((p) => `${p.length + 1} tokens`),
  );
  t.like(fake.bodies[0], { model: 'tiny', max_tokens: 7, temperature: 0.5, top_p: 0.9, stop: ['\n'] });
  t.deepEqual(
    fake.bodies.map((b) => b.seed).sort(),
    [0, 1, 2, 3, 4, 5],
  );
  t.is(fake.maxInFlight, 2);
});

/** Both scorers on the same tiny model: the engine in-process, and through `moeforge serve`. */
async function bothScorers(t: { teardown(f: () => unknown): void }, folder: string): Promise<{ local: Scorer; remote: Scorer; server: RunningServer }> {
  const model = await CausalLM.load(folder);
  const server = await startServer(new ServeEngine(model, await Tokenizer.fromFolder(folder), folder), { port: 0 });
  t.teardown(async () => {
    await server.close();
    model.dispose();
  });
  const local = await causalLMScorer(folder, () => CausalLM.load(folder), 4);
  t.teardown(() => local.dispose());
  const remote = await openRemoteScorer(`openai:${server.url}/v1#${folder}`, { batchSize: 3 });
  return { local, remote, server };
}

const agreement = test.macro(async (t, name: 'dense' | 'moe') => {
  const { local, remote } = await bothScorers(t, name === 'dense' ? folder : moeFolder);
  t.like(remote.info, name === 'dense' ? { modelType: 'llama', architecture: 'LlamaForCausalLM', numExperts: null } : { modelType: 'qwen2_moe', numExperts: local.info.numExperts });
  const chat = remote.chatPrompt('pick one');
  t.is(chat, local.chatPrompt('pick one'));
  const requests = [
    { context: 'the cat', continuation: ' sat' },
    { context: 'the cat ', continuation: 'ran' },
    { context: '', continuation: 'hello' },
    { context: 'abc', continuation: 'd' },
    { context: chat, continuation: 'yes', chat: true },
    { context: 'q: 1+1=', continuation: '' },
    { context: 'q: 2+2=', continuation: '4' },
  ];
  const [a, b] = [await local.logLikelihood(requests), await remote.logLikelihood(requests)];
  a.forEach((x, i) => {
    t.true(Math.abs(x.logprob - b[i]!.logprob) < 1e-4, `request ${i}: ${x.logprob} vs ${b[i]!.logprob}`);
    t.is(x.isGreedy, b[i]!.isGreedy, `request ${i}`);
    t.is(x.tokens, b[i]!.tokens, `request ${i}`);
  });
  const texts = ['a short text to score', 'another one\nwith two lines'];
  const [ra, rb] = [await local.logLikelihoodRolling(texts), await remote.logLikelihoodRolling(texts)];
  ra.forEach((x, i) => {
    t.is(x.tokens, rb[i]!.tokens);
    t.true(Math.abs(x.logprob - rb[i]!.logprob) < 1e-4);
  });
  const gens = [
    { context: 'once upon', until: [], maxNewTokens: 10, temperature: 0, topP: 1, seed: 0 },
    { context: 'abc', until: ['e', 'x'], maxNewTokens: 10, temperature: 0, topP: 1, seed: 0 },
    { context: chat, chat: true, until: ['\n'], maxNewTokens: 8, temperature: 0, topP: 1, seed: 0 },
    { context: 'sampled', until: [], maxNewTokens: 8, temperature: 0.9, topP: 0.95, seed: 12345 },
  ];
  t.deepEqual(await remote.generate(gens), await local.generate(gens));
});

test('through `serve`, the scorer agrees with the engine: log-likelihoods within 1e-4, generation exactly (llama)', agreement, 'dense');
test('through `serve`, the scorer agrees with the engine: log-likelihoods within 1e-4, generation exactly (Qwen2-MoE)', agreement, 'moe');

test('a suite scored through `serve` gives the engine\'s numbers (multiple choice, generation, perplexity)', async (t) => {
  const { dir, cleanup: rm } = await tempDir('moeforge-remote-suite-');
  t.teardown(rm);
  const lines = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  await writeFile(
    path.join(dir, 'mc.jsonl'),
    lines([
      { q: 'sky is', options: ['blue', 'green', 'loud'], answer: 0 },
      { q: 'one two', options: ['three', 'four'], answer: 0 },
      { q: 'a b c', options: ['d', 'z', 'q'], answer: 0 },
    ]),
  );
  await writeFile(path.join(dir, 'gen.jsonl'), lines([{ q: 'ab', a: 'c' }, { q: 'hello', a: ' world' }, { q: 'x y', a: 'z' }]));
  await writeFile(path.join(dir, 'text.jsonl'), lines([{ text: 'some plain text' }, { text: 'more text here, with commas' }]));
  await writeFile(
    path.join(dir, 'suite.yml'),
    [
      'name: remote-check',
      'seed: 3',
      'tasks:',
      '  - {name: pick, type: multiple_choice, data: mc.jsonl, prompt: "{{ q }}", choices: "{{ options }}", target: "{{ answer }}", num_fewshot: 1}',
      '  - {name: greedy, type: generate, data: gen.jsonl, prompt: "{{ q }}", target: "{{ a }}", max_new_tokens: 6, stop: ["\\n", "."]}',
      '  - {name: sampled, type: generate, data: gen.jsonl, prompt: "{{ q }}", target: "{{ a }}", max_new_tokens: 5, temperature: 0.8}',
      '  - {name: ppl, type: perplexity, data: text.jsonl, prompt: "{{ text }}"}',
      '',
    ].join('\n'),
  );
  const suite = await loadSuite(path.join(dir, 'suite.yml'));
  const { local, remote } = await bothScorers(t, folder);
  for (const p of await prepareTasks(suite)) {
    const run = (scorer: Scorer) => runTask({ task: p.task, samples: p.samples, pool: p.pool, seed: suite.seed, scorer });
    const [a, b] = [await run(local), await run(remote)];
    t.is(a.n, b.n);
    a.samples.forEach((x, i) => {
      const y = b.samples[i]!;
      for (const [k, v] of Object.entries(x)) {
        if (typeof v === 'number' && !Number.isInteger(v)) t.true(Math.abs(v - (y[k] as number)) < 1e-4, `${p.task.name}[${i}].${k}`);
        else if (Array.isArray(v) && typeof v[0] === 'number') (v as number[]).forEach((u, j) => t.true(Math.abs(u - (y[k] as number[])[j]!) < 1e-4, `${p.task.name}[${i}].${k}[${j}]`));
        else t.deepEqual(y[k], v, `${p.task.name}[${i}].${k}`); // generated text, predictions, token counts: exactly
      }
    });
    for (const [m, v] of Object.entries(a.metrics)) t.true(Math.abs(v.value - b.metrics[m as keyof typeof b.metrics]!.value) < 1e-4, `${p.task.name}.${m}`);
  }
});

test('`moeforge eval openai:…` against a server without prompt logprobs: one error line, exit 2', async (t) => {
  const fake = await fakeServer((_n, body, res) => json(res, 200, { choices: (body.prompt as unknown[]).map((_, index) => ({ index, text: '', logprobs: null })) }));
  t.teardown(() => fake.close());
  const { dir, cleanup: rm } = await tempDir('moeforge-remote-cli-');
  t.teardown(rm);
  await writeFile(path.join(dir, 'mc.jsonl'), `${JSON.stringify({ q: 'sky is', options: ['blue', 'green'], answer: 0 })}\n`);
  await writeFile(path.join(dir, 'suite.yml'), 'name: s\ntasks:\n  - {name: pick, type: multiple_choice, data: mc.jsonl, prompt: "{{ q }}", choices: "{{ options }}", target: "{{ answer }}"}\n');
  const { code, stdout, stderr } = await runCli(['eval', `openai:${fake.url}#${folder}`, '--suite', path.join(dir, 'suite.yml')]);
  t.is(code, 2, stdout);
  const errorLines = stderr.split('\n').filter((l) => l.startsWith('error['));
  t.is(errorLines.length, 1, stderr);
  t.regex(errorLines[0]!, /^error\[remote_error\]: http:\/\/127\.0\.0\.1:\d+\/v1\/completions: the server returned no prompt logprobs/);
});
