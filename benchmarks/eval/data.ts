// Task data: a list of samples (plain objects keyed by column name) from a local
// JSONL file (one JSON object per line, as `datasets` writes with to_json(lines=True)),
// a JSON array, or a Parquet file (the format the Hub serves datasets in), read
// with hyparquet. Hub datasets by name come with the Hub dataset source; until then
// `hf://…` is refused with a line saying so.
import { readFile } from 'node:fs/promises';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { MoeforgeError, fsError } from '../../core/errors.js';

export type Sample = Record<string, unknown>;

/** Parquet INT64 arrives as bigint; samples hold plain JSON values (numbers within 2^53). */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

function parseJsonl(text: string, file: string): Sample[] {
  const rows: Sample[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new MoeforgeError('invalid_data', `line ${i + 1} is not valid JSON: ${(e as Error).message}`, { path: file, cause: e });
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      throw new MoeforgeError('invalid_data', `line ${i + 1} is not a JSON object (one sample per line)`, { path: file });
    }
    rows.push(v as Sample);
  });
  return rows;
}

async function readParquet(file: string): Promise<Sample[]> {
  let buffer;
  try {
    buffer = await asyncBufferFromFile(file);
  } catch (e) {
    throw fsError(e, file, 'read the data file');
  }
  try {
    const rows = (await parquetReadObjects({ file: buffer })) as Sample[];
    return rows.map((r) => plain(r) as Sample);
  } catch (e) {
    throw new MoeforgeError('invalid_data', `not a readable Parquet file: ${(e as Error).message}`, { path: file, cause: e });
  }
}

/** Every sample of a data file; an empty file is an error (a task over nothing means a wrong path or split). */
export async function loadSamples(file: string): Promise<Sample[]> {
  if (/^(hf|hub):/.test(file)) {
    throw new MoeforgeError('unsupported_format', 'Hub datasets are not supported yet; download the split as .parquet or .jsonl and point `data:` at the file', {
      path: file,
    });
  }
  let rows: Sample[];
  if (/\.parquet$/i.test(file)) {
    rows = await readParquet(file);
  } else {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw fsError(e, file, 'read the data file');
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (/\.json$/i.test(file) && text.trimStart().startsWith('[')) {
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new MoeforgeError('invalid_data', `not valid JSON: ${(e as Error).message}`, { path: file, cause: e });
      }
      if (!Array.isArray(v) || v.some((r) => !r || typeof r !== 'object' || Array.isArray(r))) {
        throw new MoeforgeError('invalid_data', 'expected a JSON array of objects (one per sample)', { path: file });
      }
      rows = v as Sample[];
    } else {
      rows = parseJsonl(text, file);
    }
  }
  if (rows.length === 0) throw new MoeforgeError('invalid_data', 'the data file holds no samples', { path: file });
  return rows;
}
