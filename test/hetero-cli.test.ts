// `moeforge build` / `inspect` with heterogeneous experts (issue 9), as a user runs them:
// the dry-run says it is heterogeneous, the build writes a trust_remote_code repo the
// engine runs, inspect describes it, and bad inputs are one line with exit code 2.
import test from 'ava';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { charTokenizerFiles } from '../benchmarks/synthetic/char-tokenizer.js';
import { Checkpoint } from '../core/checkpoint/checkpoint.js';
import { encodeFloat32 } from '../core/dtypes.js';
import { loadHeteroRepo } from '../core/hetero/load.js';
import { goldenCopy, narrowQwen2 } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
const m = { llama: '', qwen2: '', narrow: '' };

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-cli-'));
  m.llama = await goldenCopy(dir, 'llama-tiny', 'llama');
  m.qwen2 = await goldenCopy(dir, 'qwen2-tiny', 'qwen2');
  m.narrow = await narrowQwen2(dir);
});
test.after.always(() => cleanup());

async function recipe(name: string, experts: string[], gateMode = 'hidden'): Promise<string> {
  const file = path.join(dir, `${name}.yml`);
  const lines = [`base_model: ${m.llama}`, `gate_mode: ${gateMode}`, 'dtype: float32', 'experts_per_token: 2', 'experts:'];
  experts.forEach((e, i) => lines.push(`  - source_model: ${e}`, '    positive_prompts:', `      - "prompt number ${i} about topic ${'abc'[i % 3]}"`));
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

test('build --dry-run of experts of other families and sizes: a heterogeneous plan, nothing written', async (t) => {
  const r = await runCli(['build', await recipe('dry', [m.llama, m.qwen2, m.narrow]), '--dry-run']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^heterogeneous MoE \(3 experts kept whole, training-free; exported as a trust_remote_code repo, model_type moeforge_hetero\)/);
  t.regex(r.stdout, /experts\[1\]\.source_model \(.*qwen2\): model_type qwen2 vs llama\n/);
  t.regex(r.stdout, /experts\[2\]\.source_model \(.*narrow\): model_type qwen2 vs llama, hidden_size 32 vs 64/);
  t.regex(r.stdout, /router: centroid, top 2 per sequence/);
  t.regex(r.stdout, /\n {2}experts\.2 ← .*narrow: qwen2, hidden_size 32, 2 layers, intermediate_size 48, /);
  // Centroids are computed one expert at a time: the peak is the largest expert as float32 (llama-tiny: 108992 × 4 bytes).
  t.regex(r.stdout, /\npeak memory: ~425\.75 KiB \(the largest expert as float32/);
  const random = await runCli(['build', await recipe('dry-random', [m.llama, m.narrow], 'random'), '--dry-run']);
  t.regex(random.stdout, /router: perplexity, top 2 per sequence \(gate_mode random: perplexity routing \(MergeME\)/);
});

test('build writes the repo; the engine loads it and inspect describes it expert by expert', async (t) => {
  const out = path.join(dir, 'built');
  const r = await runCli(['build', await recipe('build', [m.llama, m.qwen2, m.narrow]), '--out', out, '--quiet']);
  t.is(r.code, 0, r.stderr);
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, any>;
  t.is(config.router_type, 'centroid');
  t.deepEqual(config.expert_names, ['llama', 'qwen2', 'narrow']);
  t.regex(await readFile(path.join(out, 'moeforge.yml'), 'utf8'), /gate_mode: hidden/);
  const moe = await loadHeteroRepo(out);
  t.teardown(() => moe.dispose());
  const ll = await moe.logLikelihood([1, 40, 41, 42], [43, 44]);
  t.true(Number.isFinite(ll.logprob) && ll.logprob < 0);
  t.deepEqual(moe.router.centroids!.map((c) => c.length), [64, 64, 32]);

  const j = await runCli(['inspect', out, '--json']);
  t.is(j.code, 0, j.stderr);
  const s = JSON.parse(j.stdout) as Record<string, any>;
  t.is(s.modelType, 'moeforge_hetero');
  t.deepEqual(s.router, { type: 'centroid', expertsPerSequence: 2, temperature: 1 });
  t.deepEqual(s.experts.map((e: any) => [e.prefix, e.summary.modelType, e.summary.hiddenSize, e.summary.layers]), [
    ['experts.0.', 'llama', 64, 3],
    ['experts.1.', 'qwen2', 64, 3],
    ['experts.2.', 'qwen2', 32, 2],
  ]);
  t.deepEqual(s.problems, []);
  t.true(s.experts.every((e: any) => e.summary.problems.length === 0));
  const text = await runCli(['inspect', out]);
  t.regex(text.stdout, /model_type: {3}moeforge_hetero \(heterogeneous MoE, trust_remote_code\)/);
  t.regex(text.stdout, /expert experts\.2 \(narrow\):\n {2}model_type: +qwen2/);
});

test('an expert with another tokenizer: one line naming both tokenizers and the first difference, exit 2', async (t) => {
  const other = path.join(dir, 'narrow-eos');
  await cp(m.narrow, other, { recursive: true });
  for (const [f, text] of Object.entries(charTokenizerFiles({ vocabSize: 128, eosId: 3 }))) await writeFile(path.join(other, f), text);
  const r = await runCli(['build', await recipe('tok', [m.llama, other]), '--out', path.join(dir, 'no-out')]);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.is(lines[0], `error[incompatible_models]: experts[1].source_model: heterogeneous experts must share one tokenizer: ${m.llama} and ${other} differ (token 2 is "</s>" vs "<|system|>")`);
});

test('an expert whose config is unknown: one line naming the recipe field, exit 2', async (t) => {
  const odd = path.join(dir, 'odd');
  await mkdir(odd);
  await cp(path.join(m.narrow, 'model.safetensors'), path.join(odd, 'model.safetensors'));
  const config = JSON.parse(await readFile(path.join(m.narrow, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(odd, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }));
  const r = await runCli(['build', await recipe('odd', [m.llama, odd]), '--dry-run']);
  t.is(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, /^error\[unknown_architecture\]: experts\[1\]\.source_model/);
  t.regex(lines[0]!, /gpt2/);
});

test('inspect flags a repo whose expert config disagrees with its tensors (exit 2, problems named by stored tensor)', async (t) => {
  const out = path.join(dir, 'broken');
  const r = await runCli(['build', await recipe('broken', [m.llama, m.narrow], 'random'), '--out', out, '--quiet']);
  t.is(r.code, 0, r.stderr);
  const file = path.join(out, 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as { expert_configs: Record<string, unknown>[] };
  config.expert_configs[1]!['intermediate_size'] = 40;
  await writeFile(file, JSON.stringify(config));
  const j = await runCli(['inspect', out, '--json']);
  t.is(j.code, 2);
  const s = JSON.parse(j.stdout) as { experts: { summary: { problems: { kind: string; tensor: string }[] } }[] };
  t.deepEqual(s.experts[0]!.summary.problems, []);
  const bad = s.experts[1]!.summary.problems;
  t.true(bad.length > 0 && bad.every((p) => p.kind === 'shape' && p.tensor.startsWith('experts.1.model.layers.')), JSON.stringify(bad));
});

test('dtype: --dtype bfloat16 converts every floating-point tensor (round-to-nearest-even), says so in the dry-run, and the engine runs it', async (t) => {
  const file = await recipe('bf16', [m.llama, m.narrow], 'random');
  const dry = await runCli(['build', file, '--dry-run', '--dtype', 'bfloat16']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /\nweights: .* converted to bfloat16 \(floating-point tensors of another dtype\), under experts\.\{i\}\./);
  const f32 = path.join(dir, 'dtype-f32');
  const bf16 = path.join(dir, 'dtype-bf16');
  t.is((await runCli(['build', file, '--out', f32, '--quiet'])).code, 0);
  const r = await runCli(['build', file, '--out', bf16, '--quiet', '--dtype', 'bfloat16']);
  t.is(r.code, 0, r.stderr);
  const config = JSON.parse(await readFile(path.join(bf16, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.is(config['torch_dtype'], 'bfloat16');
  const a = await Checkpoint.open(f32);
  const b = await Checkpoint.open(bf16);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  t.deepEqual(b.names(), a.names());
  t.true(b.names().every((n) => b.header(n).dtype === 'BF16'));
  // Each value is its float32 rounded to bfloat16.
  const name = 'experts.1.model.layers.0.mlp.down_proj.weight';
  const want = encodeFloat32('BF16', await a.readFloat32(name));
  t.deepEqual(await b.readRaw(name), want);
  const moe = await loadHeteroRepo(bf16);
  t.teardown(() => moe.dispose());
  const ll = await moe.logLikelihood([1, 40, 41, 42], [43, 44]);
  t.true(Number.isFinite(ll.logprob));
  const bad = await runCli(['build', file, '--dry-run', '--dtype', 'float8']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--dtype: unknown dtype "float8"; expected float32, float16 or bfloat16/);
});
