// The Hugging Face cache layout shared with Python's huggingface_hub
// (huggingface_hub/file_download.py) and @huggingface/hub (cache-management.ts):
//   <cache>/models--org--name/blobs/<sha256 for LFS files | git sha1 otherwise>
//   <cache>/models--org--name/refs/<revision>          (the commit, no newline)
//   <cache>/models--org--name/snapshots/<commit>/<path> (a RELATIVE symlink to the blob)
// so a model either client downloaded is reused by the other.
import { mkdir, readFile, rm, stat, symlink, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fsError } from '../errors.js';
import { COMMIT_HASH } from './model-ref.js';
import { safeJoin } from './safe-path.js';

export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

export class RepoCache {
  readonly root: string;
  constructor(
    cacheDir: string,
    readonly repo: string,
  ) {
    this.root = path.join(cacheDir, repoFolderName(repo));
  }

  blobPath(etag: string): string {
    return path.join(this.root, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return path.join(this.root, 'snapshots', commit);
  }

  /** The snapshot entry for a remote file name, checked to stay inside the snapshot. */
  snapshotFile(commit: string, name: string): string {
    return safeJoin(this.snapshotDir(commit), name, this.repo);
  }

  refPath(revision: string): string {
    return safeJoin(path.join(this.root, 'refs'), revision, this.repo);
  }

  /** The commit a revision points to in the cache: itself for a commit hash, else refs/<rev>. */
  async resolveCached(revision: string): Promise<string | undefined> {
    if (COMMIT_HASH.test(revision)) return revision;
    try {
      const commit = (await readFile(this.refPath(revision), 'utf8')).trim();
      return COMMIT_HASH.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const file = this.refPath(revision);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, commit); // no trailing newline, as Python writes it
    } catch (e) {
      throw fsError(e, file, 'write the revision ref');
    }
  }

  /** Points snapshots/<commit>/<name> at blobs/<etag> with a relative symlink (a copy where links fail). */
  async link(commit: string, name: string, etag: string): Promise<string> {
    const dest = this.snapshotFile(commit, name);
    const blob = this.blobPath(etag);
    try {
      await mkdir(path.dirname(dest), { recursive: true });
      await rm(dest, { force: true });
      try {
        await symlink(path.relative(path.dirname(dest), blob), dest);
      } catch {
        await copyFile(blob, dest); // filesystems without symlinks (Python does the same)
      }
    } catch (e) {
      throw fsError(e, dest, 'link the cached file');
    }
    return dest;
  }
}

/** Size of a file (following links), or undefined when absent. */
export async function fileSize(file: string): Promise<number | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}
