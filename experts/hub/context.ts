// Everything a Hub operation needs, resolved once from the environment: endpoint,
// token, cache, offline flag and the fetch every request goes through (retries,
// offline guard). Tests pass their own `fetch` to see each URL.
import { checkTokenShape, hubEnv, type HubEnv } from '../../core/hub/env.js';
import { retryingFetch, type RetryOptions } from './retry-fetch.js';

export interface HubContext extends HubEnv {
  fetch: typeof fetch;
  retry: RetryOptions;
}

export interface HubContextOptions extends Partial<HubEnv> {
  /** The transport under the retry layer (default: global fetch). */
  fetch?: typeof fetch;
  retry?: Partial<RetryOptions>;
  env?: Record<string, string | undefined>;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 5, baseDelayMs: 500, maxDelayMs: 10_000 };

export function hubContext(options: HubContextOptions = {}): HubContext {
  const env = hubEnv(options.env ?? process.env);
  const merged: HubEnv = {
    endpoint: (options.endpoint ?? env.endpoint).replace(/\/+$/, ''),
    token: 'token' in options ? options.token : env.token,
    home: options.home ?? env.home,
    cacheDir: options.cacheDir ?? env.cacheDir,
    offline: options.offline ?? env.offline,
  };
  checkTokenShape(merged.token);
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  return { ...merged, retry, fetch: retryingFetch(options.fetch ?? globalThis.fetch, retry, merged.offline) };
}
