// The `pull` and `push` commands as a user runs them, against the Hub emulator
// through HF_ENDPOINT: one clear line and exit code 2 for each Hub failure, and the
// token never appears in any output.
import test from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli, runCliProcess, type CliResult } from './helpers/cli.js';
import { golden, tempDir } from './helpers/paths.js';
import { PRIVATE_REPO, TINY_REPO, guardNetwork, startHubWithTinyModel, type TinyHub } from './hub/fixtures.js';

// In-process runs use the global fetch: it refuses and records anything but 127.0.0.1.
const net = guardNetwork();

let hub: TinyHub;
let home: string;
let removeHome: () => Promise<void>;

test.before(async () => {
  hub = await startHubWithTinyModel();
  ({ dir: home, cleanup: removeHome } = await tempDir('moeforge-hf-home-'));
});
test.after.always(async () => {
  await hub?.emu.close();
  await removeHome?.();
});
test.after.always('every request reached the emulator on 127.0.0.1 only', (t) => {
  t.true(net.urls.length > 0);
  for (const url of net.urls) t.is(new URL(url).hostname, '127.0.0.1', url);
  for (const l of hub.emu.log) t.true(l.host.startsWith('127.0.0.1:'), l.host);
});

/** A clean Hub environment: only what the test sets. */
function env(extra: Record<string, string> = {}, cacheName = 'hub'): NodeJS.ProcessEnv {
  return {
    HF_ENDPOINT: hub.emu.url,
    HF_HOME: path.join(home, cacheName),
    HF_TOKEN: '',
    HF_HUB_CACHE: '',
    HF_HUB_OFFLINE: '',
    HF_TOKEN_PATH: '',
    ...extra,
  };
}

function oneErrorLine(t: import('ava').ExecutionContext, r: CliResult, code: string): string {
  t.is(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.true(lines[0]!.startsWith(`error[${code}]: `), lines[0]);
  t.is(r.stdout, '');
  return lines[0]!;
}

test.serial('pull prints the snapshot folder; a second run is served from the cache', async (t) => {
  const e = env({}, 'pull-ok');
  const first = await runCli(['pull', `${TINY_REPO}@v1`], { env: e });
  t.is(first.code, 0, first.stderr);
  const folder = first.stdout.trim();
  t.is(folder, path.join(home, 'pull-ok', 'hub', 'models--tiny-org--llama-tiny', 'snapshots', hub.commits.v1));
  t.deepEqual(JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')), JSON.parse(hub.files.get('config.json')!.toString()));
  t.regex(first.stderr, /config\.json \(\d+(\.\d)? (B|KiB)\)/);
  const second = await runCli(['pull', `${TINY_REPO}@v1`], { env: { ...e, HF_HUB_OFFLINE: '1' } });
  t.is(second.code, 0, second.stderr);
  t.is(second.stdout.trim(), folder);
  t.regex(second.stderr, /served from the cache/);
});

test.serial('unknown repo, missing revision (hub_not_found); HF_HUB_OFFLINE names what is missing', async (t) => {
  const unknown = await runCli(['pull', 'tiny-org/nope'], { env: env({ HF_TOKEN: hub.alice.token }, 'nf') });
  const line = oneErrorLine(t, unknown, 'hub_not_found');
  t.regex(line, /^error\[hub_not_found\]: tiny-org\/nope@main: not found on the Hub: Repository not found$/);
  // Anonymous callers get 401 for unknown repos too (the Hub does not reveal private ones).
  const anonymous = await runCli(['pull', 'tiny-org/nope'], { env: env({}, 'nf') });
  t.regex(oneErrorLine(t, anonymous, 'hub_unauthorized'), /private or gated, or does not exist/);
  const rev = await runCli(['pull', `${TINY_REPO}@no-such-branch`], { env: env({}, 'nf') });
  t.regex(oneErrorLine(t, rev, 'hub_not_found'), /tiny-org\/llama-tiny@no-such-branch: not found on the Hub: Invalid rev id: no-such-branch$/);
  const offline = await runCli(['pull', TINY_REPO], { env: env({ HF_HUB_OFFLINE: '1' }, 'nf') });
  t.regex(oneErrorLine(t, offline, 'hub_offline'), /HF_HUB_OFFLINE is set and revision main of tiny-org\/llama-tiny is not in the cache$/);
});

test.serial('private repo: no token or a wrong token is hub_unauthorized; the token file works; no token is ever printed', async (t) => {
  const anonymous = await runCli(['pull', PRIVATE_REPO], { env: env({}, 'priv') });
  t.regex(oneErrorLine(t, anonymous, 'hub_unauthorized'), /the Hub requires a token: the repository is private or gated, or does not exist/);
  const wrong = 'hf_thisTokenIsWrongAndSecret123';
  const bad = await runCli(['pull', PRIVATE_REPO], { env: env({ HF_TOKEN: wrong }, 'priv') });
  t.regex(oneErrorLine(t, bad, 'hub_unauthorized'), /the Hub refused the token \(401\)/);
  t.false((bad.stdout + bad.stderr).includes(wrong));
  t.false((bad.stdout + bad.stderr).includes('ThisTokenIsWrong'));
  const malformed = await runCli(['pull', PRIVATE_REPO], { env: env({ HF_TOKEN: 'not-a-token-secret' }, 'priv') });
  t.regex(oneErrorLine(t, malformed, 'hub_unauthorized'), /does not start with hf_/);
  t.false(malformed.stderr.includes('not-a-token-secret'));
  // HF_HOME/token, as `huggingface-cli login` writes it.
  await mkdir(path.join(home, 'priv'), { recursive: true });
  await writeFile(path.join(home, 'priv', 'token'), `${hub.alice.token}\n`);
  const ok = await runCli(['pull', PRIVATE_REPO, '--include-weights'], { env: env({}, 'priv') });
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(await readFile(path.join(ok.stdout.trim(), 'model.safetensors')), await readFile(path.join(golden('llama-tiny'), 'model.safetensors')));
  for (const r of [anonymous, bad, malformed, ok]) t.false((r.stdout + r.stderr).includes(hub.alice.token));
});

test.serial('push: creates the repo, prints its URL; without a token one hub_unauthorized line', async (t) => {
  const noToken = await runCli(['push', golden('llama-tiny'), 'alice/cli-push'], { env: env({}, 'push') });
  t.regex(oneErrorLine(t, noToken, 'hub_unauthorized'), /pushing needs a token/);
  const ok = await runCli(['push', golden('llama-tiny'), 'alice/cli-push', '--private', '--message', 'from the CLI'], { env: env({ HF_TOKEN: hub.alice.token }, 'push') });
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim(), `${hub.emu.url}/alice/cli-push`);
  t.regex(ok.stderr, /uploaded model\.safetensors/);
  t.regex(ok.stderr, /^created alice\/cli-push \(main\), commit [0-9a-f]{40}$/m);
  t.true(hub.emu.isPrivate('alice/cli-push'));
  t.deepEqual(hub.emu.files('alice/cli-push').get('model.safetensors'), await readFile(path.join(golden('llama-tiny'), 'model.safetensors')));
  t.false((ok.stdout + ok.stderr).includes(hub.alice.token));
});

test.serial('the real binary in a child process: exit code 2 and one line, the wrong token nowhere', async (t) => {
  const wrong = 'hf_childProcessWrongToken42';
  const r = await runCliProcess(['pull', PRIVATE_REPO], { env: env({ HF_TOKEN: wrong }, 'child') });
  t.regex(oneErrorLine(t, r, 'hub_unauthorized'), /^error\[hub_unauthorized\]: tiny-org\/secret@main: the Hub refused the token \(401\)/);
  t.false((r.stdout + r.stderr).includes(wrong));
});
