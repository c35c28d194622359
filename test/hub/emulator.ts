// A Hugging Face Hub emulator for tests: a node:http server on 127.0.0.1 (random
// port) over in-memory repos with branches, tags and commits, speaking the
// endpoints @huggingface/hub uses (DESIGN.md §6) for download and upload, with the
// real Hub's auth behaviour (401 to anonymous callers for private AND unknown repos)
// and fault injection (500s, a connection cut mid-file, corrupted bytes, a malicious
// tree listing). Every request is logged so tests can assert what went over the wire.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface EmuUser {
  name: string;
  token: string;
  orgs?: string[];
}

export interface EmuFile {
  data: Buffer;
  lfs: boolean;
  sha256: string;
  /** git blob sha1 of what git stores: the content, or the LFS pointer for LFS files. */
  gitOid: string;
  pointerSize: number;
}

interface Commit {
  oid: string;
  parent: string | undefined;
  title: string;
  files: Map<string, EmuFile>;
}

interface Repo {
  id: string;
  private: boolean;
  commits: Map<string, Commit>;
  branches: Map<string, string>;
  tags: Map<string, string>;
}

export interface LogEntry {
  method: string;
  /** Path and query, e.g. `/org/m/resolve/<sha>/model.safetensors`. */
  url: string;
  host: string;
  range: string | undefined;
  authorized: boolean;
  status: number;
  /** For file requests (resolve, CDN): the file name, and whether bytes were served (not a redirect). */
  file?: string;
  bytes?: boolean;
}

interface Faults {
  fail500: { remaining: number; match: RegExp }[];
  cut: { file: string; atByte: number; remaining: number }[];
  corrupt: Set<string>;
  malicious: Set<string>;
}

const LFS_NAMES = /\.(safetensors|bin|pt|pth|pkl|model|gguf|h5|msgpack|onnx)$/;
const LFS_MIN_SIZE = 10 * 1024 * 1024;

function sha(algo: 'sha1' | 'sha256', ...parts: (string | Buffer)[]): string {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export function makeFile(content: Buffer | string, forceLfs?: boolean): EmuFile {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
  const sha256 = sha('sha256', data);
  const lfs = forceLfs ?? false;
  const stored = lfs ? Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${data.length}\n`) : data;
  return { data, lfs, sha256, gitOid: sha('sha1', `blob ${stored.length}\0`, stored), pointerSize: lfs ? stored.length : 0 };
}

function isLfsName(name: string, size: number): boolean {
  return LFS_NAMES.test(name) || size >= LFS_MIN_SIZE;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorCode?: string,
  ) {
    super(message);
  }
}

export class HubEmulator {
  readonly log: LogEntry[] = [];
  private readonly repos = new Map<string, Repo>();
  private readonly users: EmuUser[];
  /** LFS objects uploaded through the basic transfer, by sha256. */
  private readonly lfsStore = new Map<string, Buffer>();
  private readonly faults: Faults = { fail500: [], cut: [], corrupt: new Set(), malicious: new Set() };
  private commitCounter = 0;
  /** LFS objects reachable through the emulated CDN after a resolve redirected there. */
  private readonly cdn = new Map<string, { name: string; file: EmuFile; commit: string }>();
  /** Answer LFS resolves with a 302 to /cdn/<sha256>, as the real Hub does (default on). */
  redirectLfs = true;
  private readonly entries = new WeakMap<http.IncomingMessage, LogEntry>();

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    users: EmuUser[],
  ) {
    this.users = users;
  }

  static async start(options: { users?: EmuUser[] } = {}): Promise<HubEmulator> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const emu = new HubEmulator(server, `http://127.0.0.1:${port}`, options.users ?? []);
    server.on('request', (req, res) => void emu.handle(req, res));
    return emu;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // -------------------------------------------------------------------------
  // Seeding repos

  createRepo(id: string, options: { private?: boolean } = {}): void {
    if (this.repos.has(id)) throw new Error(`emulator: repo ${id} exists`);
    const repo: Repo = { id, private: options.private ?? false, commits: new Map(), branches: new Map(), tags: new Map() };
    this.repos.set(id, repo);
    this.addCommit(repo, 'main', new Map([['.gitattributes', makeFile('*.safetensors filter=lfs diff=lfs merge=lfs -text\n')]]), 'initial commit');
  }

  /** Commits files (content or a local file to read) to a branch; returns the commit oid. */
  commit(id: string, files: Record<string, Buffer | string>, options: { branch?: string; message?: string } = {}): string {
    const repo = this.repo(id);
    const branch = options.branch ?? 'main';
    const head = repo.branches.get(branch);
    if (!head) throw new Error(`emulator: no branch ${branch}`);
    const next = new Map(repo.commits.get(head)!.files);
    for (const [name, content] of Object.entries(files)) {
      const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
      next.set(name, makeFile(data, isLfsName(name, data.length)));
    }
    return this.addCommit(repo, branch, next, options.message ?? `upload ${Object.keys(files).length} files`);
  }

  /** Commits every file under a local folder (recursively). */
  async commitFolder(id: string, folder: string, options: { branch?: string; message?: string } = {}): Promise<string> {
    const files: Record<string, Buffer> = {};
    for (const e of await readdir(folder, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const full = path.join(e.parentPath, e.name);
      files[path.relative(folder, full).split(path.sep).join('/')] = await readFile(full);
    }
    return this.commit(id, files, options);
  }

  branch(id: string, name: string, from: string): void {
    const repo = this.repo(id);
    repo.branches.set(name, this.resolveRev(repo, from));
  }

  tag(id: string, name: string, from: string): void {
    const repo = this.repo(id);
    repo.tags.set(name, this.resolveRev(repo, from));
  }

  head(id: string, branch = 'main'): string {
    return this.resolveRev(this.repo(id), branch);
  }

  /** The files of a revision, as bytes (to compare what a push stored). */
  files(id: string, rev = 'main'): Map<string, Buffer> {
    const repo = this.repo(id);
    const c = repo.commits.get(this.resolveRev(repo, rev))!;
    return new Map([...c.files].map(([k, f]) => [k, f.data]));
  }

  fileInfo(id: string, name: string, rev = 'main'): EmuFile | undefined {
    const repo = this.repo(id);
    return repo.commits.get(this.resolveRev(repo, rev))!.files.get(name);
  }

  hasRepo(id: string): boolean {
    return this.repos.has(id);
  }

  isPrivate(id: string): boolean {
    return this.repo(id).private;
  }

  // -------------------------------------------------------------------------
  // Fault injection

  /** The next `count` requests whose path matches answer 500. */
  fail500(count: number, match: RegExp = /./): void {
    this.faults.fail500.push({ remaining: count, match });
  }

  /** The next `times` downloads of `file` drop the connection once byte `atByte` of the file is sent. */
  cutAfter(file: string, atByte: number, times = 1): void {
    this.faults.cut.push({ file, atByte, remaining: times });
  }

  /** Serves `file` with one byte flipped (same size, wrong sha). */
  corrupt(file: string): void {
    this.faults.corrupt.add(file);
  }

  /** Tree listings of this repo also name `../evil` and `/etc/x`. */
  maliciousListing(id: string): void {
    this.faults.malicious.add(id);
  }

  /** Removes every injected fault. */
  clearFaults(): void {
    this.faults.fail500.length = 0;
    this.faults.cut.length = 0;
    this.faults.corrupt.clear();
    this.faults.malicious.clear();
  }

  clearLog(): void {
    this.log.length = 0;
  }

  /** Logged requests that served bytes of `file` (resolve or CDN; redirects excluded). */
  byteRequests(file: string): LogEntry[] {
    return this.log.filter((l) => l.file === file && l.bytes);
  }

  // -------------------------------------------------------------------------
  // Internals

  private repo(id: string): Repo {
    const r = this.repos.get(id);
    if (!r) throw new Error(`emulator: no repo ${id}`);
    return r;
  }

  private addCommit(repo: Repo, branch: string, files: Map<string, EmuFile>, title: string): string {
    const parent = repo.branches.get(branch);
    const oid = sha('sha1', `${repo.id}\n${parent ?? ''}\n${title}\n${this.commitCounter++}\n`, ...[...files].map(([k, f]) => `${k}:${f.gitOid}\n`));
    repo.commits.set(oid, { oid, parent, title, files });
    repo.branches.set(branch, oid);
    return oid;
  }

  private resolveRev(repo: Repo, rev: string): string {
    if (repo.commits.has(rev)) return rev;
    const oid = repo.branches.get(rev) ?? repo.tags.get(rev);
    if (!oid) throw new HttpError(404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    return oid;
  }

  private user(req: http.IncomingMessage): EmuUser | undefined {
    const auth = req.headers.authorization;
    if (!auth) return undefined;
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    const user = this.users.find((u) => u.token === token);
    if (!user) throw new HttpError(401, 'Invalid credentials in Authorization header');
    return user;
  }

  private canWrite(user: EmuUser | undefined, id: string): boolean {
    const ns = id.split('/')[0];
    return !!user && (user.name === ns || (user.orgs ?? []).includes(ns!));
  }

  /** The real Hub hides private repos: 401 for anonymous callers, 404 for others. */
  private readable(req: http.IncomingMessage, id: string): Repo {
    const user = this.user(req);
    const repo = this.repos.get(id);
    if (!repo || (repo.private && !this.canWrite(user, id))) {
      throw new HttpError(user ? 404 : 401, 'Repository not found', 'RepoNotFound');
    }
    return repo;
  }

  private writable(req: http.IncomingMessage, id: string): Repo {
    const user = this.user(req);
    if (!user) throw new HttpError(401, 'You must be authenticated to write');
    const repo = this.repos.get(id);
    if (!repo) throw new HttpError(404, 'Repository not found', 'RepoNotFound');
    if (!this.canWrite(user, id)) throw new HttpError(403, `You don't have the rights to write to ${id}`);
    return repo;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const entry: LogEntry = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      host: req.headers.host ?? '',
      range: req.headers.range,
      authorized: !!req.headers.authorization,
      status: 0,
    };
    this.log.push(entry);
    this.entries.set(req, entry);
    res.on('finish', () => (entry.status = res.statusCode));
    res.on('close', () => (entry.status ||= res.statusCode));
    try {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const fault = this.faults.fail500.find((f) => f.remaining > 0 && f.match.test(u.pathname));
      if (fault) {
        fault.remaining--;
        throw new HttpError(500, 'Internal Error (injected)');
      }
      await this.route(req, res, u);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const err = e instanceof HttpError ? e : new HttpError(500, String((e as Error)?.stack ?? e));
      res.statusCode = err.status;
      res.setHeader('Content-Type', 'application/json');
      if (err.errorCode) res.setHeader('X-Error-Code', err.errorCode);
      res.setHeader('X-Error-Message', err.message);
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: err.message }));
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, u: URL): Promise<void> {
    const p = u.pathname.split('/').map((s) => decodeURIComponent(s));
    const method = req.method ?? 'GET';
    // p[0] is '' (leading slash)
    if (p[1] === 'api') {
      if (p[2] === 'whoami-v2' && method === 'GET') {
        const user = this.user(req);
        if (!user) throw new HttpError(401, 'Invalid username or password.');
        return json(res, 200, {
          type: 'user',
          id: sha('sha1', user.name).slice(0, 24),
          name: user.name,
          fullname: user.name,
          orgs: (user.orgs ?? []).map((name) => ({ type: 'org', name })),
          auth: { type: 'access_token', accessToken: { displayName: 'test', role: 'write', createdAt: new Date(0).toISOString() } },
        });
      }
      if (p[2] === 'repos' && p[3] === 'create' && method === 'POST') return this.createRepoRoute(req, res);
      if (p[2] === 'models' && p.length >= 6) {
        const id = `${p[3]}/${p[4]}`;
        const action = p[5];
        const rest = p.slice(6);
        if (action === 'revision' && method === 'GET') return this.revisionRoute(req, res, id, rest.join('/'));
        if (action === 'tree' && method === 'GET') return this.treeRoute(req, res, id, rest[0] ?? 'main', rest.slice(1).join('/'), u);
        if (action === 'paths-info' && method === 'POST') return this.pathsInfoRoute(req, res, id, rest.join('/'));
        if (action === 'preupload' && method === 'POST') return this.preuploadRoute(req, res, id, rest.join('/'));
        if (action === 'commit' && method === 'POST') return this.commitRoute(req, res, id, rest.join('/'));
        if (action === 'branch' && method === 'POST') return this.branchRoute(req, res, id, rest.join('/'));
      }
    }
    if (p[1] === 'lfs-upload' && method === 'PUT' && p[2]) return this.lfsPutRoute(req, res, p[2]);
    if (p[2]?.endsWith('.git') && p.slice(3).join('/') === 'info/lfs/objects/batch' && method === 'POST') {
      return this.lfsBatchRoute(req, res, `${p[1]}/${p[2].slice(0, -4)}`);
    }
    if (p[1] === 'cdn' && p[2] && (method === 'GET' || method === 'HEAD')) {
      const served = this.cdn.get(p[2]);
      if (!served) throw new HttpError(404, 'no such object');
      return this.serveBytes(req, res, served.name, served.file, served.commit);
    }
    if (p[3] === 'resolve' && (method === 'GET' || method === 'HEAD') && p.length >= 6) {
      return this.resolveRoute(req, res, `${p[1]}/${p[2]}`, p[4]!, p.slice(5).join('/'));
    }
    throw new HttpError(404, `no route for ${method} ${u.pathname}`);
  }

  private revisionRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string): void {
    const repo = this.readable(req, id);
    const commit = repo.commits.get(this.resolveRev(repo, rev === 'HEAD' ? 'main' : rev))!;
    json(res, 200, {
      _id: sha('sha1', id).slice(0, 24),
      id,
      sha: commit.oid,
      private: repo.private,
      gated: false,
      disabled: false,
      downloads: 0,
      likes: 0,
      lastModified: new Date(0).toISOString(),
      tags: [],
      siblings: [...commit.files.keys()].map((rfilename) => ({ rfilename })),
    });
  }

  private treeEntries(repo: Repo, commit: Commit, names: string[]): object[] {
    return names.map((name) => {
      const f = commit.files.get(name)!;
      return {
        type: 'file',
        oid: f.gitOid,
        size: f.data.length,
        path: name,
        ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: f.pointerSize } } : {}),
      };
    });
  }

  private treeRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string, sub: string, u: URL): void {
    const repo = this.readable(req, id);
    const commit = repo.commits.get(this.resolveRev(repo, rev))!;
    const recursive = u.searchParams.get('recursive') === 'true';
    const prefix = sub ? `${sub}/` : '';
    const names = [...commit.files.keys()].filter((n) => n.startsWith(prefix)).sort();
    const files = names.filter((n) => recursive || !n.slice(prefix.length).includes('/'));
    const dirs = new Set<string>();
    for (const n of names) {
      const parts = n.slice(prefix.length).split('/');
      for (let i = 1; i < parts.length; i++) if (recursive || i === 1) dirs.add(prefix + parts.slice(0, i).join('/'));
    }
    const out: object[] = [
      ...[...dirs].sort().map((d) => ({ type: 'directory', oid: sha('sha1', d), size: 0, path: d })),
      ...this.treeEntries(repo, commit, files),
    ];
    if (this.faults.malicious.has(id)) {
      const evil = makeFile('pwned\n');
      for (const bad of ['../evil', '/etc/x']) out.push({ type: 'file', oid: evil.gitOid, size: evil.data.length, path: bad });
    }
    json(res, 200, out);
  }

  private async pathsInfoRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string): Promise<void> {
    const repo = this.readable(req, id);
    const commit = repo.commits.get(this.resolveRev(repo, rev))!;
    const body = JSON.parse((await readBody(req)).toString() || '{}') as { paths?: string[] };
    const names = (body.paths ?? []).filter((n) => commit.files.has(n));
    json(res, 200, this.treeEntries(repo, commit, names));
  }

  private resolveRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string, name: string): void {
    const repo = this.readable(req, id);
    const commit = repo.commits.get(this.resolveRev(repo, rev))!;
    const file = commit.files.get(name);
    if (!file) throw new HttpError(404, `Entry not found: ${name}`, 'EntryNotFound');
    if (file.lfs && this.redirectLfs) {
      // The real Hub answers an LFS resolve with 302 to its CDN, with the sha256 and
      // size in X-Linked-Etag / X-Linked-Size; the bytes (and Range) come from there.
      this.cdn.set(file.sha256, { name, file, commit: commit.oid });
      Object.assign(this.entries.get(req)!, { file: name, bytes: false });
      res.statusCode = 302;
      res.setHeader('Location', `${this.url}/cdn/${file.sha256}`);
      res.setHeader('ETag', `"${file.sha256}"`);
      res.setHeader('X-Linked-Etag', `"${file.sha256}"`);
      res.setHeader('X-Linked-Size', String(file.data.length));
      res.setHeader('X-Repo-Commit', commit.oid);
      res.end();
      return;
    }
    this.serveBytes(req, res, name, file, commit.oid);
  }

  /** Serves a file's bytes, honouring Range, with the faults injected for its name. */
  private serveBytes(req: http.IncomingMessage, res: http.ServerResponse, name: string, file: EmuFile, commitOid: string): void {
    Object.assign(this.entries.get(req)!, { file: name, bytes: true });
    let data = file.data;
    if (this.faults.corrupt.has(name) && data.length > 0) {
      data = Buffer.from(data);
      data[data.length - 1] = data[data.length - 1]! ^ 0xff;
    }
    const size = data.length;
    let start = 0;
    let end = size - 1;
    let partial = false;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m) throw new HttpError(416, `bad range ${range}`);
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        res.setHeader('Content-Range', `bytes */${size}`);
        throw new HttpError(416, 'Requested Range Not Satisfiable');
      }
      partial = true;
    }
    const etag = file.lfs ? file.sha256 : file.gitOid;
    res.statusCode = partial ? 206 : 200;
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', `"${etag}"`);
    res.setHeader('X-Repo-Commit', commitOid);
    if (file.lfs) {
      res.setHeader('X-Linked-Etag', `"${file.sha256}"`);
      res.setHeader('X-Linked-Size', String(file.data.length));
    }
    if (partial) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Length', String(end - start + 1));
    if (req.method === 'HEAD') return void res.end();
    const cut = this.faults.cut.find((c) => c.file === name && c.remaining > 0 && c.atByte > start && c.atByte <= end);
    if (cut) {
      cut.remaining--;
      // end() on the socket flushes what was written, then closes mid-body (Content-Length says more).
      res.write(data.subarray(start, cut.atByte), () => res.socket?.end());
      return;
    }
    res.end(data.subarray(start, end + 1));
  }

  // --- upload side

  private async createRepoRoute(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const user = this.user(req);
    if (!user) throw new HttpError(401, 'You must be authenticated to create a repo');
    const body = JSON.parse((await readBody(req)).toString()) as { name: string; organization?: string; private?: boolean; visibility?: string; type?: string };
    const id = `${body.organization ?? user.name}/${body.name}`;
    if (!this.canWrite(user, id)) throw new HttpError(403, `You don't have the rights to create a repo under ${id.split('/')[0]}`);
    if (this.repos.has(id)) throw new HttpError(409, 'You already created this model repo');
    this.createRepo(id, { private: body.private ?? body.visibility === 'private' });
    json(res, 200, { url: `${this.url}/${id}`, name: id, id: sha('sha1', id).slice(0, 24) });
  }

  private async branchRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, branch: string): Promise<void> {
    const repo = this.writable(req, id);
    const body = JSON.parse((await readBody(req)).toString() || '{}') as { startingPoint?: string };
    if (repo.branches.has(branch)) throw new HttpError(409, `Reference already exists: ${branch}`);
    repo.branches.set(branch, this.resolveRev(repo, body.startingPoint ?? 'main'));
    json(res, 200, {});
  }

  private async preuploadRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, branch: string): Promise<void> {
    const repo = this.writable(req, id);
    this.resolveRev(repo, branch);
    const body = JSON.parse((await readBody(req)).toString()) as { files: { path: string; size: number }[] };
    json(res, 200, {
      files: body.files.map((f) => ({ path: f.path, uploadMode: isLfsName(f.path, f.size) ? 'lfs' : 'regular', shouldIgnore: false })),
    });
  }

  private async lfsBatchRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    this.writable(req, id);
    const body = JSON.parse((await readBody(req)).toString()) as { operation: string; objects: { oid: string; size: number }[] };
    res.setHeader('Content-Type', 'application/vnd.git-lfs+json');
    json(res, 200, {
      transfer: 'basic',
      objects: body.objects.map((o) => ({
        oid: o.oid,
        size: o.size,
        authenticated: true,
        ...(this.lfsStore.has(o.oid) ? {} : { actions: { upload: { href: `${this.url}/lfs-upload/${o.oid}`, header: {} } } }),
      })),
    });
  }

  private async lfsPutRoute(req: http.IncomingMessage, res: http.ServerResponse, oid: string): Promise<void> {
    const data = await readBody(req);
    if (sha('sha256', data) !== oid) throw new HttpError(400, 'uploaded bytes do not match the oid');
    this.lfsStore.set(oid, data);
    res.setHeader('ETag', `"${oid}"`);
    res.statusCode = 200;
    res.end();
  }

  private async commitRoute(req: http.IncomingMessage, res: http.ServerResponse, id: string, branch: string): Promise<void> {
    const repo = this.writable(req, id);
    const head = this.resolveRev(repo, branch);
    const lines = (await readBody(req)).toString().split('\n').filter(Boolean);
    const next = new Map(repo.commits.get(head)!.files);
    let title = 'commit';
    for (const line of lines) {
      const op = JSON.parse(line) as { key: string; value: Record<string, unknown> };
      if (op.key === 'header') title = String(op.value.summary ?? title);
      else if (op.key === 'file') {
        next.set(String(op.value.path), makeFile(Buffer.from(String(op.value.content), 'base64'), false));
      } else if (op.key === 'lfsFile') {
        const data = this.lfsStore.get(String(op.value.oid));
        if (!data) throw new HttpError(422, `LFS object ${String(op.value.oid)} was not uploaded`);
        next.set(String(op.value.path), makeFile(data, true));
      } else if (op.key === 'deletedFile') next.delete(String(op.value.path));
      else throw new HttpError(400, `unknown commit operation ${op.key}`);
    }
    const oid = this.addCommit(repo, branch, next, title);
    json(res, 200, { success: true, commitOid: oid, commitUrl: `${this.url}/${id}/commit/${oid}` });
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A fresh random `hf_` token for a test user. */
export function testToken(): string {
  return `hf_${randomBytes(16).toString('hex')}`;
}
