// The zoo's heterogeneous expert (benchmarks/zoo/hetero-expert.ts, issue 9): the
// committed benchmarks/zoo/models-hetero/caesar-qwen2 is a qwen2 checkpoint of
// another width than the llama zoo, shares the zoo tokenizer byte for byte, and
// has its skill when run by moeforge's engine on held-out questions.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CausalLM } from '../core/model/causal-lm.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { HETERO_DIR, HETERO_EXPERT_NAME, HETERO_TASK } from '../benchmarks/zoo/hetero-expert.js';
import { EOS_ID } from '../benchmarks/zoo/tokenizer.js';
import { REPO_ROOT } from './helpers/paths.js';

const ZOO = path.join(REPO_ROOT, 'benchmarks', 'zoo', 'models');
const EXPERT = path.join(HETERO_DIR, HETERO_EXPERT_NAME);

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;

test('the heterogeneous expert is a qwen2 checkpoint (q/k/v biases) of another width than the zoo base', async (t) => {
  const cfg = await readJson(path.join(EXPERT, 'config.json'));
  const base = await readJson(path.join(ZOO, 'base', 'config.json'));
  t.is(cfg.model_type, 'qwen2');
  t.deepEqual(cfg.architectures, ['Qwen2ForCausalLM']);
  t.is(base.model_type, 'llama');
  t.not(cfg.hidden_size, base.hidden_size);
  t.is(cfg.hidden_size, 96);
  t.is(cfg.vocab_size, base.vocab_size);
  // safetensors header: u64 little-endian length, then the JSON index of tensors
  const bytes = await readFile(path.join(EXPERT, 'model.safetensors'));
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, { shape: number[] }>;
  for (const p of ['q', 'k', 'v']) t.truthy(header[`model.layers.0.self_attn.${p}_proj.bias`], `${p}_proj.bias`);
  t.deepEqual(header['model.embed_tokens.weight']!.shape, [74, 96]);
  t.true(bytes.length <= 2 * 1024 * 1024, `${bytes.length} bytes`);
});

test('it shares the zoo tokenizer: identical tokenizer files', async (t) => {
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    t.is(await readFile(path.join(EXPERT, f), 'utf8'), await readFile(path.join(ZOO, 'base', f), 'utf8'), f);
  }
});

test('CausalLM.generate: >= 90% exact match on 30 held-out questions of its task', async (t) => {
  const model = await CausalLM.load(EXPERT);
  t.teardown(() => model.dispose());
  t.is(model.config.modelType, 'qwen2');
  const tokenizer = await Tokenizer.fromFolder(EXPERT);
  // The zoo's held-out set: excluded from training (trainSampler rejects these questions).
  const rows = (await readFile(path.join(ZOO, 'data', `${HETERO_TASK}.test.jsonl`), 'utf8')).trim().split('\n').slice(0, 30);
  let right = 0;
  const wrong: string[] = [];
  for (const row of rows) {
    const { question, answer } = JSON.parse(row) as { question: string; answer: string };
    const ids = await model.generate(tokenizer.encode(question, { addSpecialTokens: true }), { maxNewTokens: answer.length + 1, temperature: 0, stopTokens: [EOS_ID] });
    const got = tokenizer.decode(ids.filter((i) => i !== EOS_ID));
    if (got === answer) right++;
    else wrong.push(`${question}${got} (want ${answer})`);
  }
  t.true(right / rows.length >= 0.9, `${right}/${rows.length}; wrong: ${wrong.slice(0, 5).join('; ')}`);
});
