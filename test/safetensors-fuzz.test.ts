// Fuzzing the reader with files derived from the goldens. Mutations that break
// the header or its length must be corrupt_safetensors; mutations that may
// leave a valid file (a bit flipped inside a tensor name or a metadata value,
// a data byte) must then open and read without error. Nothing may crash with
// another error type, hang, or allocate from an unchecked number (a huge
// allocation would surface as a RangeError, which fails the test).

import test from 'ava';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { SafetensorsReader } from '../core/safetensors/reader.js';
import { MoeforgeError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { DTYPE_BYTES, type Dtype } from '../core/dtypes.js';
import { GOLDEN_MODELS, golden, tempDir } from './helpers/paths.js';

type Outcome = 'corrupt' | 'valid';

interface Source {
  name: string;
  bytes: Uint8Array;
  headerLen: number;
  header: Record<string, unknown>;
}

async function loadSources(): Promise<Source[]> {
  const out: Source[] = [];
  for (const m of GOLDEN_MODELS) {
    for (const f of ['expected.safetensors', 'model.safetensors']) {
      const bytes = new Uint8Array(await readFile(path.join(golden(m), f)));
      const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
      const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8')) as Record<string, unknown>;
      out.push({ name: `${m}/${f}`, bytes, headerLen, header });
    }
  }
  return out;
}

function withHeader(src: Source, json: string): Uint8Array {
  const body = Buffer.from(json, 'utf8');
  const data = src.bytes.subarray(8 + src.headerLen);
  const out = new Uint8Array(8 + body.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  out.set(data, 8 + body.length);
  return out;
}

/** Edits of the header JSON that always break a rule. */
function jsonEdit(src: Source, rng: Rng): { bytes: Uint8Array; what: string } {
  const h = structuredClone(src.header) as Record<string, Record<string, unknown>>;
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const name = names[rng.int(names.length)]!;
  const e = h[name]!;
  const offsets = e['data_offsets'] as number[];
  const shape = e['shape'] as number[];
  const kind = rng.int(16);
  switch (kind) {
    case 0: e['dtype'] = ['F12', 'f32', 'FP8', '', 'INT4'][rng.int(5)]; break;
    case 1: e['dtype'] = DTYPE_BYTES[e['dtype'] as Dtype] === 4 ? 'F16' : 'F32'; break; // size no longer matches the offsets
    case 2: shape.push(2 + rng.int(5)); break;
    case 3: e['shape'] = shape.length ? [...shape.slice(0, -1), -shape[shape.length - 1]! - 1] : [-1]; break;
    case 4: e['shape'] = [...shape, 0.5]; break;
    case 5: offsets[1] = offsets[1]! + 1 + rng.int(16); break;
    case 6: offsets[0] = offsets[0]! + 4 * (1 + rng.int(4)); offsets[1] = offsets[1]! + 4 * (1 + rng.int(4)); break;
    case 7: e['data_offsets'] = [offsets[1], offsets[0]! - 1]; break;
    case 8: e['data_offsets'] = [offsets[0]]; break;
    case 9: e['extra'] = 1; break;
    case 10: delete e[['dtype', 'shape', 'data_offsets'][rng.int(3)]!]; break;
    case 11: h['__metadata__'] = { format: rng.int(2) ? 1 : null } as unknown as Record<string, unknown>; break;
    case 12: e['data_offsets'] = [0, 2 ** 53 + 2]; break;
    case 13: e['shape'] = [2 ** 40, 2 ** 40, 2 ** 40]; break;
    case 14: delete h[name]; if (names.length === 1) h['x'] = 1 as unknown as Record<string, unknown>; break; // leaves a gap (or the tail uncovered)
    default: h[`${name}.copy`] = structuredClone(e); break; // overlaps the original
  }
  return { bytes: withHeader(src, JSON.stringify(h)), what: `json edit ${kind} on ${name}` };
}

function mutate(src: Source, rng: Rng): { bytes: Uint8Array; what: string; mustFail: boolean } {
  const b = src.bytes.slice();
  const headerEnd = 8 + src.headerLen;
  switch (rng.int(8)) {
    case 0: {
      // A flipped bit in the length prefix: the header no longer ends where its JSON ends.
      const bit = rng.int(64);
      b[bit >> 3]! ^= 1 << (bit & 7);
      return { bytes: b, what: `length bit ${bit}`, mustFail: true };
    }
    case 1: {
      let n = 8 + rng.int(8) * 8 + rng.int(2 ** 20);
      if (n === src.headerLen) n += 8;
      new DataView(b.buffer).setBigUint64(0, BigInt(rng.int(2) ? n : 2 ** 40 + n), true);
      return { bytes: b, what: `length set to ${n}`, mustFail: true };
    }
    case 2: {
      const cut = rng.int(b.length); // every strict prefix is short of the declared data section
      return { bytes: b.subarray(0, cut), what: `truncated to ${cut}`, mustFail: true };
    }
    case 3: {
      // Random bytes written over part of the header (a bit flip may leave a valid file: see below).
      const at = 8 + rng.int(src.headerLen);
      const n = 1 + rng.int(8);
      for (let i = at; i < Math.min(at + n, headerEnd); i++) b[i] = rng.int(256);
      return { bytes: b, what: `random bytes at ${at}`, mustFail: false };
    }
    case 4: {
      const at = 8 + rng.int(src.headerLen);
      b[at]! ^= 1 << rng.int(8);
      return { bytes: b, what: `header bit at ${at}`, mustFail: false };
    }
    case 5: {
      const at = headerEnd + rng.int(b.length - headerEnd);
      b[at]! ^= 1 << rng.int(8);
      return { bytes: b, what: `data bit at ${at}`, mustFail: false };
    }
    default: {
      const { bytes, what } = jsonEdit(src, rng);
      return { bytes, what, mustFail: true };
    }
  }
}

/** Structure of a header: everything but names and metadata strings (which a flip may change legitimately). */
function skeleton(r: SafetensorsReader): string {
  return JSON.stringify([...r.tensors.values()].map((t) => [t.dtype, t.shape, t.begin, t.end]));
}

test('1,800 mutated and truncated golden files: corrupt_safetensors or a file that reads fine, never anything else', async (t) => {
  const sources = await loadSources();
  const originals = new Map<string, string>();
  const { dir, cleanup } = await tempDir('moeforge-fuzz-');
  t.teardown(cleanup);
  for (const s of sources) {
    const file = path.join(dir, 'orig.safetensors');
    await writeFile(file, s.bytes);
    const r = await SafetensorsReader.open(file);
    originals.set(s.name, skeleton(r));
    await r.close();
  }
  const rng = new Rng(20261122);
  const counts = { mustFail: 0, mustFailCorrupt: 0, other: 0, otherCorrupt: 0, otherValid: 0 };
  const problems: string[] = [];
  const file = path.join(dir, 'fuzz.safetensors');
  const started = Date.now();
  for (let i = 0; i < 1800; i++) {
    // Mostly the small expected.safetensors files (fast), every tenth a model file.
    const src = sources[i % 10 === 0 ? 2 * rng.int(8) + 1 : 2 * rng.int(8)]!;
    const m = mutate(src, rng);
    writeFileSync(file, m.bytes);
    let outcome: Outcome;
    try {
      const r = await SafetensorsReader.open(file);
      try {
        // A file that opens must be readable, every value decodable (first and last tensor: the data ends).
        const names = [...r.tensors.keys()];
        for (const name of new Set(names.length ? [names[0]!, names[names.length - 1]!] : [])) await r.readFloat32(name);
        if (skeleton(r) !== originals.get(src.name) && !m.what.startsWith('random') && !m.what.startsWith('header')) {
          problems.push(`${src.name} ${m.what}: opened with a changed layout`);
        }
      } finally {
        await r.close();
      }
      outcome = 'valid';
    } catch (e) {
      if (!(e instanceof MoeforgeError) || e.code !== 'corrupt_safetensors' || e.path !== file) {
        problems.push(`${src.name} ${m.what}: ${String(e)}`);
        continue;
      }
      outcome = 'corrupt';
    }
    if (m.mustFail) {
      counts.mustFail++;
      if (outcome === 'corrupt') counts.mustFailCorrupt++;
      else problems.push(`${src.name} ${m.what}: opened although it breaks a rule`);
    } else {
      counts.other++;
      if (outcome === 'corrupt') counts.otherCorrupt++;
      else counts.otherValid++;
      if (m.what.startsWith('data') && outcome !== 'valid') problems.push(`${src.name} ${m.what}: a data flip was refused`);
    }
  }
  t.log(counts, `${Date.now() - started} ms`);
  t.deepEqual(problems, []);
  t.true(counts.mustFail >= 1000, `${counts.mustFail} must-fail cases`);
  t.is(counts.mustFailCorrupt, counts.mustFail);
  t.true(counts.otherCorrupt > 100, 'header flips and random bytes are mostly caught');
});
