// A small client for an OpenAI-compatible server (vLLM, TGI, llama.cpp's server,
// `moeforge serve`): POST JSON under a bound on requests in flight, retried with
// exponential backoff on 429 / 5xx / dropped connections (as lm-evaluation-harness's
// TemplateAPI retries, and honouring Retry-After). The key comes from
// OPENAI_API_KEY and is sent as a Bearer token; it never appears in an error.
import { MoeforgeError } from '../../../core/errors.js';

export interface ClientOptions {
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Retries after the first attempt (default 5). */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt (default 10 minutes: a long batch on a busy server). */
  timeoutMs?: number;
  /** Default: process.env.OPENAI_API_KEY. */
  apiKey?: string;
  fetch?: typeof fetch;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A counting semaphore: at most `limit` holders at once, FIFO. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await job();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** A failure worth another attempt: rate limit, server error, connection cut. */
class Retryable extends Error {
  constructor(
    message: string,
    readonly retryAfter: string | null = null,
  ) {
    super(message);
  }
}

export class OpenAiClient {
  readonly baseUrl: string;
  private readonly limiter: Limiter;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly apiKey: string | undefined;
  private readonly fetchImpl: typeof fetch;
  /** Attempts that failed and were retried (for reports and tests). */
  retried = 0;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.limiter = new Limiter(Math.max(1, options.concurrency ?? 4));
    this.retries = options.retries ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 600_000;
    const key = options.apiKey ?? process.env.OPENAI_API_KEY;
    this.apiKey = key ? key : undefined;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** POST `body` to baseUrl + route and return the parsed JSON answer. */
  post(route: string, body: unknown): Promise<Record<string, unknown>> {
    return this.limiter.run(() => this.withRetries(route, body));
  }

  private async withRetries(route: string, body: unknown): Promise<Record<string, unknown>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attempt(route, body);
      } catch (e) {
        if (!(e instanceof Retryable)) throw e;
        if (attempt >= this.retries) {
          throw new MoeforgeError('remote_error', `${e.message} (gave up after ${attempt + 1} attempts)`, { path: this.baseUrl + route });
        }
        this.retried++;
        const seconds = e.retryAfter === null ? NaN : Number(e.retryAfter);
        const delay = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : this.baseDelayMs * 2 ** attempt;
        await sleep(Math.min(delay, this.maxDelayMs));
      }
    }
  }

  private async attempt(route: string, body: unknown): Promise<Record<string, unknown>> {
    const url = this.baseUrl + route;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs) });
      // Reading the body is where a connection cut mid-answer shows ("terminated").
      text = await res.text();
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Retryable(`connection failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    if (res.status === 429 || res.status >= 500) throw new Retryable(`server answered ${res.status}${detail(text)}`, res.headers.get('retry-after'));
    if (!res.ok) {
      const hint = res.status === 401 || res.status === 403 ? (this.apiKey ? ' (check OPENAI_API_KEY)' : ' (set OPENAI_API_KEY)') : '';
      throw new MoeforgeError('remote_error', `server answered ${res.status}${detail(text)}${hint}`, { path: url });
    }
    try {
      const json: unknown = JSON.parse(text);
      if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw new MoeforgeError('remote_error', `the answer is not a JSON object: ${text.slice(0, 80)}`, { path: url });
  }
}

/** The server's own error message, if it sent OpenAI's error object (or vLLM's / TGI's flat `message` / `error`). */
function detail(text: string): string {
  let body: { error?: { message?: unknown } | string; message?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return '';
  }
  const m = typeof body?.error === 'object' ? body.error?.message : (body?.error ?? body?.message);
  return typeof m === 'string' && m ? `: ${m.split('\n')[0]!.slice(0, 300)}` : '';
}
