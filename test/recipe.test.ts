// Recipes: YAML loading quirks, the strict schema's one-line errors, mergekit's
// is_bad_config checks, and the 40 published mergekit-moe recipes of the corpus
// (read from ../shared, never copied): the valid ones parse with mergekit's meaning,
// the broken ones get one error naming the problem.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMoeforgeError, type MoeforgeError } from '../core/errors.js';
import { parseMoeRecipe, recipeToYamlObject, validateMoeRecipe } from '../core/recipe/moe-recipe.js';
import { loadYamlDocument } from '../core/recipe/yaml.js';
import { CORPUS_DIR } from './helpers/paths.js';

const corpus = (n: string) => readFile(path.join(CORPUS_DIR, 'moe', `${n}.yml`), 'utf8');

function errorOf(fn: () => unknown): MoeforgeError {
  try {
    fn();
  } catch (e) {
    if (isMoeforgeError(e)) return e;
    throw e;
  }
  throw new Error('expected a MoeforgeError');
}

const MIN = `base_model: ./base
experts:
  - source_model: ./a
    positive_prompts: ["code"]
  - source_model: ./b
    positive_prompts: ["math"]
`;

test('yaml: BOM and CRLF are read as plain text', (t) => {
  const v = loadYamlDocument('\ufeffa: 1\r\nb: [x, "y"]\r\n', 'r.yml');
  t.deepEqual(v, { a: 1, b: ['x', 'y'] });
});

test('yaml: duplicate keys are refused with the key and its line', (t) => {
  const e = errorOf(() => loadYamlDocument('a: 1\nb: 2\na: 3\n', 'dup.yml'));
  t.is(e.code, 'invalid_recipe');
  t.is(e.path, 'dup.yml');
  t.regex(e.message, /duplicate key 'a' at line 3/);
  t.false(e.toLine().includes('\n'));
});

test('yaml: several documents are refused, naming where the second starts', (t) => {
  const e = errorOf(() => loadYamlDocument('a: 1\n---\nb: 2\n', 'multi.yml'));
  t.regex(e.message, /2 YAML documents .*line 2/);
});

test('yaml: a syntax error names its line', (t) => {
  const e = errorOf(() => loadYamlDocument('a: [1, 2\nb: 3\n', 'bad.yml'));
  t.regex(e.message, /^invalid YAML at line \d+, column \d+/);
  t.false(e.toLine().includes('\n'));
});

test('recipe: mergekit defaults (gate_mode hidden, experts_per_token 2, dtype from the base)', (t) => {
  const r = parseMoeRecipe(MIN, 'r.yml');
  t.is(r.gateMode, 'hidden');
  t.is(r.expertsPerToken, 2);
  t.is(r.dtype, null);
  t.deepEqual(r.sharedWeights, { method: 'base' });
  t.is(r.experts[1]!.sourceModel, './b');
  t.deepEqual(r.experts[0]!.positivePrompts, ['code']);
});

test('recipe: dtype spellings mergekit accepts', (t) => {
  t.is(parseMoeRecipe(`${MIN}dtype: torch.bfloat16\n`, 'r.yml').dtype, 'bfloat16');
  t.is(parseMoeRecipe(`${MIN}dtype: fp16\n`, 'r.yml').dtype, 'float16');
  const e = errorOf(() => parseMoeRecipe(`${MIN}dtype: int8\n`, 'r.yml'));
  t.is(e.toLine(), 'error[invalid_recipe]: r.yml: dtype: expected float32, float16 or bfloat16, got "int8"');
});

test('recipe: wrong types name the YAML path and what was expected', (t) => {
  const e = errorOf(() => parseMoeRecipe(MIN.replace('source_model: ./b', 'source_model: [1, 2]'), 'r.yml'));
  t.is(e.toLine(), 'error[invalid_recipe]: r.yml: experts[1].source_model: expected a model reference (string), got a list');
  const e2 = errorOf(() => parseMoeRecipe(`${MIN}experts_per_token: 1.5\n`, 'r.yml'));
  t.is(e2.path, 'r.yml: experts_per_token');
  const e3 = errorOf(() => parseMoeRecipe('gate_mode: hidden\nexperts: []\n', 'r.yml'));
  t.regex(e3.toLine(), /base_model: required: expected a model reference/);
});

test('recipe: a key typo is refused with a suggestion', (t) => {
  const e = errorOf(() => parseMoeRecipe(`${MIN}gate_mdoe: random\n`, 'r.yml'));
  t.is(e.toLine(), 'error[invalid_recipe]: r.yml: gate_mdoe: unknown key (did you mean gate_mode?)');
  const e2 = errorOf(() => parseMoeRecipe(MIN.replace('positive_prompts: ["math"]', 'positive_promts: ["math"]'), 'r.yml'));
  t.is(e2.path, 'r.yml: experts[1].positive_promts');
  t.regex(e2.message, /did you mean positive_prompts/);
});

test('recipe: unknown gate modes list the known ones', (t) => {
  const e = errorOf(() => parseMoeRecipe(`${MIN}gate_mode: learned_magic\n`, 'r.yml'));
  t.is(e.path, 'r.yml: gate_mode');
  t.regex(e.message, /unknown gate mode "learned_magic"; expected one of hidden, hidden_avg, hidden_last, cheap_embed, random, uniform_random, router_input/);
});

test("recipe: mergekit's is_bad_config checks", (t) => {
  // experts_per_token > experts
  t.regex(errorOf(() => parseMoeRecipe(`${MIN}experts_per_token: 3\n`, 'r.yml')).message, /at least as many experts as experts_per_token/);
  // a prompt-based gate needs prompts for every expert; random does not
  const noPrompts = 'base_model: ./base\nexperts:\n  - source_model: ./a\n  - source_model: ./b\n';
  t.is(errorOf(() => parseMoeRecipe(noPrompts, 'r.yml')).path, 'r.yml: experts[0].positive_prompts');
  t.is(parseMoeRecipe(`${noPrompts}gate_mode: random\n`, 'r.yml').experts.length, 2);
  // identical prompts for all experts
  const same = MIN.replace('["math"]', '["code"]');
  t.regex(errorOf(() => parseMoeRecipe(same, 'r.yml')).message, /identical for all experts/);
  // all experts one model, unless forced
  const oneModel = MIN.replace('source_model: ./b', 'source_model: ./a');
  t.regex(errorOf(() => parseMoeRecipe(oneModel, 'r.yml')).message, /all experts are the same model/);
  t.is(parseMoeRecipe(oneModel, 'r.yml', { allowIdenticalExperts: true }).experts.length, 2);
  t.is(parseMoeRecipe(`${oneModel}allow_identical_experts: true\n`, 'r.yml').experts.length, 2);
  // mergekit's is_bad_config returns before this check for gate_mode random
  t.is(parseMoeRecipe(`${oneModel}gate_mode: random\n`, 'r.yml').experts.length, 2);
});

test('recipe: moeforge keys (shared_weights, seed, shard_size) and the resolved form', (t) => {
  const r = parseMoeRecipe(`${MIN}shared_weights: {method: ties, parameters: {density: 0.5}}\nseed: 7\nshard_size: 2GB\n`, 'r.yml');
  t.deepEqual(r.sharedWeights, { method: 'ties', parameters: { density: 0.5 } });
  t.is(r.seed, 7);
  t.is(r.shardSize, '2GB');
  t.is(parseMoeRecipe(`${MIN}shared_weights: average\n`, 'r.yml').sharedWeights.method, 'average');
  t.regex(errorOf(() => parseMoeRecipe(`${MIN}shared_weights: median\n`, 'r.yml')).message, /expected base, average or \{method/);
  // The resolved recipe round-trips through validation unchanged.
  const again = validateMoeRecipe(recipeToYamlObject(r), 'again.yml');
  t.deepEqual(again, r);
});

// ---------------------------------------------------------------------------
// The corpus: 40 recipes as their authors published them.

const VALID = ['004', '005', '006', '007', '008', '011', '012', '013', '014', '015', '016', '018', '019', '020', '021', '022', '023', '027', '029', '033', '035', '036', '037', '038', '040'];

const INVALID: [string, string, RegExp][] = [
  ['001', 'experts', /identical for all experts/], // 8 experts, [""] prompts
  ['002', 'experts', /identical for all experts/],
  ['003', 'yamlbase_model', /unknown key \(did you mean base_model\?\)/], // base_model missing
  ['009', 'experts', /identical for all experts/],
  ['010', 'experts', /identical for all experts/],
  ['017', 'shared_experts', /expected a list of experts .*got the number 2/],
  ['024', 'experts', /identical for all experts/], // [""] prompts, the thread's error
  ['025', 'experts[0].positive_prompts', /needs at least one positive prompt/], // prompts left empty (null)
  ['026', 'experts', /identical for all experts/], // "???" placeholders
  ['028', 'experts', /identical for all experts/],
  ['030', 'experts[0].positive_prompts', /expected a list of prompt strings, got "As a doctor of medicine,"/],
  ['031', 'tokenizer', /unknown key/], // key of a patched fork
  ['032', 'gateway_mode', /unknown key \(did you mean gate_mode\?\)/],
  ['034', 'experts', /all experts are the same model/],
  ['039', 'base_model', /unexpanded shell variable/],
];

test('corpus: every file is classified', (t) => {
  t.is(VALID.length + INVALID.length, 40);
});

for (const n of VALID) {
  test(`corpus moe/${n}.yml parses`, async (t) => {
    const r = parseMoeRecipe(await corpus(n), `${n}.yml`);
    t.true(r.experts.length >= 2);
    t.true(r.expertsPerToken <= r.experts.length);
  });
}

for (const [n, where, why] of INVALID) {
  test(`corpus moe/${n}.yml is refused at ${where}`, async (t) => {
    const e = errorOf(() => parseMoeRecipe(await0(n), `${n}.yml`));
    t.is(e.code, 'invalid_recipe');
    t.is(e.path, `${n}.yml: ${where}`);
    t.regex(e.message, why);
    t.false(e.toLine().includes('\n'));
  });
}

// Synchronous access for the error helper above (the corpus is small).
const texts = new Map<string, string>();
function await0(n: string): string {
  return texts.get(n)!;
}
test.before(async () => {
  for (const [n] of INVALID) texts.set(n, await corpus(n));
});

test('corpus: meanings as mergekit gives them', async (t) => {
  // 008: no gate_mode and no dtype → hidden, the base model's dtype
  const r008 = parseMoeRecipe(await corpus('008'), '008.yml');
  t.is(r008.gateMode, 'hidden');
  t.is(r008.dtype, null);
  t.is(r008.experts.length, 4);
  // 004: PyYAML reads the typo `science",` as the plain scalar `science"`
  const r004 = parseMoeRecipe(await corpus('004'), '004.yml');
  t.true(r004.experts[0]!.positivePrompts!.includes('science"'));
  t.is(r004.experts[0]!.negativePrompts!.length, 10);
  // 011: anchors and aliases swapped between positive and negative lists
  const r011 = parseMoeRecipe(await corpus('011'), '011.yml');
  t.deepEqual(r011.experts[0]!.negativePrompts, r011.experts[1]!.positivePrompts);
  t.deepEqual(r011.experts[1]!.negativePrompts, r011.experts[0]!.positivePrompts);
  // 016: `architecture: qwen`, a shared expert with residual_scale
  const r016 = parseMoeRecipe(await corpus('016'), '016.yml');
  t.is(r016.architecture, 'qwen');
  t.is(r016.sharedExperts![0]!.residualScale, 0.1);
  t.is(r016.dtype, 'float16');
  // 019: all six experts active
  t.is(parseMoeRecipe(await corpus('019'), '019.yml').expertsPerToken, 6);
  // 020: cheap_embed with a shared expert, CRLF file
  const r020 = parseMoeRecipe(await corpus('020'), '020.yml');
  t.is(r020.gateMode, 'cheap_embed');
  t.is(r020.sharedExperts!.length, 1);
  // 022: double-quoted \n escapes become newlines
  t.true(parseMoeRecipe(await corpus('022'), '022.yml').experts[0]!.positivePrompts![1]!.includes('\n\nUSER:'));
  // 033: a whole document indented by four spaces
  t.is(parseMoeRecipe(await corpus('033'), '033.yml').experts.length, 4);
  // 036: top-1 routing, shared experts before experts
  const r036 = parseMoeRecipe(await corpus('036'), '036.yml');
  t.is(r036.expertsPerToken, 1);
  t.is(r036.sharedExperts![0]!.residualScale, 0.1);
});
