// safetensors I/O against plain `fs` on the same bytes (issue 2, item 8).
//
// For a generated file of 1 GiB (4 tensors of 256 MiB) and one of 0.5 GiB:
// - write: SafetensorsWriter (header + one write per tensor) vs a plain
//   FileHandle writing the same header bytes and the same 256 MiB buffers;
// - read: SafetensorsReader.readRaw tensor by tensor vs a plain sequential
//   FileHandle read of the whole file in the same 256 MiB pieces into a fresh
//   buffer per piece (readRaw returns one per tensor); and readRawInto with one
//   reused buffer vs the plain read into one reused buffer.
// Throughputs are medians over the rounds (writes 4, reads 8).
// Every measurement runs in its own child process, so its peak RSS
// (`process.resourceUsage().maxRSS`) is that operation's alone. The page cache
// cannot be dropped here, so reads follow a warm-up read (all from cache) and
// the order of the contenders alternates between rounds; each written file is
// fdatasync'ed outside the timed region before the next round.

import { execFile } from 'node:child_process';
import { open, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SafetensorsReader } from '../../core/safetensors/reader.js';
import { SafetensorsWriter, encodeHeader, type TensorSpec } from '../../core/safetensors/writer.js';
import type { PerfSuite } from './run.js';

const MiB = 1 << 20;
const TENSOR_BYTES = 256 * MiB;

type Phase = 'write-moeforge' | 'write-plain' | 'read-moeforge' | 'read-moeforge-into' | 'read-plain' | 'read-plain-reuse';

interface ChildArgs {
  phase: Phase;
  file: string;
  tensors: number;
}

interface ChildResult {
  seconds: number;
  bytes: number;
  maxRssBytes: number;
}

function specsFor(tensors: number): TensorSpec[] {
  // F32 [65536, 1024] = 256 MiB each, named like decoder weights.
  return Array.from({ length: tensors }, (_, i) => ({
    name: `model.layers.${i}.mlp.down_proj.weight`,
    dtype: 'F32' as const,
    shape: [65536, TENSOR_BYTES / 4 / 65536],
  }));
}

const METADATA = { format: 'pt' };

/** 256 MiB of xorshift noise (not zeros, so nothing along the way can shortcut it). */
function sourceBuffer(): Uint8Array {
  const buf = new Uint8Array(Buffer.allocUnsafeSlow(TENSOR_BYTES).buffer, 0, TENSOR_BYTES);
  const u32 = new Uint32Array(buf.buffer);
  let x = 2463534242;
  for (let i = 0; i < u32.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u32[i] = x >>> 0;
  }
  return buf;
}

async function plainWriteAll(fh: Awaited<ReturnType<typeof open>>, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done)).bytesWritten;
}

async function plainReadInto(fh: Awaited<ReturnType<typeof open>>, dst: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < dst.byteLength) {
    const { bytesRead } = await fh.read(dst, done, dst.byteLength - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * The consumer is done with a tensor: collect now (children run with --expose-gc), so peak RSS shows what
 * the code under test holds rather than how late V8 gets round to freeing 256 MiB external buffers. Called
 * the same way in every contender, inside the timing.
 */
function release(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * A consumer that uses a tensor inside a function and keeps nothing: only the length leaves it. (Held in
 * the loop itself, the last awaited buffer can stay in the suspended async frame across the next read.)
 */
async function consume(read: () => Promise<Uint8Array>): Promise<number> {
  const bytes = await read();
  return bytes.byteLength;
}

/** One measured operation, in a child process. */
async function childMain(args: ChildArgs): Promise<ChildResult> {
  const specs = specsFor(args.tensors);
  const src = args.phase.startsWith('write') ? sourceBuffer() : undefined;
  const header = encodeHeader(specs, METADATA);
  let bytes = 0;
  const t0 = performance.now();
  switch (args.phase) {
    case 'write-moeforge': {
      const w = await SafetensorsWriter.create(args.file, specs, METADATA);
      for (let i = 0; i < specs.length; i++) await w.write(src!);
      await w.close();
      release();
      bytes = header.byteLength + specs.length * TENSOR_BYTES;
      break;
    }
    case 'write-plain': {
      const fh = await open(args.file, 'w');
      await plainWriteAll(fh, header);
      for (let i = 0; i < specs.length; i++) await plainWriteAll(fh, src!);
      await fh.close();
      release();
      bytes = header.byteLength + specs.length * TENSOR_BYTES;
      break;
    }
    case 'read-moeforge': {
      const r = await SafetensorsReader.open(args.file);
      for (const name of r.tensors.keys()) {
        bytes += await consume(() => r.readRaw(name));
        release();
      }
      bytes += r.dataStart;
      await r.close();
      break;
    }
    case 'read-moeforge-into': {
      const r = await SafetensorsReader.open(args.file);
      const dst = new Uint8Array(TENSOR_BYTES);
      for (const name of r.tensors.keys()) {
        bytes += await consume(() => r.readRawInto(name, dst));
        release();
      }
      bytes += r.dataStart;
      await r.close();
      break;
    }
    case 'read-plain':
    case 'read-plain-reuse': {
      // Sequential: the header bytes first, then the rest in tensor-sized pieces.
      const fh = await open(args.file, 'r');
      const size = (await fh.stat()).size;
      let pos = await plainReadInto(fh, new Uint8Array(header.byteLength), 0);
      const reused = args.phase === 'read-plain-reuse' ? new Uint8Array(TENSOR_BYTES) : undefined;
      while (pos < size) {
        const n = Math.min(TENSOR_BYTES, size - pos);
        pos += await consume(async () => {
          const dst = reused ? reused.subarray(0, n) : new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
          await plainReadInto(fh, dst, pos);
          return dst;
        });
        release();
      }
      await fh.close();
      bytes = pos;
      break;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, bytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
}

const SELF = fileURLToPath(import.meta.url);

function runChild(args: ChildArgs): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...process.execArgv.filter((a) => a !== '--expose-gc'), '--expose-gc', SELF, '--io-child', JSON.stringify(args)],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${args.phase} failed: ${stderr || err.message}`));
        const r = JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
        if (process.env['MOEFORGE_BENCH_VERBOSE']) {
          console.error(`  ${args.phase} ${args.tensors}: ${mibps(r).toFixed(0)} MiB/s, RSS ${(r.maxRssBytes / MiB).toFixed(0)} MiB`);
        }
        resolve(r);
      },
    );
  });
}

async function datasync(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  await fh.datasync();
  await fh.close();
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = new Uint8Array(16 * MiB);
    const bb = new Uint8Array(16 * MiB);
    for (let pos = 0; ; pos += ba.byteLength) {
      const [na, nb] = await Promise.all([plainReadInto(fa, ba, pos), plainReadInto(fb, bb, pos)]);
      if (na !== nb || Buffer.compare(ba.subarray(0, na), bb.subarray(0, nb)) !== 0) return false;
      if (na < ba.byteLength) return true;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

const mibps = (r: ChildResult) => r.bytes / MiB / r.seconds;
/** Median: robust to the odd round slowed by a neighbour on this shared machine. */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const maxOf = (xs: number[]) => Math.max(...xs);

async function measureSize(dir: string, tensors: number, rows: Record<string, number | string>): Promise<void> {
  const label = `${(tensors * TENSOR_BYTES) / (1 << 30)} GiB`;
  const mf = path.join(dir, 'moeforge.safetensors');
  const plain = path.join(dir, 'plain.safetensors');
  const results: Record<Phase, ChildResult[]> = {
    'write-moeforge': [],
    'write-plain': [],
    'read-moeforge': [],
    'read-moeforge-into': [],
    'read-plain': [],
    'read-plain-reuse': [],
  };

  // Writes: four rounds, order alternated. Each contender writes a new file (its previous one removed
  // first, outside the timing) and the file is synced to disk outside the timing, so neither inherits
  // the other's dirty pages.
  for (let round = 0; round < 4; round++) {
    const order: Phase[] = round % 2 === 0 ? ['write-moeforge', 'write-plain'] : ['write-plain', 'write-moeforge'];
    for (const phase of order) {
      const file = phase === 'write-moeforge' ? mf : plain;
      await rm(file, { force: true });
      results[phase].push(await runChild({ phase, file, tensors }));
      await datasync(file);
    }
    if (round === 0 && !(await sameBytes(mf, plain))) throw new Error('moeforge and plain writes differ');
  }
  await rm(plain, { force: true });

  // Reads of the moeforge-written file: a warm-up, then rounds in rotating order (each contender first once).
  await runChild({ phase: 'read-plain-reuse', file: mf, tensors });
  const readers: Phase[] = ['read-moeforge', 'read-plain', 'read-moeforge-into', 'read-plain-reuse'];
  for (let round = 0; round < 8; round++) {
    const k = round % readers.length;
    const rotated = [...readers.slice(k), ...readers.slice(0, k)];
    const order = round < readers.length ? rotated : rotated.reverse();
    for (const phase of order) results[phase].push(await runChild({ phase, file: mf, tensors }));
  }
  await rm(mf, { force: true });

  const tp = (p: Phase) => median(results[p].map(mibps));
  const rss = (p: Phase) => maxOf(results[p].map((r) => r.maxRssBytes)) / MiB;
  rows[`${label} read  moeforge MiB/s`] = tp('read-moeforge');
  rows[`${label} read  plain fs (fresh buffers) MiB/s`] = tp('read-plain');
  rows[`${label} read  plain fs (one buffer) MiB/s`] = tp('read-plain-reuse');
  rows[`${label} read  moeforge readRawInto (one buffer) MiB/s`] = tp('read-moeforge-into');
  rows[`${label} read  ratio readRaw / plain fresh buffers`] = tp('read-moeforge') / tp('read-plain');
  rows[`${label} read  ratio readRawInto / plain one buffer`] = tp('read-moeforge-into') / tp('read-plain-reuse');
  rows[`${label} read  ratio readRaw / plain one buffer`] = tp('read-moeforge') / tp('read-plain-reuse');
  rows[`${label} write moeforge MiB/s`] = tp('write-moeforge');
  rows[`${label} write plain fs MiB/s`] = tp('write-plain');
  rows[`${label} write ratio`] = tp('write-moeforge') / tp('write-plain');
  rows[`${label} peak RSS read  readRaw / readRawInto / plain fresh / plain one MiB`] = [
    'read-moeforge',
    'read-moeforge-into',
    'read-plain',
    'read-plain-reuse',
  ]
    .map((p) => rss(p as Phase).toFixed(0))
    .join(' / ');
  rows[`${label} peak RSS write moeforge / plain MiB`] = `${rss('write-moeforge').toFixed(0)} / ${rss('write-plain').toFixed(0)}`;
}

export const suite: PerfSuite = {
  name: 'safetensors-io',
  description:
    'SafetensorsReader/Writer vs plain fs on the same bytes (256 MiB tensors, page cache warm, order alternated; peak RSS per operation in its own process)',
  async run() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'moeforge-bench-io-'));
    const rows: Record<string, number | string> = {};
    try {
      const sizes = (process.env['MOEFORGE_BENCH_IO_TENSORS'] ?? '4,2').split(',').map(Number);
      for (const tensors of sizes) await measureSize(dir, tensors, rows);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    rows['node'] = process.version;
    rows['cores'] = os.cpus().length;
    return rows;
  },
};

if (process.argv[2] === '--io-child' && process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  childMain(JSON.parse(process.argv[3]!) as ChildArgs)
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
}

