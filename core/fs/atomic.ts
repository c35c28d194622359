// Atomic output folders: everything is written into a temporary sibling of the
// destination (same filesystem, so the final rename is atomic) and renamed into
// place only when complete. An error, an abort, Ctrl-C or SIGTERM removes the
// temporary folder, so an interrupted build never leaves a half-written model
// where a loader would pick it up (as `save_pretrained` would).

import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { MoeforgeError, fsError } from '../errors.js';

// ---------------------------------------------------------------------------
// Byte sizes.

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * '2GB', '500MB', '5GiB', '1.5GB', '1000000' → bytes. Decimal units are powers
 * of 1000 and binary units powers of 1024, as transformers'
 * `convert_file_size_to_int` reads `max_shard_size`. A bare `B` means bytes
 * ('100B' = 100), unlike mergekit's `parse_kmb` where '5B' is five billion: a
 * shard size written for mergekit must say '5GB'.
 */
export function parseByteSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m?.[2]?.toLowerCase() ?? '';
  if (!m || !Object.prototype.hasOwnProperty.call(UNITS, unit)) {
    throw new MoeforgeError('invalid_argument', `"${s}" is not a size (examples: 2GB, 500MB, 5GiB, 1000000)`);
  }
  const bytes = Math.floor(Number(m[1]) * UNITS[unit]!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new MoeforgeError('invalid_argument', `"${s}" is not a positive size in bytes`);
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// Temporary folders removed on SIGINT / SIGTERM.

const live = new Set<string>();
const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
let handlersInstalled = false;

function onSignal(signal: NodeJS.Signals): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
  uninstall();
  // Re-raise with the default handler so the exit status says which signal stopped us.
  process.kill(process.pid, signal);
}

function install(): void {
  if (handlersInstalled) return;
  for (const s of signals) process.on(s, onSignal);
  handlersInstalled = true;
}

function uninstall(): void {
  if (!handlersInstalled) return;
  for (const s of signals) process.off(s, onSignal);
  handlersInstalled = false;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(e, p, 'check');
  }
}

/**
 * Creates `.<name>.tmp-XXXXXX` beside `outFolder` (removed on SIGINT/SIGTERM
 * until committed or discarded). An existing `outFolder` is an error unless
 * `overwrite`.
 */
export async function createTempSibling(outFolder: string, opts: { overwrite?: boolean } = {}): Promise<string> {
  const out = path.resolve(outFolder);
  if (!opts.overwrite && (await exists(out))) {
    throw new MoeforgeError('invalid_argument', 'output folder already exists (pass --overwrite to replace it)', {
      path: outFolder,
    });
  }
  const parent = path.dirname(out);
  try {
    await mkdir(parent, { recursive: true });
    const tmp = await mkdtemp(path.join(parent, `.${path.basename(out)}.tmp-`));
    live.add(tmp);
    install();
    return tmp;
  } catch (e) {
    throw fsError(e, parent, 'create a temporary output folder in');
  }
}

/** Renames `tmp` to `outFolder`; with `overwrite`, an existing folder is replaced (moved aside, then removed). */
export async function commitTempFolder(tmp: string, outFolder: string, opts: { overwrite?: boolean } = {}): Promise<void> {
  const out = path.resolve(outFolder);
  let old: string | undefined;
  if (await exists(out)) {
    if (!opts.overwrite) {
      throw new MoeforgeError('invalid_argument', 'output folder appeared while writing; not replacing it', {
        path: outFolder,
      });
    }
    old = `${tmp}.old`;
    try {
      await rename(out, old);
    } catch (e) {
      throw fsError(e, outFolder, 'move the previous output aside');
    }
  }
  try {
    await rename(tmp, out);
  } catch (e) {
    if (old) await rename(old, out).catch(() => undefined);
    throw fsError(e, outFolder, 'rename the finished output into place');
  }
  forget(tmp);
  if (old) await rm(old, { recursive: true, force: true });
}

/** Removes a temporary folder (after an error or an abort). */
export async function discardTempFolder(tmp: string): Promise<void> {
  await rm(tmp, { recursive: true, force: true });
  forget(tmp);
}

function forget(tmp: string): void {
  live.delete(tmp);
  if (live.size === 0) uninstall();
}

/**
 * Runs `fn` with a temporary sibling of `outFolder`; on success the folder is
 * renamed into place and `fn`'s result returned, on error (or SIGINT/SIGTERM)
 * it is removed and the error rethrown.
 */
export async function withAtomicFolder<T>(
  outFolder: string,
  fn: (tmp: string) => Promise<T>,
  opts: { overwrite?: boolean } = {},
): Promise<T> {
  const tmp = await createTempSibling(outFolder, opts);
  let result: T;
  try {
    result = await fn(tmp);
  } catch (e) {
    await discardTempFolder(tmp);
    throw e;
  }
  try {
    await commitTempFolder(tmp, outFolder, opts);
  } catch (e) {
    await discardTempFolder(tmp);
    throw e;
  }
  return result;
}
