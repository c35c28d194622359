// gate_mode learned, objective lm (Branch-Train-MiX style: only the routers trained, on
// the next-token loss of the whole MoE): on a tiny Mixtral of perturbed llama-tiny
// experts, the trained routers lower the MoE's loss on the experts' data relative to
// its initial (router_input) gates. Losses are measured independently with the engine
// (CausalLM) on the built checkpoints and match the numbers the build reports.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSyntheticModel } from '../benchmarks/synthetic/dense-model.js';
import { initBackend } from '../core/backend.js';
import { buildMoe, parseRecipeText } from '../core/build/build.js';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { buildTestContainer, goldenCopy, moeOutcome } from './helpers/build-fixtures.js';
import { tempDir } from './helpers/paths.js';

const DATA = [
  ['def alpha(beta): return beta', 'def gamma(x): return x.y', 'def item(node): return list'],
  ['12 + 35 = 47', '7 * 8 = 56', '100 / 4 = 25'],
  ['THE QUICK BROWN FOX', 'HELLO THERE FRIEND', 'WHAT A LOVELY DAY'],
  ['[{(<>)}] ~~ ## @@', '!!! ??? ;;; :::', '%% $$ ^^ && **'],
];

/** Mean next-token loss (nats per predicted token) of a model on every sample, tokenised as the gate trainer does. */
async function meanLoss(folder: string, samples: string[]): Promise<number> {
  const tok = await Tokenizer.fromFolder(folder);
  const model = await CausalLM.load(folder);
  try {
    let sum = 0;
    let n = 0;
    for (const s of samples) {
      const lp = await model.tokenLogprobs(tok.encode((tok.bosToken ?? '') + s, { addSpecialTokens: false }));
      sum -= lp.reduce((a, b) => a + b, 0);
      n += lp.length;
    }
    return sum / n;
  } finally {
    model.dispose();
  }
}

test('objective lm lowers the MoE\'s next-token loss on the experts\' data relative to its initial gates', async (t) => {
  await initBackend();
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const base = await goldenCopy(dir, 'llama-tiny', 'base');
  const experts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const folder = path.join(dir, `e${i}`);
    await writeSyntheticModel(folder, {
      family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: 128, numHeads: 4, numKvHeads: 2, seed: 1,
      perturb: { from: base, scale: 0.05, seed: 300 + i, roles: ['mlp_gate', 'mlp_up', 'mlp_down'] },
    });
    experts.push(folder);
  }
  const files: string[] = [];
  for (const [e, lines] of DATA.entries()) {
    files.push(path.join(dir, `data-${e}.jsonl`));
    await writeFile(files[e]!, lines.map((text) => JSON.stringify({ text })).join('\n'));
  }
  const container = buildTestContainer();
  const build = async (name: string, gate: string) => {
    const recipe = `base_model: ${base}\ngate_mode: learned\ngate: ${gate}\nexperts:\n${experts.map((e, i) => `  - source_model: ${e}\n    train_data: ${files[i]}`).join('\n')}\n`;
    const out = path.join(dir, name);
    const { result } = moeOutcome(await buildMoe(container, parseRecipeText(container, recipe, `${name}.yml`), out));
    return { out, report: result.gateReport };
  };
  const trained = await build('lm', '{objective: lm, epochs: 30, lr: 0.05, holdout: 0.25, patience: 10}');
  // One step at a negligible learning rate: the initial gates, written as they are.
  const initial = await build('lm-initial', '{objective: lm, epochs: 1, lr: 1.0e-9, holdout: 0.25}');
  t.log(trained.report.join('\n'));
  t.is(trained.report.length, 1);
  const m = /next-token loss on the experts' data (\d+\.\d+) → (\d+\.\d+) nats\/token/.exec(trained.report[0]!);
  t.truthy(m, trained.report[0]);
  const [reportedInitial, reportedFinal] = [Number(m![1]), Number(m![2])];

  const samples = DATA.flat();
  const lossTrained = await meanLoss(trained.out, samples);
  const lossInitial = await meanLoss(initial.out, samples);
  t.log(`engine: initial gates ${lossInitial.toFixed(4)}, lm-trained gates ${lossTrained.toFixed(4)} nats/token`);
  t.true(lossTrained < lossInitial - 0.01, `trained ${lossTrained} vs initial ${lossInitial}`);
  // The trainer's dense evaluation of the MoE agrees with the engine's sparse one.
  t.true(Math.abs(lossTrained - reportedFinal) < 2e-3, `engine ${lossTrained} vs reported ${reportedFinal}`);
  t.true(Math.abs(lossInitial - reportedInitial) < 2e-3, `engine ${lossInitial} vs reported ${reportedInitial}`);
});
