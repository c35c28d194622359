// An interrupted build leaves no output folder: the real CLI in a child process,
// stopped with SIGINT (the temporary sibling is removed, the process ends by the
// signal) and with SIGKILL (nothing can run: only the hidden `.<name>.tmp-*` sibling
// remains, never a folder a loader would pick up), while it is writing.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

async function startAndStop(dir: string, recipe: string, name: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: string | null; entries: string[]; sawTemp: boolean }> {
  const out = path.join(dir, name);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'cli', 'bin.ts'), 'build', recipe, '--out', out, '--quiet'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
  let sawTemp = false;
  // Wait for the temporary sibling (the writing phase, ~3 s here), then stop the build.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if ((await readdir(dir)).some((f) => f.startsWith(`.${name}.tmp-`))) {
      sawTemp = true;
      break;
    }
    await sleep(5);
  }
  // core/fs/atomic.ts installs its signal handlers just after mkdtemp resolves; a signal in
  // that instant would meet Node's default handler. Stop the build well inside the write.
  await sleep(300);
  child.kill(signal);
  const r = await exited;
  return { ...r, entries: (await readdir(dir)).filter((f) => f.includes(name)), sawTemp };
}

test('SIGINT and SIGKILL during the write leave no output folder', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = path.join(dir, 'base');
  await writeSyntheticModel(base, { family: 'llama', hiddenSize: 512, intermediateSize: 1536, numLayers: 4, vocabSize: 512, numHeads: 8, numKvHeads: 4, seed: 1 });
  const experts = [base];
  for (let i = 1; i < 4; i++) {
    const f = path.join(dir, `e${i}`);
    await mkdir(f);
    for (const file of ['config.json', 'model.safetensors']) await copyFile(path.join(base, file), path.join(f, file));
    experts.push(f);
  }
  // TIES over the shared weights and a dtype conversion keep the writer busy for a while.
  const recipe = path.join(dir, 'recipe.yml');
  await writeFile(
    recipe,
    `base_model: ${base}\ngate_mode: random\ndtype: bfloat16\nshared_weights: {method: ties, parameters: {density: 0.5}}\nexperts:\n${experts.map((e) => `  - source_model: ${e}`).join('\n')}\n`,
  );

  const int = await startAndStop(dir, recipe, 'moe-int', 'SIGINT');
  t.true(int.sawTemp, 'the build reached its writing phase');
  t.is(int.signal, 'SIGINT');
  t.deepEqual(int.entries, [], `no output folder and no temporary sibling after SIGINT (left: ${int.entries.join(', ')})`);

  const kill = await startAndStop(dir, recipe, 'moe-kill', 'SIGKILL');
  t.true(kill.sawTemp);
  t.is(kill.signal, 'SIGKILL');
  t.false(kill.entries.includes('moe-kill'), 'no output folder after SIGKILL');
  t.true(kill.entries.every((f) => f.startsWith('.moe-kill.tmp-')), `only the hidden temporary sibling remains: ${kill.entries.join(', ')}`);
});
