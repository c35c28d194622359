// Test fixtures for the Hub: an emulator seeded with tiny model repos, a network
// guard that records every URL fetched (and refuses anything but 127.0.0.1), and
// a HubContext pointed at the emulator with a private cache.
//
// `startHubWithTinyModel()` is the helper an end-to-end test of "a recipe naming Hub
// experts builds and pushes" starts from: it serves the golden llama-tiny as
// `tiny-org/llama-tiny` (and variants) for the builder to fetch through HubSource.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { hubContext, type HubContext } from '../../experts/hub/context.js';
import { registerExpertSources } from '../../experts/sources/register.js';
import { golden, tempDir } from '../helpers/paths.js';
import { HubEmulator, testToken, type EmuUser } from './emulator.js';

export interface TinyHub {
  emu: HubEmulator;
  alice: EmuUser;
  /** Commits of tiny-org/llama-tiny: v1 (tagged `v1`), then main moved on; `dev` branch. */
  commits: { v1: string; main: string; dev: string };
  /** The golden files as served. */
  files: Map<string, Buffer>;
}

export const TINY_REPO = 'tiny-org/llama-tiny';
export const SHARDED_REPO = 'tiny-org/sharded';
export const PRIVATE_REPO = 'tiny-org/secret';

/** A safetensors file from F32 tensors (header padded to 8 bytes, as the format requires). */
export function safetensorsBytes(tensors: Record<string, { shape: number[]; values: number[] }>): Buffer {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const data = Buffer.from(new Float32Array(t.values).buffer);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + data.length] };
    parts.push(data);
    offset += data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...parts]);
}

export async function startHubWithTinyModel(): Promise<TinyHub> {
  const alice: EmuUser = { name: 'alice', token: testToken(), orgs: ['tiny-org'] };
  const emu = await HubEmulator.start({ users: [alice] });
  const dir = golden('llama-tiny');
  const files = new Map<string, Buffer>([
    ['config.json', await readFile(path.join(dir, 'config.json'))],
    ['model.safetensors', await readFile(path.join(dir, 'model.safetensors'))],
    ['tokenizer_config.json', Buffer.from(JSON.stringify({ bos_token: '<s>', eos_token: '</s>', model_max_length: 256 }, null, 2))],
    ['generation_config.json', Buffer.from(JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2))],
    ['special_tokens_map.json', Buffer.from('{}')],
    // Empty: the client's `Range: bytes=0-0` probe would get a 416 here; we ask nothing.
    ['added_tokens.json', Buffer.alloc(0)],
    ['chat_template.jinja', Buffer.from('{% for m in messages %}{{ m.content }}{% endfor %}')],
    // Never downloaded: pickles run code; README and nested files are not needed by a build.
    ['pytorch_model.bin', Buffer.from('not a pickle, but it must never be fetched')],
    ['README.md', Buffer.from('# llama-tiny\n')],
    ['onnx/model.onnx', Buffer.from('onnx')],
  ]);
  emu.createRepo(TINY_REPO);
  const v1 = emu.commit(TINY_REPO, Object.fromEntries(files), { message: 'add model' });
  emu.tag(TINY_REPO, 'v1', v1);
  emu.branch(TINY_REPO, 'dev', v1);
  const dev = emu.commit(TINY_REPO, { 'generation_config.json': '{"bos_token_id": 1, "eos_token_id": 2, "dev": true}' }, { branch: 'dev' });
  const main = emu.commit(TINY_REPO, { 'generation_config.json': '{"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.7}' });

  emu.createRepo(SHARDED_REPO);
  const shard1 = safetensorsBytes({ 'model.embed_tokens.weight': { shape: [4, 2], values: [1, 2, 3, 4, 5, 6, 7, 8] } });
  const shard2 = safetensorsBytes({ 'model.norm.weight': { shape: [2], values: [1, 1] }, 'lm_head.weight': { shape: [4, 2], values: [0, 1, 0, 1, 0, 1, 0, 1] } });
  const index = {
    metadata: { total_size: 4 * (8 + 2 + 8) },
    weight_map: {
      'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
      'model.norm.weight': 'model-00002-of-00002.safetensors',
      'lm_head.weight': 'model-00002-of-00002.safetensors',
    },
  };
  emu.commit(SHARDED_REPO, {
    'config.json': files.get('config.json')!,
    'model.safetensors.index.json': JSON.stringify(index, null, 2),
    'model-00001-of-00002.safetensors': shard1,
    'model-00002-of-00002.safetensors': shard2,
    // A leftover the index does not name: not needed, not fetched.
    'consolidated.safetensors': shard1,
  });

  emu.createRepo(PRIVATE_REPO, { private: true });
  emu.commit(PRIVATE_REPO, { 'config.json': files.get('config.json')!, 'model.safetensors': files.get('model.safetensors')! });
  emu.clearLog();
  return { emu, alice, commits: { v1, main, dev }, files };
}

/**
 * Registers the expert sources with the Hub source pointed at an emulator and a
 * private cache: what a build test needs to resolve `tiny-org/llama-tiny` in a recipe.
 */
export function registerEmulatedSources(container: DependencyContainer, emu: HubEmulator, cacheDir: string, token?: string): void {
  registerExpertSources(container, {
    env: {},
    endpoint: emu.url,
    cacheDir,
    token,
    offline: false,
    retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 50 },
  });
}

/**
 * Replaces globalThis.fetch (in this test process) with one that records every URL
 * and refuses any host but 127.0.0.1: no test may reach the real Hub. The upload path
 * of @huggingface/hub uses the global fetch, so this covers what a custom fetch cannot.
 */
export function guardNetwork(): { urls: string[] } {
  const urls: string[] = [];
  const real = globalThis.fetch;
  const guarded = (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    urls.push(url);
    if (new URL(url).hostname !== '127.0.0.1') return Promise.reject(new Error(`test network guard: refused ${url}`));
    return real(input, init);
  };
  globalThis.fetch = guarded as typeof fetch;
  return { urls };
}

export async function testContext(
  emu: HubEmulator,
  options: { token?: string; offline?: boolean; retries?: number } = {},
): Promise<{ ctx: HubContext; cacheDir: string; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir('moeforge-hub-');
  const cacheDir = path.join(dir, 'hub');
  const ctx = hubContext({
    env: {},
    endpoint: emu.url,
    cacheDir,
    token: options.token,
    offline: options.offline ?? false,
    retry: { retries: options.retries ?? 3, baseDelayMs: 5, maxDelayMs: 50 },
  });
  return { ctx, cacheDir, cleanup };
}
