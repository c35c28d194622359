// Conformance of every registered gate strategy and output format (as the merge
// methods have theirs): gate shapes, determinism under a seed, unit rows for the
// prompt-based modes; output configs that normalise back to the model the format
// plans (config.json round trip) and whose tensor list validates.
import test from 'ava';
import { expectedTensors } from '../../core/architectures/index.js';
import { normalizeConfig } from '../../core/config/normalize.js';
import type { NormalizedConfig } from '../../core/config/types.js';
import { TOKENS, type GateContext, type GateStrategy, type OutputFormat, type PromptHiddenStates } from '../../core/plugins.js';
import { Rng } from '../../core/rng.js';
import { buildTestContainer } from '../helpers/build-fixtures.js';
import { golden } from '../helpers/paths.js';
import { readConfig } from '../helpers/tiny-models.js';

const container = buildTestContainer();
const strategies = container.resolveAll<GateStrategy>(TOKENS.GateStrategy);
const formats = container.resolveAll<OutputFormat>(TOKENS.OutputFormat);

const D = 16;
const LAYERS = 3;

/** Deterministic fake states: each prompt's vector depends on the prompt, the layer, site and reduce. */
function fakeStates(): PromptHiddenStates {
  const vec = (label: string) => new Rng(0).derive(label).fillNormal(new Float32Array(D));
  return {
    async layers(prompts, site, reduce) {
      return Array.from({ length: LAYERS }, (_, l) => {
        const out = new Float32Array(prompts.length * D);
        prompts.forEach((p, i) => out.set(vec(`${p}|${l}|${site}|${reduce}`), i * D));
        return out;
      });
    },
    async embeddingSums(prompts) {
      const out = new Float32Array(prompts.length * D);
      prompts.forEach((p, i) => out.set(vec(`embed|${p}`), i * D));
      return out;
    },
  };
}

async function baseConfig(): Promise<NormalizedConfig> {
  return normalizeConfig(await readConfig(golden('llama-tiny')), 'llama-tiny');
}

function ctx(config: NormalizedConfig, seed: number): GateContext {
  return {
    config: { ...config, hiddenSize: D },
    experts: [
      { name: 'a', positivePrompts: ['code', 'python'], negativePrompts: ['poem'], noiseScale: undefined, residualScale: undefined },
      { name: 'b', positivePrompts: ['math'], negativePrompts: [], noiseScale: undefined, residualScale: undefined },
      { name: 'c', positivePrompts: ['poem', 'story'], negativePrompts: [], noiseScale: undefined, residualScale: undefined },
    ],
    layers: [0, 1, 2],
    states: fakeStates(),
    rng: new Rng(seed),
    options: {},
  };
}

test('every gate mode mergekit knows, plus router_input, is registered', (t) => {
  t.deepEqual(strategies.map((s) => s.name).sort(), ['cheap_embed', 'hidden', 'hidden_avg', 'hidden_last', 'learned', 'random', 'router_input', 'uniform_random']);
});

// gate_mode learned trains on the MoE being built (model folders in GateContext.moe), which
// fake prompt states cannot stand in for: test/learned.test.ts covers it on real models.
const onFakeStates = strategies.filter((s) => s.name !== 'learned');
test.skip('gate strategy learned: skipped here, it needs real model folders (see test/learned.test.ts)', () => {});

for (const s of onFakeStates) {
  test(`gate strategy ${s.name}: shapes, determinism, finite values`, async (t) => {
    const config = await baseConfig();
    const a = await s.computeGates(ctx(config, 1));
    const b = await s.computeGates(ctx(config, 1));
    t.is(a.length, 3);
    for (const w of a) {
      t.is(w.length, 3 * D);
      t.true(w.every(Number.isFinite));
    }
    t.deepEqual(a, b, 'same inputs and seed, same gates');
    if (s.needsPrompts) {
      // mergekit normalises every row to unit L2 norm.
      for (const w of a) for (let e = 0; e < 3; e++) t.true(Math.abs(Math.hypot(...w.subarray(e * D, (e + 1) * D)) - 1) < 1e-6);
    } else {
      const c = await s.computeGates(ctx(config, 2));
      t.notDeepEqual(a, c, 'another seed, other gates');
    }
  });
}

test('hidden and hidden_last agree (mergekit: hidden takes the last token); hidden_avg and router_input read elsewhere', async (t) => {
  const config = await baseConfig();
  const by = Object.fromEntries(await Promise.all(onFakeStates.map(async (s) => [s.name, await s.computeGates(ctx(config, 1))] as const)));
  t.deepEqual(by['hidden'], by['hidden_last']);
  t.notDeepEqual(by['hidden'], by['hidden_avg']);
  t.notDeepEqual(by['hidden'], by['router_input']);
  // cheap_embed: one vector for every layer
  t.deepEqual(by['cheap_embed']![0], by['cheap_embed']![2]);
});

test('every output format is registered in mergekit order', (t) => {
  t.deepEqual(
    formats.map((f) => [f.name, f.displayName]),
    [
      ['mixtral', 'Mixtral'],
      ['qwen2_moe', 'Qwen MoE'],
      ['qwen3_moe', 'Qwen3 MoE'],
    ],
  );
});

for (const f of formats) {
  test(`output format ${f.name}: config.json normalises back to the planned model`, async (t) => {
    const base = normalizeConfig(
      f.family === 'qwen3_moe'
        ? { ...(await readConfig(golden('qwen2-tiny'))), model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], head_dim: 16 }
        : await readConfig(golden(f.family === 'qwen2_moe' ? 'qwen2-tiny' : 'llama-tiny')),
      'base',
    );
    t.is(f.unsupportedReason({ families: [base.modelType, base.modelType], base, numSharedExperts: f.family === 'qwen2_moe' ? 1 : 0, gateMode: 'hidden' }), undefined);
    const shape = { numExperts: 4, expertsPerToken: 2, sharedExpertIntermediateSize: f.family === 'qwen2_moe' ? 96 : null };
    const planned = f.outputConfig(base, shape);
    const json = f.synthesizeConfig(base, shape, 'bfloat16');
    const back = normalizeConfig(json, `${f.name} config.json`);
    t.is(back.modelType, f.family);
    t.is(back.torchDtype, 'bfloat16');
    for (const k of ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize', 'rmsNormEps', 'tieWordEmbeddings', 'attentionBias', 'qkNorm'] as const) {
      t.deepEqual(back[k], planned[k], k);
    }
    t.deepEqual(back.rope, planned.rope);
    t.deepEqual(back.moe, planned.moe);
    t.deepEqual(
      expectedTensors(back).map((x) => [x.name, x.shape]),
      expectedTensors(planned).map((x) => [x.name, x.shape]),
    );
    // Mixed architectures are refused by every format.
    t.regex(f.unsupportedReason({ families: ['llama', 'qwen2'], base, numSharedExperts: 0, gateMode: 'hidden' }) ?? '', /same architecture|shared expert/);
  });
}
