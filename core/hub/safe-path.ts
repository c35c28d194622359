// Remote file names are checked before anything touches the disk: a listing is
// data from the network, and `../evil` or `/etc/x` must never become a path
// outside the snapshot folder (the same rules as @huggingface/hub's
// validateRelativeFilename, which we run before rather than during the download).
import path from 'node:path';
import { MoeforgeError } from '../errors.js';

export function checkRemotePath(name: string, repo: string): void {
  const segments = name.replace(/\\/g, '/').split('/');
  const bad =
    name === '' ||
    name.includes('\0') ||
    segments.includes('..') ||
    segments.includes('.') ||
    segments.some((s) => s === '') ||
    name.startsWith('/') ||
    name.startsWith('\\') ||
    segments.some((s) => /^[A-Za-z]:/.test(s));
  if (bad) {
    throw new MoeforgeError('unsafe_path', `the Hub listing names a file outside the repository: ${JSON.stringify(name)}`, {
      path: repo,
    });
  }
}

/** Joins a checked remote name under `root` and proves the result stays inside it. */
export function safeJoin(root: string, name: string, repo: string): string {
  checkRemotePath(name, repo);
  const full = path.resolve(root, name);
  const rel = path.relative(path.resolve(root), full);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new MoeforgeError('unsafe_path', `file name escapes its folder: ${JSON.stringify(name)}`, { path: repo });
  }
  return full;
}
