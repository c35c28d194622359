// Model references in recipes and on the command line: a local path or a Hub repo
// id `org/name`, optionally `@revision` (branch, tag or commit).
import { existsSync } from 'node:fs';
import { MoeforgeError } from '../errors.js';

export interface HubRef {
  /** `org/name` (or a bare canonical name such as `gpt2`). */
  repo: string;
  /** Branch, tag or commit; `main` when the reference names none. */
  revision: string;
  /** Whether the reference spelled a revision. */
  explicitRevision: boolean;
}

/**
 * A reference is local when it exists on disk, or is spelled like a path: starts with
 * `./`, `../`, `/` or `~`, holds a backslash, or starts with a drive letter.
 */
export function isLocalRef(ref: string): boolean {
  if (ref === '.' || ref === '..') return true;
  if (/^(\.{1,2}\/|\/|~)/.test(ref) || ref.includes('\\') || /^[A-Za-z]:/.test(ref)) return true;
  return existsSync(ref);
}

// huggingface_hub's validate_repo_id: `^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$`, no `--`
// or `..`, not ending in `.git` (huggingface_hub/utils/_validators.py).
const REPO_ID = /^(\b[\w\-.]+\b\/)?\b[\w\-.]{1,96}\b$/;

export function isHubRepoId(id: string): boolean {
  return REPO_ID.test(id) && !id.includes('--') && !id.includes('..') && !id.endsWith('.git');
}

/** Parses `org/name[@rev]`; undefined when the reference is local or not a valid repo id. */
export function tryParseHubRef(ref: string): HubRef | undefined {
  if (isLocalRef(ref)) return undefined;
  const at = ref.indexOf('@');
  const repo = at < 0 ? ref : ref.slice(0, at);
  const revision = at < 0 ? '' : ref.slice(at + 1);
  if (!isHubRepoId(repo)) return undefined;
  if (at >= 0 && (revision === '' || /\s/.test(revision) || revision.split('/').includes('..'))) return undefined;
  return { repo, revision: revision || 'main', explicitRevision: at >= 0 };
}

export function parseHubRef(ref: string): HubRef {
  const parsed = tryParseHubRef(ref);
  if (!parsed) {
    throw new MoeforgeError(
      'invalid_argument',
      'not a Hub model reference: expected org/name or org/name@revision (or an existing local folder)',
      { path: ref },
    );
  }
  return parsed;
}

export const COMMIT_HASH = /^[0-9a-f]{40}$/;
