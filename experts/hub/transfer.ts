// Downloads one file into its cache blob: resumable (an interrupted transfer leaves
// `blobs/<etag>.incomplete`, and the next attempt asks for the rest with `Range`, as
// Python's huggingface_hub does), verified (size for every file, sha256 for LFS
// files, git blob sha1 for the others: neither official client checks the sha256),
// and atomic (the blob gets its true name only once verified).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError, fsError } from '../../core/errors.js';
import { fileSize } from '../../core/hub/cache-layout.js';
import { toHubError } from '../../core/hub/errors.js';
import { backoffDelay, sleep, type RetryOptions } from './retry-fetch.js';

export interface BlobDownload {
  /** Remote file name (for messages and progress). */
  file: string;
  url: string;
  blobPath: string;
  size: number;
  /** sha256 for LFS files. */
  sha256?: string;
  /** git blob sha1 for regular files. */
  gitSha1?: string;
  token?: string;
  fetch: typeof fetch;
  retry: RetryOptions;
  onProgress?: (event: { file: string; bytes: number; total: number }) => void;
}

export async function downloadBlob(d: BlobDownload): Promise<void> {
  const incomplete = `${d.blobPath}.incomplete`;
  try {
    await mkdir(path.dirname(d.blobPath), { recursive: true });
  } catch (e) {
    throw fsError(e, path.dirname(d.blobPath), 'create the cache folder');
  }
  if (d.size === 0) {
    // Nothing to ask for (a Range on an empty file is a 416, as the client's probe finds).
    try {
      await writeFile(incomplete, new Uint8Array(0));
    } catch (e) {
      throw fsError(e, incomplete, 'write the download');
    }
  }
  for (let attempt = 0; ; attempt++) {
    let have = (await fileSize(incomplete)) ?? 0;
    if (have > d.size) {
      await rm(incomplete, { force: true });
      have = 0;
    }
    if (have === d.size) break;
    try {
      await fetchRest(d, incomplete, have);
    } catch (e) {
      if (e instanceof MoeforgeError || attempt >= d.retry.retries) {
        throw toHubError(e, { path: `${d.file}`, hadToken: !!d.token, token: d.token });
      }
      await sleep(backoffDelay(attempt, d.retry));
    }
  }
  await verify(d, incomplete);
  try {
    await rename(incomplete, d.blobPath);
  } catch (e) {
    throw fsError(e, d.blobPath, 'move the verified download into the cache');
  }
}

/** Appends bytes [have, size) to the .incomplete file. */
async function fetchRest(d: BlobDownload, incomplete: string, have: number): Promise<void> {
  const headers: Record<string, string> = { Range: `bytes=${have}-` };
  if (d.token) headers.Authorization = `Bearer ${d.token}`;
  const res = await d.fetch(d.url, { headers });
  if (!res.ok || !res.body) {
    const err = Object.assign(new Error(`HTTP ${res.status} for ${d.file}`), { statusCode: res.status });
    await res.body?.cancel().catch(() => undefined);
    throw toHubError(err, { path: d.file, hadToken: !!d.token, token: d.token });
  }
  let start = 0;
  if (res.status === 206) {
    const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    start = m ? Number(m[1]) : -1;
    if (start !== have) {
      await res.body.cancel().catch(() => undefined);
      throw new MoeforgeError('hub_error', `the server answered a different byte range than asked (${res.headers.get('content-range')})`, {
        path: d.file,
      });
    }
  } else if (have > 0) {
    await truncate(incomplete, 0); // the server ignored Range: start over
  }
  // Chunks go to disk as they arrive, so a cut leaves every byte read so far in
  // the .incomplete file for the next Range request.
  let bytes = start;
  let fh;
  try {
    fh = await open(incomplete, start > 0 ? 'a' : 'w');
  } catch (e) {
    throw fsError(e, incomplete, 'write the download');
  }
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await fh.write(value);
      bytes += value.byteLength;
      d.onProgress?.({ file: d.file, bytes, total: d.size });
    }
  } finally {
    reader.releaseLock();
    await fh.close();
  }
}

async function verify(d: BlobDownload, file: string): Promise<void> {
  const got = (await fileSize(file)) ?? 0;
  const fail = async (what: string): Promise<never> => {
    await rm(file, { force: true }); // never keep bad bytes, under any name
    throw new MoeforgeError('hub_integrity', `downloaded file does not match the Hub's ${what}; it was discarded`, {
      path: d.file,
    });
  };
  if (got !== d.size) return fail(`size (${got} bytes, expected ${d.size})`);
  if (d.sha256) {
    const sha = await hashFile(file, 'sha256');
    if (sha !== d.sha256) return fail(`sha256 (${sha.slice(0, 12)}…, expected ${d.sha256.slice(0, 12)}…)`);
  } else if (d.gitSha1) {
    const sha = await hashFile(file, 'sha1', `blob ${d.size}\0`);
    if (sha !== d.gitSha1) return fail(`git sha1 (${sha.slice(0, 12)}…, expected ${d.gitSha1.slice(0, 12)}…)`);
  }
}

export async function hashFile(file: string, algo: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const h = createHash(algo);
  if (prefix) h.update(prefix);
  try {
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  } catch (e) {
    throw fsError(e, file, 'read the download to verify it');
  }
  return h.digest('hex');
}
