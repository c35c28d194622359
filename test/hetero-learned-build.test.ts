// `moeforge build` with gate_mode learned and experts of different architectures (issue 9
// §2-3) on the committed zoo (atbash: llama d64; caesar-qwen2: qwen2 d96): the dry-run
// says which form, the build trains and exports, the exported repo routes each task's
// questions to its expert, and the trainer's own forward (routers/learned/hetero) agrees
// with the engine on the exported projected form.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HETERO_DIR, HETERO_EXPERT_NAME } from '../benchmarks/zoo/hetero-expert.js';
import { zooTasks, type TaskName } from '../benchmarks/zoo/tasks.js';
import { loadHeteroRepo } from '../core/hetero/load.js';
import { Rng } from '../core/rng.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { projectedForward } from '../routers/learned/hetero/index.js';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { runCli } from './helpers/cli.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const ZOO = path.join(REPO_ROOT, 'benchmarks', 'zoo', 'models');
const QWEN = path.join(HETERO_DIR, HETERO_EXPERT_NAME);
let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
const data: Record<string, string> = {};
const questions: Record<string, string[]> = {};

/** Question + answer texts of a zoo task, and held-out questions (another generator stream). */
function samples(task: TaskName, n: number, stream: string): { text: string; question: string }[] {
  const rng = new Rng(11).derive(stream);
  const t = zooTasks(1)[task];
  return Array.from({ length: n }, () => {
    const s = t.sample(rng);
    return { text: s.question + s.answer, question: s.question };
  });
}

test.before(async () => {
  ({ dir, cleanup } = await tempDir('moeforge-hetero-learned-'));
  for (const task of ['atbash', 'caesar'] as const) {
    data[task] = path.join(dir, `${task}.txt`);
    await writeFile(data[task], `${samples(task, 24, `train/${task}`).map((s) => s.text).join('\n')}\n`);
    questions[task] = samples(task, 12, `test/${task}`).map((s) => s.question);
  }
});
test.after.always(() => cleanup());

function recipe(gate: string): string {
  return [
    `base_model: ${path.join(ZOO, 'base')}`,
    'gate_mode: learned',
    'experts_per_token: 1',
    `gate: ${gate}`,
    'experts:',
    `  - source_model: ${path.join(ZOO, 'atbash')}`,
    `    train_data: ${data.atbash}`,
    `  - source_model: ${QWEN}`,
    `    train_data: ${data.caesar}`,
    '',
  ].join('\n');
}

async function routedShare(folder: string): Promise<{ atbash: number; caesar: number }> {
  const moe = await loadHeteroRepo(folder);
  const tok = await Tokenizer.fromFolder(folder);
  try {
    const share = async (task: 'atbash' | 'caesar', e: number) => {
      let hits = 0;
      for (const q of questions[task]!) if ((await moe.route(tok.encode(q, { addSpecialTokens: true })))[e] === 1) hits++;
      return hits / questions[task]!.length;
    };
    return { atbash: await share('atbash', 0), caesar: await share('caesar', 1) };
  } finally {
    moe.dispose();
  }
}

test('gate_mode learned (form whole): dry-run names the trained router; the build reports held-out accuracy and routes held-out questions to their expert', async (t) => {
  const file = path.join(dir, 'whole.yml');
  await writeFile(file, recipe('{epochs: 200}'));
  const dry = await runCli(['build', file, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /heterogeneous MoE \(2 experts kept whole, a trained router;/);
  t.regex(dry.stdout, /router: learned, top 1 per sequence \(gate_mode learned: a router on the experts' mean final hidden states/);
  const out = path.join(dir, 'whole');
  const r = await runCli(['build', file, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^router sequence router: held-out accuracy [\d.]+ /m);
  t.regex(r.stdout, /built moeforge_hetero \(2 experts kept whole, router learned, top 1 per sequence\)/);
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.is(config['router_type'], 'learned');
  t.regex(await readFile(path.join(out, 'README.md'), 'utf8'), /## Training\n\n- sequence router: held-out accuracy/);
  const share = await routedShare(out);
  t.true(share.atbash >= 0.9 && share.caesar >= 0.9, JSON.stringify(share));
});

test('gate_mode learned, form projected: MergeME trained form; the engine on the export equals the trainer\'s forward; routing holds', async (t) => {
  const file = path.join(dir, 'projected.yml');
  await writeFile(file, recipe('{form: projected, proj_epochs: 40, epochs: 200}'));
  const dry = await runCli(['build', file, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /MergeME's trained form: shared embedding and head of width 96, per-expert projections/);
  t.regex(dry.stdout, /router: embedding, top 1 per sequence/);
  const out = path.join(dir, 'projected');
  const r = await runCli(['build', file, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /built moeforge_hetero \(2 experts in the projected form, router embedding, top 1 per sequence\)/);
  // Per expert: the least-squares start is the expert itself here (74 tokens < D = 96), and distillation keeps it.
  const lines = [...r.stdout.matchAll(/NLL own model ([\d.]+), projected init ([\d.]+), trained ([\d.]+); KL to own model: init ([\d.]+), trained ([\d.]+)/g)];
  t.is(lines.length, 2, r.stdout);
  for (const m of lines) t.true(Math.abs(Number(m[3]) - Number(m[1])) < 0.01 && Number(m[5]) < 0.01, m[0]);

  // The trainer's differentiable forward on the exported weights = the engine's expert logits.
  const reader = await SafetensorsReader.open(path.join(out, 'model.safetensors'));
  const w = {
    sharedHiddenSize: 96,
    embed: await reader.readFloat32('shared.embed_tokens.weight'),
    lmHead: await reader.readFloat32('shared.lm_head.weight'),
    projIn: [await reader.readFloat32('proj_in.0.weight'), await reader.readFloat32('proj_in.1.weight')],
    projOut: [await reader.readFloat32('proj_out.0.weight'), await reader.readFloat32('proj_out.1.weight')],
  };
  await reader.close();
  const tok = await Tokenizer.fromFolder(out);
  const ids = tok.encode(questions.caesar![0]!, { addSpecialTokens: true });
  const moe = await loadHeteroRepo(out);
  t.teardown(() => moe.dispose());
  for (const [e, folder] of [path.join(ZOO, 'atbash'), QWEN].entries()) {
    const trainer = await projectedForward(folder, w, e, [ids]);
    const engine = (await moe.experts[e]!.forward([ids])).logits;
    const worst = engine.reduce((m, x, i) => Math.max(m, Math.abs(x - trainer[i]!)), 0);
    t.true(worst < 1e-4, `expert ${e}: max |Δ| ${worst}`);
  }
  const share = await routedShare(out);
  t.true(share.atbash >= 0.9 && share.caesar >= 0.9, JSON.stringify(share));
});

test('gate_mode learned with a heterogeneous recipe: a bad gate option or form is one line naming gate.<key>', async (t) => {
  const file = path.join(dir, 'bad.yml');
  await writeFile(file, recipe('{form: sideways}'));
  const r1 = await runCli(['build', file, '--dry-run']);
  t.is(r1.code, 2);
  t.is(r1.stderr.trim().split('\n').length, 1);
  t.regex(r1.stderr, /gate\.form: expected whole .* or projected .*, got "sideways"/);
  await writeFile(file, recipe('{form: projected, proj_epoch: 3}'));
  const r2 = await runCli(['build', file, '--dry-run']);
  t.is(r2.code, 2);
  t.regex(r2.stderr, /gate\.proj_epoch: unknown key; expected one of form, epochs/);
  const out = path.join(dir, 'never');
  const r3 = await runCli(['build', file, '--out', out]);
  t.is(r3.code, 2);
  t.false(await readFile(path.join(out, 'config.json')).then(() => true, () => false));
});
