// Maps failures of the Hub client (HubApiError with a status code, fetch network
// errors) to MoeforgeError codes, and keeps the token out of every message.
import { MoeforgeError } from '../errors.js';

/** Replaces every occurrence of the token (and anything shaped like an hf_ token) with `hf_***`. */
export function redact(text: string, token?: string): string {
  let out = token ? text.split(token).join('hf_***') : text;
  out = out.replace(/hf_[A-Za-z0-9]{8,}/g, 'hf_***');
  return out;
}

interface StatusError {
  statusCode: number;
  message: string;
}

function statusOf(e: unknown): number | undefined {
  const s = (e as Partial<StatusError> | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

export interface HubErrorContext {
  /** What was asked for, e.g. `org/name@main` or `org/name/config.json`. */
  path: string;
  /** Whether the request carried a token (401 means different things with and without). */
  hadToken: boolean;
  token?: string;
}

/**
 * The real Hub answers 401 to an anonymous caller both for a private/gated repo and
 * for one that does not exist (it does not reveal which), 401 to an invalid token,
 * and 404 (X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound) otherwise.
 */
export function toHubError(e: unknown, ctx: HubErrorContext): MoeforgeError {
  if (e instanceof MoeforgeError) {
    return e.message.includes('hf_')
      ? new MoeforgeError(e.code, redact(e.message, ctx.token), { path: e.path, cause: e.cause })
      : e;
  }
  const status = statusOf(e);
  const detail = redact(firstSentence((e as Error | undefined)?.message ?? String(e)), ctx.token);
  const opts = { path: ctx.path, cause: e };
  if (status === 401 || status === 403) {
    const msg = ctx.hadToken
      ? `the Hub refused the token (${status}): it is invalid or lacks access to this repository`
      : 'the Hub requires a token: the repository is private or gated, or does not exist (set HF_TOKEN or run huggingface-cli login)';
    return new MoeforgeError('hub_unauthorized', msg, opts);
  }
  if (status === 404) return new MoeforgeError('hub_not_found', `not found on the Hub: ${detail}`, opts);
  if (status !== undefined) return new MoeforgeError('hub_error', `the Hub answered ${status}: ${detail}`, opts);
  return new MoeforgeError('hub_error', `cannot reach the Hub: ${detail}`, opts);
}

/** The client appends `. URL: …` to messages; keep the first clause for a one-line error. */
function firstSentence(message: string): string {
  const cut = message.indexOf('. URL:');
  return (cut >= 0 ? message.slice(0, cut) : message).replace(/\s+/g, ' ').trim();
}
