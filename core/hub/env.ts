// Hub settings read from the environment exactly as Python's huggingface_hub does
// (huggingface_hub/constants.py): HF_ENDPOINT, HF_HOME (default
// $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface), HF_HUB_CACHE (default
// HF_HOME/hub), HF_HUB_OFFLINE, and the token from HF_TOKEN, else the file
// HF_TOKEN_PATH (default HF_HOME/token) that `huggingface-cli login` writes.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MoeforgeError } from '../errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubEnv {
  /** Hub base URL without a trailing slash. */
  endpoint: string;
  /** Access token (`hf_…`) or undefined for anonymous access. Never print it. */
  token: string | undefined;
  home: string;
  /** The cache root holding `models--org--name` folders. */
  cacheDir: string;
  /** HF_HUB_OFFLINE: use the cache only, never the network. */
  offline: boolean;
}

type Env = Record<string, string | undefined>;

/** Python's `_is_true`: "1", "ON", "YES", "TRUE" in any case. */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'on', 'yes', 'true'].includes(value.trim().toLowerCase());
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

export function hubHome(env: Env = process.env): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface');
}

export function hubCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return expandHome(env.HF_HUB_CACHE);
  return path.join(hubHome(env), 'hub');
}

/** HF_TOKEN first, then the token file; an empty value means no token (as in Python). */
export function hubToken(env: Env = process.env): string | undefined {
  const fromEnv = env.HF_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : path.join(hubHome(env), 'token');
  try {
    const fromFile = readFileSync(file, 'utf8').trim();
    return fromFile || undefined;
  } catch {
    return undefined; // no token file: anonymous access
  }
}

/** Hub tokens start with `hf_` (and @huggingface/hub refuses others with a TypeError). */
export function checkTokenShape(token: string | undefined, source = 'HF_TOKEN'): void {
  if (token !== undefined && !token.startsWith('hf_')) {
    throw new MoeforgeError('hub_unauthorized', 'the Hugging Face token does not start with hf_ (check HF_TOKEN or the token file)', {
      path: source,
    });
  }
}

export function hubEnv(env: Env = process.env): HubEnv {
  return {
    endpoint: (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: hubToken(env),
    home: hubHome(env),
    cacheDir: hubCacheDir(env),
    offline: envFlag(env.HF_HUB_OFFLINE),
  };
}
