// Pulls the files a build needs from a Hub model repo into the standard cache and
// returns the snapshot folder. Listing and revision lookup use @huggingface/hub
// (modelInfo, listFiles); the bytes go through downloadBlob (retries, Range
// resumption, verification), which the client lacks.
import { readFile, readdir } from 'node:fs/promises';
import { listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { MoeforgeError } from '../../core/errors.js';
import { RepoCache, fileSize } from '../../core/hub/cache-layout.js';
import { toHubError } from '../../core/hub/errors.js';
import { parseHubRef, type HubRef } from '../../core/hub/model-ref.js';
import { checkRemotePath } from '../../core/hub/safe-path.js';
import type { FetchOptions } from '../../core/plugins.js';
import type { HubContext } from './context.js';
import { isNeededFile, isPickle } from './file-selection.js';
import { downloadBlob } from './transfer.js';

export interface PullOptions extends FetchOptions {
  /** Safetensors weights too (default true); false fetches config and tokenizer files only. */
  includeWeights?: boolean;
  /** Ask the Hub where a branch points even when the cache holds a complete snapshot. */
  refresh?: boolean;
}

export interface PullResult {
  ref: string;
  repo: string;
  /** The commit the files come from. */
  commit: string;
  /** snapshots/<commit>: a folder of relative symlinks into blobs/. */
  folder: string;
  /** Remote names now in the snapshot. */
  files: string[];
  /** True when nothing was asked of the Hub. */
  fromCache: boolean;
}

const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';

/**
 * A revision the cache already resolves (a commit, or refs/<rev>) whose snapshot holds
 * config.json and every weight file is served from the cache without a request: builds
 * are reproducible and work on a plane. `refresh` asks the Hub where a branch points now.
 */
export async function pullModel(ref: string, ctx: HubContext, options: PullOptions = {}): Promise<PullResult> {
  const hubRef = parseHubRef(ref);
  const includeWeights = options.includeWeights ?? true;
  const cache = new RepoCache(ctx.cacheDir, hubRef.repo);

  const cachedCommit = await cache.resolveCached(hubRef.revision);
  if (cachedCommit && (!options.refresh || ctx.offline)) {
    const missing = await missingFromSnapshot(cache, cachedCommit, includeWeights);
    if (missing === undefined) {
      return {
        ref,
        repo: hubRef.repo,
        commit: cachedCommit,
        folder: cache.snapshotDir(cachedCommit),
        files: await snapshotFiles(cache, cachedCommit),
        fromCache: true,
      };
    }
    if (ctx.offline) {
      throw new MoeforgeError('hub_offline', `HF_HUB_OFFLINE is set and the cache lacks ${missing} of ${refText(hubRef)}`, {
        path: `${cache.snapshotDir(cachedCommit)}/${missing}`,
      });
    }
  } else if (ctx.offline) {
    throw new MoeforgeError('hub_offline', `HF_HUB_OFFLINE is set and revision ${hubRef.revision} of ${hubRef.repo} is not in the cache`, {
      path: cache.root,
    });
  }
  return pullOnline(ref, hubRef, cache, ctx, includeWeights, options);
}

function refText(r: HubRef): string {
  return `${r.repo}@${r.revision}`;
}

function api(ctx: HubContext) {
  return { hubUrl: ctx.endpoint, fetch: ctx.fetch, ...(ctx.token ? { accessToken: ctx.token } : {}) };
}

async function pullOnline(
  ref: string,
  hubRef: HubRef,
  cache: RepoCache,
  ctx: HubContext,
  includeWeights: boolean,
  options: PullOptions,
): Promise<PullResult> {
  const where = refText(hubRef);
  const errCtx = { path: where, hadToken: !!ctx.token, token: ctx.token };
  let commit: string;
  let entries: ListFileEntry[];
  try {
    const info = await modelInfo({ ...api(ctx), name: hubRef.repo, revision: hubRef.revision, additionalFields: ['sha'] });
    if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha)) {
      throw new MoeforgeError('hub_error', 'the Hub did not say which commit the revision points to', { path: where });
    }
    commit = info.sha;
    entries = [];
    for await (const entry of listFiles({ ...api(ctx), repo: hubRef.repo, revision: commit, recursive: true })) {
      entries.push(entry);
    }
  } catch (e) {
    throw toHubError(e, errCtx);
  }
  // Every remote name is checked before anything is written.
  for (const entry of entries) checkRemotePath(entry.path, hubRef.repo);
  const byName = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));

  const wanted = [...byName.keys()].filter((name) => isNeededFile(name, false));
  if (!byName.has('config.json')) {
    throw new MoeforgeError('missing_file', 'the repository has no config.json', { path: `${where}/config.json` });
  }
  let weightNames: string[] = [];
  if (includeWeights) {
    if (byName.has(INDEX)) wanted.push(INDEX);
    else if (byName.has(SINGLE)) weightNames = [SINGLE];
    else if ([...byName.keys()].some(isPickle)) {
      throw new MoeforgeError('unsupported_format', 'the repository has only pickle weights (.bin/.pt); moeforge reads safetensors only, as loading a pickle runs arbitrary code', {
        path: where,
      });
    } else {
      throw new MoeforgeError('missing_file', `the repository has no ${SINGLE} or ${INDEX}`, { path: where });
    }
  }

  await cache.writeRef(hubRef.revision, commit);
  const get = async (name: string): Promise<void> => {
    const entry = byName.get(name);
    if (!entry) throw new MoeforgeError('missing_file', 'file not found in the repository listing', { path: `${where}/${name}` });
    await fetchIntoCache(entry, hubRef.repo, commit, cache, ctx, options);
  };
  for (const name of wanted) await get(name);

  if (includeWeights && byName.has(INDEX)) {
    weightNames = await shardsOf(cache.snapshotFile(commit, INDEX), where);
  }
  for (const name of weightNames) {
    checkRemotePath(name, hubRef.repo);
    await get(name);
  }
  return {
    ref,
    repo: hubRef.repo,
    commit,
    folder: cache.snapshotDir(commit),
    files: [...wanted, ...weightNames].sort(),
    fromCache: false,
  };
}

async function fetchIntoCache(
  entry: ListFileEntry,
  repo: string,
  commit: string,
  cache: RepoCache,
  ctx: HubContext,
  options: PullOptions,
): Promise<void> {
  const etag = entry.lfs?.oid ?? entry.oid;
  if (!etag || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(etag)) {
    throw new MoeforgeError('hub_error', 'the Hub listing gives no usable hash for this file', { path: `${repo}/${entry.path}` });
  }
  const size = entry.lfs?.size ?? entry.size;
  const blob = cache.blobPath(etag);
  if ((await fileSize(blob)) !== size) {
    await downloadBlob({
      file: entry.path,
      url: `${ctx.endpoint}/${repo}/resolve/${commit}/${entry.path.split('/').map(encodeURIComponent).join('/')}`,
      blobPath: blob,
      size,
      ...(entry.lfs ? { sha256: entry.lfs.oid } : { gitSha1: entry.oid }),
      token: ctx.token,
      fetch: ctx.fetch,
      retry: ctx.retry,
      onProgress: options.onProgress,
    });
  } else {
    options.onProgress?.({ file: entry.path, bytes: size, total: size });
  }
  await cache.link(commit, entry.path, etag);
}

/** The shard names an index maps tensors to. */
async function shardsOf(indexFile: string, where: string): Promise<string[]> {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(await readFile(indexFile, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new MoeforgeError('corrupt_safetensors', 'model.safetensors.index.json is not valid JSON', { path: `${where}/${INDEX}`, cause: e });
  }
  if (!weightMap || typeof weightMap !== 'object') {
    throw new MoeforgeError('corrupt_safetensors', 'model.safetensors.index.json has no weight_map', { path: `${where}/${INDEX}` });
  }
  return [...new Set(Object.values(weightMap as Record<string, unknown>).map(String))].sort();
}

/** What a complete snapshot lacks (config.json, the weights the index names), or undefined. */
export async function missingFromSnapshot(cache: RepoCache, commit: string, includeWeights: boolean): Promise<string | undefined> {
  const has = async (name: string) => (await fileSize(cache.snapshotFile(commit, name))) !== undefined;
  if (!(await has('config.json'))) return 'config.json';
  if (!includeWeights) return undefined;
  if (await has(INDEX)) {
    let shards: string[];
    try {
      shards = await shardsOf(cache.snapshotFile(commit, INDEX), cache.repo);
    } catch {
      return INDEX;
    }
    for (const shard of shards) if (!(await has(shard))) return shard;
    return undefined;
  }
  return (await has(SINGLE)) ? undefined : SINGLE;
}

async function snapshotFiles(cache: RepoCache, commit: string): Promise<string[]> {
  const root = cache.snapshotDir(commit);
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (e.isDirectory()) continue;
    const full = `${e.parentPath}/${e.name}`;
    if ((await fileSize(full)) !== undefined) out.push(full.slice(root.length + 1));
  }
  return out.sort();
}
