// Where tests find the shared reference data: ../shared beside the repository
// (in CI too: a fresh clone with shared/ beside it).
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_DIR = path.resolve(REPO_ROOT, '..', 'shared');
export const GOLDEN_DIR = path.join(SHARED_DIR, 'golden');
export const CORPUS_DIR = path.join(SHARED_DIR, 'corpus', 'mergekit-configs');

export const GOLDEN_MODELS = [
  'llama-tiny',
  'llama-tiny-bf16',
  'llama-tiny-rope-llama3',
  'mistral-tiny',
  'mixtral-tiny',
  'qwen2-tiny',
  'qwen2moe-tiny',
  'qwen2moe-tiny-mixed',
] as const;

export function golden(name: (typeof GOLDEN_MODELS)[number]): string {
  return path.join(GOLDEN_DIR, name);
}

/** A fresh temporary folder; call the returned cleanup in t.teardown. */
export async function tempDir(prefix = 'moeforge-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
