// Worker threads for the task-vector kernels. Per chunk, the main thread copies the base and
// model chunks into SharedArrayBuffers; each worker runs the lanes (lane.ts) of the models it
// owns (model j → worker j mod W: selection histograms, masks, rescale are per model), then every
// worker combines one slice of the chunk. Results are identical to the serial path. Pays for
// large tensors only (a job costs a few messages per chunk): see PARALLEL_MIN_ELEMENTS.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MoeforgeError } from '../../core/errors.js';
import type { LaneStage, TaskVectorJob } from './lane.js';

export const PARALLEL_MIN_ELEMENTS = 1 << 21;

let threads = 1;
/** How many tensor merges ran on the workers (tests check the parallel path really ran). */
export let parallelRuns = 0;
let workers: Worker[] = [];
let nextId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();

/** Sets how many worker threads the kernels may use (1 = none, the default). */
export function setMergeThreads(n: number): void {
  threads = Math.max(1, Math.floor(n));
}

export function mergeThreads(): number {
  return threads;
}

export function defaultThreads(): number {
  return Math.max(1, (os.availableParallelism?.() ?? os.cpus().length) - 1);
}

// `.ts` under tsx, `.js` compiled, `.mjs` when bundled: the worker has the same extension.
const EXT = path.extname(fileURLToPath(import.meta.url));

function workerUrl(): URL {
  return new URL(`./kernel-worker${EXT}`, import.meta.url);
}

function ensureWorkers(n: number): Worker[] {
  while (workers.length < n) {
    // From TypeScript sources (tsx, tests) the worker registers tsx's loader first: Node 20 does
    // not carry the parent's `--import tsx` hooks into workers.
    const w =
      EXT === '.ts'
        ? new Worker(
            `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(workerUrl().href)}); });`,
            { eval: true },
          )
        : new Worker(workerUrl());
    w.unref();
    w.on('message', (m: { id: number; result?: unknown; error?: { message: string; code?: string; path?: string } | string }) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error === undefined) p.resolve(m.result);
      else if (typeof m.error === 'object' && m.error.code) {
        p.reject(new MoeforgeError(m.error.code as 'invalid_parameter', m.error.message, { path: m.error.path }));
      } else p.reject(new Error(typeof m.error === 'string' ? m.error : m.error.message));
    });
    w.on('error', (e) => {
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
    workers.push(w);
  }
  return workers.slice(0, n);
}

/** Stops the workers (tests, the end of a CLI run); they are unref'd, so a process exits without it. */
export async function closeMergeWorkers(): Promise<void> {
  const ws = workers;
  workers = [];
  await Promise.all(ws.map((w) => w.terminate()));
}

function call(w: Worker, msg: Record<string, unknown>): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ ...msg, id });
  });
}

export class ParallelTaskVectorRunner {
  private readonly base: Float32Array;
  private readonly models: Float32Array[];
  private readonly out: Float32Array;
  private readonly ws: Worker[];
  private readonly owners: Worker[];
  readonly needsSelection: boolean;

  private constructor(
    private readonly job: TaskVectorJob,
    maxChunk: number,
    count: number,
  ) {
    const m = job.lanes.length;
    const sab = () => new SharedArrayBuffer(maxChunk * 4);
    this.base = new Float32Array(sab());
    this.models = Array.from({ length: m }, () => new Float32Array(sab()));
    this.out = new Float32Array(sab());
    this.ws = ensureWorkers(count);
    this.owners = Array.from({ length: m }, (_, j) => this.ws[j % this.ws.length]!);
    // Magnitude-based sparsification needs the two selection passes (as ModelLane.needsSelection).
    this.needsSelection = job.lanes.some(
      (l) => (l.sparsification === 'magnitude' || l.sparsification === 'magnitude_outliers') && l.params.density < 1,
    );
  }

  static async open(job: TaskVectorJob, maxChunk: number): Promise<ParallelTaskVectorRunner> {
    const r = new ParallelTaskVectorRunner(job, maxChunk, threads);
    parallelRuns++;
    await Promise.all(
      r.ws.map((w) =>
        call(w, {
          op: 'init',
          job,
          owned: r.owners.flatMap((o, j) => (o === w ? [j] : [])),
          base: r.base.buffer,
          models: r.models.map((x) => x.buffer),
          out: r.out.buffer,
        }),
      ),
    );
    return r;
  }

  private broadcast(msg: Record<string, unknown>): Promise<unknown[]> {
    return Promise.all(this.ws.map((w) => call(w, msg)));
  }

  finishHigh = () => this.broadcast({ op: 'finishHigh' });
  select = () => this.broadcast({ op: 'select' });
  reset = () => this.broadcast({ op: 'reset' });
  setScales = (scales: number[]) => this.broadcast({ op: 'scales', scales });
  close = () => this.broadcast({ op: 'close' });

  async chunk(stage: LaneStage, base: Float32Array, models: Float32Array[]): Promise<{ stats?: [number, number][]; out?: Float32Array }> {
    const len = base.length;
    this.base.set(base);
    models.forEach((m, j) => this.models[j]!.set(m));
    const replies = (await this.broadcast({ op: 'lanes', stage, len })) as [number, [number, number] | undefined][][];
    if (stage === 'stats') {
      const stats: [number, number][] = this.job.lanes.map(() => [0, 0]);
      for (const r of replies) for (const [j, s] of r) if (s) stats[j] = s;
      return { stats };
    }
    if (stage !== 'output') return {};
    const per = Math.ceil(len / this.ws.length);
    await Promise.all(
      this.ws.map((w, k) => {
        const from = Math.min(len, k * per);
        const to = Math.min(len, from + per);
        return from < to ? call(w, { op: 'combine', from, to }) : undefined;
      }),
    );
    return { out: this.out.slice(0, len) };
  }
}
