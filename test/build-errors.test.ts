// Bad input to `moeforge build`: one clear line on stderr, exit code 2, and no output
// folder (nor a leftover temporary sibling). Run through the CLI's main() in-process
// (serially, stderr captured), and once as a real child process.
import test from 'ava';
import { readdir, rm, writeFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import { main } from '../cli/main.js';
import { goldenCopy } from './helpers/build-fixtures.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';
import { readConfig, readTensors, writeModel } from './helpers/tiny-models.js';

async function cli(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  return cliRaw(['build', ...args]);
}

async function cliRaw(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  let stderr = '';
  let stdout = '';
  const errWrite = process.stderr.write.bind(process.stderr);
  const outWrite = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  try {
    const code = await main(['node', 'moeforge', ...args]);
    return { code, stderr, stdout };
  } finally {
    process.stderr.write = errWrite;
    process.stdout.write = outWrite;
  }
}

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
let base = '';
let other = '';

test.before(async () => {
  ({ dir, cleanup } = await tempDir());
  base = await goldenCopy(dir, 'llama-tiny', 'base');
  other = await goldenCopy(dir, 'llama-tiny', 'other');
});
test.after.always(async () => cleanup());

function recipe(expert: string, extra = ''): string {
  return `base_model: ${base}\ngate_mode: random\nexperts:\n  - source_model: ${base}\n  - source_model: ${expert}\n${extra}`;
}

async function expectFailure(
  t: import('ava').ExecutionContext,
  name: string,
  text: string,
  line: RegExp,
  extraArgs: string[] = [],
): Promise<void> {
  const file = path.join(dir, `${name}.yml`);
  await writeFile(file, text);
  const out = path.join(dir, `out-${name}`);
  const r = await cli([file, '--out', out, '--quiet', ...extraArgs]);
  t.is(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, line);
  const left = (await readdir(dir)).filter((f) => f.startsWith(`out-${name}`) || f.startsWith(`.out-${name}`));
  t.deepEqual(left, [], 'no output folder and no temporary sibling');
}

// Issue 9: experts of another architecture make a heterogeneous MoE instead of a refusal
// (its errors: test/hetero-cli.test.ts).
test.serial('mixed architectures', async (t) => {
  const qwen = await goldenCopy(dir, 'qwen2-tiny', 'qwen');
  const file = path.join(dir, 'mixed.yml');
  await writeFile(file, recipe(qwen));
  const r = await cli([file, '--dry-run']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^heterogeneous MoE .*\n.*\n {2}experts\[1\]\.source_model \(.*qwen\): model_type qwen2 vs llama\n/);
});

test.serial('a missing tensor', async (t) => {
  const folder = path.join(dir, 'missing');
  await goldenCopy(dir, 'llama-tiny', 'missing');
  const tensors = await readTensors(folder);
  tensors.delete('model.layers.1.mlp.up_proj.weight');
  await writeModel(folder, await readConfig(folder), tensors);
  await expectFailure(t, 'missing', recipe(folder), /^error\[missing_tensor\]: experts\[1\]\.source_model: model\.layers\.1\.mlp\.up_proj\.weight: .* has no tensor model\.layers\.1\.mlp\.up_proj\.weight/);
});

test.serial('a shape mismatch', async (t) => {
  const folder = path.join(dir, 'shape');
  await goldenCopy(dir, 'llama-tiny', 'shape');
  const tensors = await readTensors(folder);
  const down = tensors.get('model.layers.0.mlp.down_proj.weight')!;
  tensors.set('model.layers.0.mlp.down_proj.weight', { shape: [96, 64], data: down.data });
  await writeModel(folder, await readConfig(folder), tensors);
  await expectFailure(t, 'shape', recipe(folder), /^error\[shape_mismatch\]: experts\[1\]\.source_model: model\.layers\.0\.mlp\.down_proj\.weight: .*has shape \[96, 64\], expected \[64, 96\]/);
});

test.serial('an unknown gate mode', async (t) => {
  await expectFailure(t, 'gate', recipe(other).replace('gate_mode: random', 'gate_mode: hiden'), /^error\[invalid_recipe\]: .*gate\.yml: gate_mode: unknown gate mode "hiden"; expected one of hidden, /);
});

test.serial('a recipe key typo', async (t) => {
  await expectFailure(t, 'typo', recipe(other, 'experts_per_tokens: 2\n'), /^error\[invalid_recipe\]: .*typo\.yml: experts_per_tokens: unknown key \(did you mean experts_per_token\?\)$/);
});

test.serial('unreadable files: no recipe, a truncated expert checkpoint', async (t) => {
  const out = path.join(dir, 'out-norecipe');
  const r = await cli([path.join(dir, 'nope.yml'), '--out', out]);
  t.is(r.code, 2);
  t.regex(r.stderr, /^error\[missing_file\]: .*nope\.yml: cannot read the recipe: no such file or directory\n$/);
  const folder = await goldenCopy(dir, 'llama-tiny', 'truncated');
  await truncate(path.join(folder, 'model.safetensors'), 1000);
  await expectFailure(t, 'truncated', recipe(folder), /^error\[corrupt_safetensors\]: experts\[1\]\.source_model/);
});

test.serial('a failure after planning (no tokenizer for a hidden gate) leaves no output folder', async (t) => {
  const folder = await goldenCopy(dir, 'llama-tiny', 'notok');
  await rm(path.join(folder, 'tokenizer.json'));
  const text = `base_model: ${folder}\nexperts:\n  - source_model: ${folder}\n    positive_prompts: ["a"]\n  - source_model: ${other}\n    positive_prompts: ["b"]\n`;
  await expectFailure(t, 'notok', text, /^error\[missing_file\]: .*needs the base model's tokenizer/);
});

test.serial('an existing output folder is not replaced without --overwrite', async (t) => {
  const file = path.join(dir, 'ok.yml');
  await writeFile(file, recipe(other));
  const out = path.join(dir, 'existing');
  t.is((await cli([file, '--out', out, '--quiet'])).code, 0);
  // `moeforge inspect` validates the output (it exits 2 on any validation error).
  const inspect = await cliRaw(['inspect', out]);
  t.is(inspect.code, 0, inspect.stdout + inspect.stderr);
  t.regex(inspect.stdout, /MixtralForCausalLM/);
  // --dry-run prints the plan and writes nothing.
  const dry = await cli([file, '--out', path.join(dir, 'dry'), '--dry-run']);
  t.is(dry.code, 0);
  t.regex(dry.stdout, /^output format {5}mixtral \(MixtralForCausalLM\)\n/);
  t.regex(dry.stdout, /gate {14}random: no prompts \(seeded\)/);
  t.false((await readdir(dir)).some((f) => f.includes('dry')));
  const again = await cli([file, '--out', out, '--quiet']);
  t.is(again.code, 2);
  t.regex(again.stderr, /output folder already exists \(pass --overwrite to replace it\)/);
  t.is((await cli([file, '--out', out, '--quiet', '--overwrite', '--seed', '5'])).code, 0);
});

test.serial('the real binary: exit code 2 and one line', async (t) => {
  const file = path.join(dir, 'bin.yml');
  await writeFile(file, recipe(other, 'gateway_mode: hidden\n'));
  const r = await runCli(['build', file, '--out', path.join(dir, 'out-bin')]);
  t.is(r.code, 2);
  t.is(r.stderr.trimEnd().split('\n').length, 1);
  t.regex(r.stderr, /gateway_mode: unknown key \(did you mean gate_mode\?\)/);
  t.false((await readdir(dir)).some((f) => f.includes('out-bin')));
});
