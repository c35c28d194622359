// `openai:<base-url>#<model-name>` model arguments of `moeforge eval`: a model
// served by an OpenAI-compatible server. The name after `#` is what the server
// calls the model (vLLM: the path or repo given to `vllm serve`) and, unless a
// tokenizer is named (`openai:http://host:8000/v1?tokenizer=org/name#served-name`),
// where its tokenizer files come from: a local folder, or a Hub repo whose config
// and tokenizer files (never its weights) are pulled into the cache.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { normalizeConfig } from '../../../core/config/normalize.js';
import { MoeforgeError } from '../../../core/errors.js';
import { Tokenizer } from '../../../core/tokenizer/tokenizer.js';
import { hubContext } from '../../../experts/hub/context.js';
import { pullModel } from '../../../experts/hub/pull.js';
import type { EvalModel } from '../evaluate.js';
import type { ScorerInfo } from '../scorer.js';
import { OpenAiClient, type ClientOptions } from './client.js';
import { RemoteScorer } from './remote-scorer.js';

export const REMOTE_PREFIX = 'openai:';

export interface RemoteRef {
  /** The API root, e.g. http://127.0.0.1:8000/v1 (a trailing /completions is dropped). */
  baseUrl: string;
  model: string;
  /** `?tokenizer=<folder or org/name>` on the base URL: where the tokenizer files are when the served name is neither. */
  tokenizer?: string;
}

export function isRemoteModelRef(ref: string): boolean {
  return ref.startsWith(REMOTE_PREFIX);
}

export function parseRemoteRef(ref: string): RemoteRef {
  const usage = 'expected openai:<base-url>#<model-name>, e.g. openai:http://127.0.0.1:8000/v1#./my-moe';
  if (!isRemoteModelRef(ref)) throw new MoeforgeError('invalid_argument', usage, { path: ref });
  const rest = ref.slice(REMOTE_PREFIX.length);
  const hash = rest.indexOf('#');
  const model = hash < 0 ? '' : rest.slice(hash + 1);
  if (hash < 0 || model === '') throw new MoeforgeError('invalid_argument', `no model name after '#': ${usage}`, { path: ref });
  let url: URL;
  try {
    url = new URL(rest.slice(0, hash));
  } catch {
    throw new MoeforgeError('invalid_argument', `not a URL before '#': ${usage}`, { path: ref });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MoeforgeError('invalid_argument', `the base URL must be http or https: ${usage}`, { path: ref });
  if (url.username || url.password) throw new MoeforgeError('invalid_argument', 'put the key in OPENAI_API_KEY, not in the URL', { path: 'model reference' });
  const tokenizer = url.searchParams.get('tokenizer');
  url.searchParams.delete('tokenizer');
  const baseUrl = url.href.replace(/\/+$/, '').replace(/\/(chat\/)?completions$/, '');
  return tokenizer ? { baseUrl, model, tokenizer } : { baseUrl, model };
}

async function isFolder(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The folder holding a model's tokenizer files: the local folder itself, or a Hub snapshot of config + tokenizer files. */
export async function tokenizerFolder(ref: string): Promise<string> {
  if ((await isFolder(ref)) || ref.startsWith('.') || path.isAbsolute(ref)) return ref;
  const pulled = await pullModel(ref, hubContext(), { includeWeights: false });
  return pulled.folder;
}

/** Family and expert counts from config.json beside the tokenizer, when it is there and understood. */
async function infoFrom(folder: string): Promise<{ info: Partial<ScorerInfo>; maxLength?: number }> {
  const file = path.join(folder, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return { info: {} };
  }
  try {
    const c = normalizeConfig(raw, file);
    return {
      info: { modelType: c.modelType, architecture: c.architecture, numExperts: c.moe?.numExperts ?? null, expertsPerToken: c.moe?.expertsPerToken ?? null },
      maxLength: c.maxPositionEmbeddings,
    };
  } catch {
    return { info: {} };
  }
}

export interface OpenRemoteOptions extends ClientOptions {
  /** Where the tokenizer comes from (default: the model name). */
  tokenizer?: string;
  batchSize?: number;
}

/** A RemoteScorer for `openai:<base-url>#<model-name>`. */
export async function openRemoteScorer(ref: string, options: OpenRemoteOptions = {}): Promise<RemoteScorer> {
  const parsed = parseRemoteRef(ref);
  const { baseUrl, model } = parsed;
  const source = options.tokenizer ?? parsed.tokenizer;
  let folder: string;
  let tokenizer: Tokenizer;
  try {
    folder = await tokenizerFolder(source ?? model);
    tokenizer = await Tokenizer.fromFolder(folder);
  } catch (e) {
    if (source !== undefined || !(e instanceof MoeforgeError)) throw e;
    // The served name is not where the tokenizer is (vLLM's --served-model-name): say how to name it.
    throw new MoeforgeError(e.code, `${e.message} (the tokenizer is read from the model name; if it is elsewhere, add ?tokenizer=<folder or org/name> to the base URL)`, {
      ...(e.path !== undefined ? { path: e.path } : {}),
      cause: e,
    });
  }
  const { info, maxLength } = await infoFrom(folder);
  const client = new OpenAiClient(baseUrl, options);
  return new RemoteScorer(client, tokenizer, {
    model,
    info,
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(maxLength !== undefined ? { maxLength } : {}),
  });
}

/** An `openai:` model argument as a model of `evaluate()`; its name is the served model's base name. */
export function remoteModel(ref: string, options: OpenRemoteOptions & { name?: string } = {}): EvalModel {
  const { model } = parseRemoteRef(ref);
  return {
    name: options.name ?? path.basename(model),
    ref,
    revision: null,
    load: () => openRemoteScorer(ref, options),
  };
}
