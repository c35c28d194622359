// mergekit parameter forms resolved for one tensor (mergekit/config.py evaluate_setting,
// ConfigReader.parameter; plan.py for t): hand-computed values.
import test from 'ava';
import { MoeforgeError } from '../core/errors.js';
import { evaluateSetting, layerT, resolveParameter, resolveParameters, type TensorContext } from '../core/recipe/parameters.js';

const ctx = (tensorName: string, t: number, role: TensorContext['role'] = undefined): TensorContext => ({ tensorName, role, t });

test('t: layer / (numLayers − 1); one layer → 1; before the layers 0, after them 1', (t) => {
  t.is(layerT(0, 32, false), 0);
  t.is(layerT(31, 32, false), 1);
  t.is(layerT(8, 33, false), 0.25);
  t.is(layerT(0, 1, false), 1);
  t.is(layerT(undefined, 32, false), 0);
  t.is(layerT(undefined, 32, true), 1);
});

test('scalars pass through; numeric lists interpolate at t (gradients)', (t) => {
  t.is(evaluateSetting(0.3, ctx('x', 0.5)), 0.3);
  t.is(evaluateSetting(true, ctx('x', 0.5)), true);
  t.is(evaluateSetting([0, 0.5, 1], ctx('x', 0.25)), 0.25); // scaled 0.5 between 0 and 0.5
  t.is(evaluateSetting([0, 0.5, 1], ctx('x', 1)), 1);
  // LazyMergekit's [0, 0.5, 0.3, 0.7, 1] at layer 10 of 32: t = 10/31, scaled = 1.290…, between 0.5 and 0.3.
  const v = evaluateSetting([0, 0.5, 0.3, 0.7, 1], ctx('x', 10 / 31)) as number;
  const s = (10 / 31) * 4;
  t.true(Math.abs(v - ((1 - (s - 1)) * 0.5 + (s - 1) * 0.3)) < 1e-12);
  t.is(evaluateSetting(['a', 'b', 'c'], ctx('x', 0.9)), 'b'); // ⌊0.9·2⌋ = 1
});

test('filter lists: first match by name substring, "*" or no filter; role group for any naming', (t) => {
  const setting = [
    { filter: 'self_attn', value: [0, 1] },
    { filter: 'mlp', value: [1, 0] },
    { value: 0.5 },
  ];
  t.is(evaluateSetting(setting, ctx('model.layers.3.self_attn.q_proj.weight', 0.25)), 0.25);
  t.is(evaluateSetting(setting, ctx('model.layers.3.mlp.up_proj.weight', 0.25)), 0.75);
  t.is(evaluateSetting(setting, ctx('model.norm.weight', 1)), 0.5);
  // A name without the substring still matches by its role's mergekit group.
  t.is(evaluateSetting(setting, ctx('blk.3.attn_q.weight', 0.25, 'attn_q')), 0.25);
  t.is(evaluateSetting([{ filter: 'lm_head', value: 0 }], ctx('model.embed_tokens.weight', 0)), undefined);
  t.is(evaluateSetting([{ filter: '*', value: 2 }], ctx('anything', 0)), 2);
});

test('per-model lookup: model, then slice, then global; a non-matching filter falls through', (t) => {
  const c = ctx('model.layers.0.mlp.down_proj.weight', 0);
  t.is(resolveParameter('weight', [{ weight: 0.7 }, null, { weight: 0.1 }], c), 0.7);
  t.is(resolveParameter('weight', [{ density: 0.5 }, { weight: 0.3 }, { weight: 0.1 }], c), 0.3);
  t.is(resolveParameter('weight', [{ weight: [{ filter: 'self_attn', value: 9 }] }, null, { weight: 0.1 }], c), 0.1);
  t.is(resolveParameter('weight', [null, undefined], c), undefined);
});

test('defaults fill in; a missing required parameter names the model and tensor', (t) => {
  const c = ctx('model.layers.0.mlp.up_proj.weight', 0);
  t.deepEqual(resolveParameters([{ name: 'weight', required: true }, { name: 'density', default: 1 }], [{ weight: 2 }], c, 'models[0].parameters.'), {
    weight: 2,
    density: 1,
  });
  const e = t.throws(() => resolveParameters([{ name: 'weight', required: true }], [{}], c, 'models[1].parameters.'));
  t.true(e instanceof MoeforgeError);
  t.is((e as MoeforgeError).code, 'invalid_parameter');
  t.is((e as MoeforgeError).path, 'models[1].parameters.weight');
  t.regex(e!.message, /model\.layers\.0\.mlp\.up_proj\.weight/);
});
