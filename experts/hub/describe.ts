// What a Hub model is, before a single weight byte is fetched: config.json and the
// safetensors headers, read with Range requests by @huggingface/hub's
// parseSafetensorsMetadata (8 bytes for the header length, then the header).
import { downloadFile, listFiles, modelInfo, parseSafetensorsMetadata, SafetensorParseError, type ListFileEntry } from '@huggingface/hub';
import { MoeforgeError } from '../../core/errors.js';
import { toHubError } from '../../core/hub/errors.js';
import { parseHubRef } from '../../core/hub/model-ref.js';
import { checkRemotePath } from '../../core/hub/safe-path.js';
import type { ModelDescription, RemoteTensorHeader } from '../../core/plugins.js';
import type { HubContext } from './context.js';
import { isPickle } from './file-selection.js';

const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';

type Header = Record<string, unknown>;

export async function describeHubModel(ref: string, ctx: HubContext): Promise<ModelDescription> {
  const hubRef = parseHubRef(ref);
  const where = `${hubRef.repo}@${hubRef.revision}`;
  const api = { hubUrl: ctx.endpoint, fetch: ctx.fetch, ...(ctx.token ? { accessToken: ctx.token } : {}) };
  const errCtx = { path: where, hadToken: !!ctx.token, token: ctx.token };
  try {
    // One commit for every later request, so the config and headers agree.
    const info = await modelInfo({ ...api, name: hubRef.repo, revision: hubRef.revision, additionalFields: ['sha'] });
    const commit = String(info.sha);
    const entries: ListFileEntry[] = [];
    for await (const e of listFiles({ ...api, repo: hubRef.repo, revision: commit })) entries.push(e);
    for (const e of entries) checkRemotePath(e.path, hubRef.repo);
    const names = new Set(entries.filter((e) => e.type === 'file').map((e) => e.path));
    if (!names.has('config.json')) {
      throw new MoeforgeError('missing_file', 'the repository has no config.json', { path: `${where}/config.json` });
    }
    const weightsPath = names.has(INDEX) ? INDEX : names.has(SINGLE) ? SINGLE : undefined;
    if (!weightsPath) {
      throw [...names].some(isPickle)
        ? new MoeforgeError('unsupported_format', 'the repository has only pickle weights (.bin/.pt); moeforge reads safetensors only', { path: where })
        : new MoeforgeError('missing_file', `the repository has no ${SINGLE} or ${INDEX}`, { path: where });
    }

    const configBlob = await downloadFile({ ...api, repo: hubRef.repo, revision: commit, path: 'config.json' });
    if (!configBlob) throw new MoeforgeError('missing_file', 'config.json not found', { path: `${where}/config.json` });
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(await configBlob.text()) as Record<string, unknown>;
    } catch (e) {
      throw new MoeforgeError('invalid_config', 'config.json is not valid JSON', { path: `${where}/config.json`, cause: e });
    }

    let parsed: Awaited<ReturnType<typeof parseSafetensorsMetadata>>;
    try {
      parsed = await parseSafetensorsMetadata({ ...api, repo: hubRef.repo, revision: commit, path: weightsPath });
    } catch (e) {
      if (e instanceof SafetensorParseError) {
        throw new MoeforgeError('corrupt_safetensors', e.message, { path: `${where}/${weightsPath}`, cause: e });
      }
      throw e;
    }
    const tensors = new Map<string, RemoteTensorHeader>();
    const addHeader = (header: Header) => {
      for (const [name, info] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        const { dtype, shape } = info as { dtype: string; shape: number[] };
        tensors.set(name, { dtype, shape: [...shape] });
      }
    };
    let weightFiles: string[];
    if (parsed.sharded) {
      for (const header of Object.values(parsed.headers)) addHeader(header as unknown as Header);
      weightFiles = Object.keys(parsed.headers);
    } else {
      addHeader(parsed.header as unknown as Header);
      weightFiles = [SINGLE];
    }
    const sizes = new Map(entries.map((e) => [e.path, e.lfs?.size ?? e.size]));
    const weightBytes = weightFiles.reduce((s, f) => s + (sizes.get(f) ?? 0), 0);
    const files = [...names].sort();
    const fileSizes = Object.fromEntries(files.map((f) => [f, sizes.get(f) ?? 0]));
    return { ref, config, tensors, weightBytes, files, fileSizes, revision: commit };
  } catch (e) {
    throw toHubError(e, errCtx);
  }
}

