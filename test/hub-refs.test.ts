// Model references, Hub environment, cache paths, remote-name checks, token
// redaction, and the expert-source plugins (local first, then the Hub).
import 'reflect-metadata';
import test from 'ava';
import { statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { container as rootContainer } from 'tsyringe';
import { MoeforgeError } from '../core/errors.js';
import { repoFolderName } from '../core/hub/cache-layout.js';
import { hubEnv } from '../core/hub/env.js';
import { redact, toHubError } from '../core/hub/errors.js';
import { isHubRepoId, isLocalRef, parseHubRef, tryParseHubRef } from '../core/hub/model-ref.js';
import { checkRemotePath } from '../core/hub/safe-path.js';
import { TOKENS, type ExpertSource } from '../core/plugins.js';
import { describeModel, fetchModel } from '../core/sources.js';
import { isNeededFile } from '../experts/hub/file-selection.js';
import { LocalFolderSource } from '../experts/sources/local.js';
import { registerExpertSources } from '../experts/sources/register.js';
import { golden, tempDir } from './helpers/paths.js';

test('Hub references: org/name, @branch, @tag, @commit; local paths are not Hub ids', (t) => {
  t.deepEqual(parseHubRef('mistralai/Mistral-7B-v0.1'), { repo: 'mistralai/Mistral-7B-v0.1', revision: 'main', explicitRevision: false });
  t.deepEqual(parseHubRef('org/name@dev'), { repo: 'org/name', revision: 'dev', explicitRevision: true });
  const sha = '0123456789abcdef0123456789abcdef01234567';
  t.is(parseHubRef(`org/name@${sha}`).revision, sha);
  t.is(parseHubRef('org/name@refs/pr/1').revision, 'refs/pr/1');
  t.is(parseHubRef('gpt2').repo, 'gpt2'); // canonical single-name repos
  for (const local of ['./models/x', '../x', '/abs/model', '~/models/x', 'C:\\models\\x', 'D:/x', 'models\\x', '.']) {
    t.true(isLocalRef(local), local);
    t.is(tryParseHubRef(local), undefined, local);
  }
  for (const bad of ['org/na--me', 'org/..', 'a/b/c', 'org/name.git', 'org/name@', 'org name', '-org/name']) {
    t.is(tryParseHubRef(bad), undefined, bad);
  }
  t.false(isHubRepoId('org/' + 'x'.repeat(97)));
  const e = t.throws(() => parseHubRef('a/b/c'), { instanceOf: MoeforgeError });
  t.is(e.toLine(), 'error[invalid_argument]: a/b/c: not a Hub model reference: expected org/name or org/name@revision (or an existing local folder)');
});

test.serial('an existing folder named like org/name is local (chdir: serial)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const cwd = process.cwd();
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  t.false(isLocalRef('acme/model'));
  await mkdir(path.join(dir, 'acme', 'model'), { recursive: true });
  t.true(isLocalRef('acme/model'));
  t.is(tryParseHubRef('acme/model'), undefined);
});

test('environment as the Python client: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, token sources', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const home = os.homedir();
  const d = hubEnv({});
  t.is(d.endpoint, 'https://huggingface.co');
  t.is(d.cacheDir, path.join(home, '.cache', 'huggingface', 'hub'));
  t.false(d.offline);
  t.is(hubEnv({ XDG_CACHE_HOME: '/x' }).cacheDir, '/x/huggingface/hub');
  t.is(hubEnv({ HF_HOME: '/h' }).cacheDir, '/h/hub');
  t.is(hubEnv({ HF_HOME: '/h', HF_HUB_CACHE: '/c' }).cacheDir, '/c');
  t.is(hubEnv({ HF_ENDPOINT: 'http://127.0.0.1:9/' }).endpoint, 'http://127.0.0.1:9');
  for (const v of ['1', 'true', 'ON', 'yes']) t.true(hubEnv({ HF_HUB_OFFLINE: v }).offline, v);
  for (const v of ['0', '', 'false']) t.false(hubEnv({ HF_HUB_OFFLINE: v }).offline, v);
  // HF_TOKEN first, else HF_HOME/token (trimmed), else none.
  t.is(hubEnv({ HF_HOME: dir }).token, undefined);
  await writeFile(path.join(dir, 'token'), 'hf_fromfile\n');
  t.is(hubEnv({ HF_HOME: dir }).token, 'hf_fromfile');
  t.is(hubEnv({ HF_HOME: dir, HF_TOKEN: 'hf_fromenv' }).token, 'hf_fromenv');
  t.is(hubEnv({ HF_HOME: dir, HF_TOKEN: '' }).token, 'hf_fromfile');
});

test('cache folder names follow the shared layout', (t) => {
  t.is(repoFolderName('meta-llama/Llama-3.1-8B'), 'models--meta-llama--Llama-3.1-8B');
  t.is(repoFolderName('gpt2'), 'models--gpt2');
});

test('remote names that would escape the snapshot are refused', (t) => {
  for (const ok of ['config.json', 'sub/dir/file.json', 'a..b.json']) t.notThrows(() => checkRemotePath(ok, 'o/r'));
  for (const bad of ['../evil', '/etc/x', 'a/../../b', 'a\\..\\b', 'C:\\x', 'c:x', '', 'a//b', './x', 'x\0y']) {
    const e = t.throws(() => checkRemotePath(bad, 'o/r'), { instanceOf: MoeforgeError }, JSON.stringify(bad));
    t.is(e?.code, 'unsafe_path');
  }
});

test('only the files a build needs are selected; pickles never', (t) => {
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'vocab.json', 'merges.txt', 'chat_template.jinja', 'chat_template.json']) {
    t.true(isNeededFile(f, false), f);
  }
  t.true(isNeededFile('model.safetensors', true));
  t.false(isNeededFile('model.safetensors', false));
  for (const f of ['pytorch_model.bin', 'model.pt', 'x.pth', 'x.pkl', 'README.md', 'onnx/config.json', 'original/consolidated.00.pth']) t.false(isNeededFile(f, true), f);
});

test('tokens are redacted from error text; status codes map to one clear code', (t) => {
  const token = 'hf_abcdefghijklmnop';
  t.is(redact(`Bearer ${token} failed`, token), 'Bearer hf_*** failed');
  t.is(redact('saw hf_ZZZZZZZZZZZZ here'), 'saw hf_*** here');
  const err = (status: number, message = 'x') => Object.assign(new Error(`${message}. URL: http://h/u`), { statusCode: status });
  t.is(toHubError(err(401), { path: 'o/r', hadToken: false }).code, 'hub_unauthorized');
  t.regex(toHubError(err(401), { path: 'o/r', hadToken: true }).message, /refused the token/);
  t.is(toHubError(err(403), { path: 'o/r', hadToken: true }).code, 'hub_unauthorized');
  t.is(toHubError(err(404, 'Repository not found'), { path: 'o/r', hadToken: true }).toLine(), 'error[hub_not_found]: o/r: not found on the Hub: Repository not found');
  t.is(toHubError(err(502), { path: 'o/r', hadToken: false }).code, 'hub_error');
  const leaky = toHubError(new Error(`oops ${token}`), { path: 'o/r', hadToken: true, token });
  t.false(leaky.toLine().includes(token));
});

test('local source: describe() reads config and headers of a folder; fetch() validates it', async (t) => {
  const src = new LocalFolderSource();
  const dir = golden('llama-tiny');
  t.true(src.canResolve(dir));
  t.false(src.canResolve('org/not-here'));
  const d = await src.describe(dir);
  t.is(d.config.model_type, 'llama');
  t.deepEqual(d.tensors.get('model.embed_tokens.weight'), { dtype: 'F32', shape: [128, 64] });
  t.is(d.weightBytes, statSync(path.join(dir, 'model.safetensors')).size);
  t.deepEqual(d.files, ['config.json', 'expected.safetensors', 'model.safetensors']);
  t.deepEqual(await src.fetch(dir), { ref: dir, folder: dir });
  const e = await t.throwsAsync(src.fetch('/definitely/not/here'), { instanceOf: MoeforgeError });
  t.is(e.code, 'missing_file');
});

test('registerExpertSources registers local first, then the Hub; core routes references by canResolve', async (t) => {
  const c = rootContainer.createChildContainer();
  registerExpertSources(c, { env: {}, endpoint: 'http://127.0.0.1:9', offline: true });
  const names = c.resolveAll<ExpertSource>(TOKENS.ExpertSource).map((s) => s.name);
  t.deepEqual(names, ['local', 'hub']);
  const local = await fetchModel(c, golden('llama-tiny'));
  t.is(local.folder, golden('llama-tiny'));
  t.is((await describeModel(c, golden('qwen2-tiny'))).config.model_type, 'qwen2');
  // A Hub id goes to the Hub source: offline here, with an empty cache.
  const e = await t.throwsAsync(fetchModel(c, 'org/not-cached'), { instanceOf: MoeforgeError });
  t.is(e.code, 'hub_offline');
});
