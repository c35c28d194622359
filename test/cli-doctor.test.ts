import test from 'ava';
import { runCli } from './helpers/cli.js';

test('doctor reports Node and the wasm backend, and never prints the token', async (t) => {
  const token = 'hf_doctorSecretToken123456';
  const r = await runCli(['doctor', '--json'], { env: { HF_TOKEN: token } });
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  t.is(report.node, process.version);
  t.is(report.backend, 'wasm');
  t.regex(String(report.backendDetail), /wasm/);
  t.is(report.hfTokenSet, true);
  t.false(r.stdout.includes(token));
});

test('an unknown backend is a usage error with exit code 2', async (t) => {
  const r = await runCli(['doctor', '--backend', 'tpu']);
  t.is(r.code, 2);
  t.regex(r.stderr, /^error\[invalid_argument\]: --backend: unknown backend 'tpu'/m);
  t.is(r.stderr.trim().split('\n').length, 1);
});
