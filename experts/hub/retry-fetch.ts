// @huggingface/hub 2.17 does not retry: a 500 or a dropped connection fails the
// call. Every request the client makes goes through this fetch, which retries GET and
// HEAD on 5xx / 429 / network errors with exponential backoff (honouring
// Retry-After), as Python's huggingface_hub http_backoff does.
import { MoeforgeError } from '../../core/errors.js';

export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

export function backoffDelay(attempt: number, opts: RetryOptions, retryAfter?: string | null): number {
  const seconds = retryAfter ? Number(retryAfter) : NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, opts.maxDelayMs);
  return Math.min(opts.baseDelayMs * 2 ** attempt, opts.maxDelayMs);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function methodOf(input: Parameters<typeof fetch>[0], init?: RequestInit): string {
  return (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
}

export function retryingFetch(inner: typeof fetch, opts: RetryOptions, offline: boolean): typeof fetch {
  const wrapped = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    if (offline) {
      const url = input instanceof Request ? input.url : String(input);
      throw new MoeforgeError('hub_offline', 'HF_HUB_OFFLINE is set: no network request is made', {
        path: new URL(url).pathname,
      });
    }
    const method = methodOf(input, init);
    // Only idempotent requests without a one-shot body are retried.
    const canRetry = method === 'GET' || method === 'HEAD';
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await inner(input, init);
      } catch (e) {
        if (!canRetry || attempt >= opts.retries || init?.signal?.aborted) throw e;
        await sleep(backoffDelay(attempt, opts));
        continue;
      }
      if (!canRetry || !isRetryableStatus(res.status) || attempt >= opts.retries) return res;
      await res.body?.cancel().catch(() => undefined);
      await sleep(backoffDelay(attempt, opts, res.headers.get('retry-after')));
    }
  };
  return wrapped as typeof fetch;
}
