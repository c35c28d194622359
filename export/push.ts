// Pushes a built model folder to the Hub with @huggingface/hub: creates the repo if
// needed (private on request), creates the branch if needed, and uploads every file
// in one commit through uploadFilesWithProgress (safetensors go through LFS, as the
// Hub's preupload decides).
import { openAsBlob } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createBranch, createRepo, modelInfo, uploadFilesWithProgress, whoAmI } from '@huggingface/hub';
import { MoeforgeError, fsError } from '../core/errors.js';
import { checkTokenShape, hubEnv, type HubEnv } from '../core/hub/env.js';
import { toHubError } from '../core/hub/errors.js';
import { isHubRepoId } from '../core/hub/model-ref.js';
import { checkRemotePath } from '../core/hub/safe-path.js';

export interface PushOptions {
  private?: boolean;
  /** Target branch (created from main when missing); default `main`. */
  revision?: string;
  /** Commit title. */
  message?: string;
  /** Overrides of the environment (HF_ENDPOINT, HF_TOKEN). */
  endpoint?: string;
  token?: string;
  onProgress?: (event: { file: string; progress: number; state: 'hashing' | 'uploading' }) => void;
}

export interface PushResult {
  repo: string;
  branch: string;
  commit: string;
  url: string;
  created: boolean;
  files: string[];
}

/** Files to upload, relative to the folder, `/`-separated; hidden entries (.git, .cache) skipped. */
async function listUploadFiles(folder: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(folder, { recursive: true, withFileTypes: true });
  } catch (e) {
    throw fsError(e, folder, 'list the folder to push');
  }
  const out: string[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const rel = path.relative(folder, path.join(e.parentPath, e.name)).split(path.sep).join('/');
    if (rel.split('/').some((s) => s.startsWith('.'))) continue;
    checkRemotePath(rel, folder);
    out.push(rel);
  }
  return out.sort();
}

export async function pushFolder(folder: string, repo: string, options: PushOptions = {}): Promise<PushResult> {
  if (!isHubRepoId(repo) || !repo.includes('/')) {
    throw new MoeforgeError('invalid_argument', 'expected a Hub repo id org/name', { path: repo });
  }
  const env: HubEnv = hubEnv();
  const hubUrl = (options.endpoint ?? env.endpoint).replace(/\/+$/, '');
  const token = 'token' in options ? options.token : env.token;
  const branch = options.revision ?? 'main';
  const where = branch === 'main' ? repo : `${repo}@${branch}`;
  if (!token) {
    throw new MoeforgeError('hub_unauthorized', 'pushing needs a token with write access (set HF_TOKEN or run huggingface-cli login)', {
      path: repo,
    });
  }
  checkTokenShape(token);
  if (env.offline) throw new MoeforgeError('hub_offline', 'HF_HUB_OFFLINE is set: cannot push', { path: repo });
  try {
    const st = await stat(folder);
    if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    throw fsError(e, folder, 'open the folder to push');
  }
  const files = await listUploadFiles(folder);
  if (files.length === 0) throw new MoeforgeError('missing_file', 'nothing to push: the folder is empty', { path: folder });

  const errCtx = { path: where, hadToken: true, token };
  const api = { hubUrl, accessToken: token };
  let created = false;
  let commit: string;
  try {
    // A bad token is one clear line here, before any hashing or upload.
    await whoAmI(api);
    try {
      await createRepo({ ...api, repo: { type: 'model', name: repo }, private: options.private ?? false });
      created = true;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 409) throw e; // 409: it exists already
    }
    if (branch !== 'main') {
      try {
        await modelInfo({ ...api, name: repo, revision: branch });
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 404) throw e;
        await createBranch({ ...api, repo: { type: 'model', name: repo }, branch });
      }
    }
    const blobs = await Promise.all(
      files.map(async (rel) => ({ path: rel, content: await openAsBlob(path.join(folder, ...rel.split('/'))) })),
    );
    const it = uploadFilesWithProgress({
      ...api,
      repo: { type: 'model', name: repo },
      branch,
      files: blobs,
      commitTitle: options.message ?? `Upload ${files.length} files with moeforge`,
      useWebWorkers: false,
    });
    const finished = new Set<string>();
    let step = await it.next();
    while (!step.done) {
      const ev = step.value;
      if (ev.event === 'fileProgress' && ev.state !== 'error') {
        if (ev.state === 'uploading' && ev.progress >= 1) finished.add(ev.path);
        options.onProgress?.({ file: ev.path, progress: ev.progress, state: ev.state });
      }
      step = await it.next();
    }
    const out = step.value;
    if (!out) throw new MoeforgeError('hub_error', 'the Hub did not return a commit', { path: where });
    commit = out.commit.oid;
    // Regular files travel inside the commit request; in Node the client reports no
    // progress for them (it needs XMLHttpRequest), so they complete with the commit.
    for (const file of files) if (!finished.has(file)) options.onProgress?.({ file, progress: 1, state: 'uploading' });
  } catch (e) {
    throw toHubError(e, errCtx);
  }
  return { repo, branch, commit, url: `${hubUrl}/${repo}${branch === 'main' ? '' : `/tree/${branch}`}`, created, files };
}
