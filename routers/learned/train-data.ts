// Training data of a learned gate, per expert: its positive_prompts plus an optional
// `train_data:` file, one sample per line: plain text, or JSONL whose lines are
// strings or objects with a "text" field (the usual layout of HF text datasets).
import { readFile } from 'node:fs/promises';
import { MoeforgeError, fsError } from '../../core/errors.js';

export async function readTrainData(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, file, 'read the training data');
  }
  const jsonl = /\.jsonl?$/i.test(file);
  const samples: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    if (!jsonl) return void samples.push(line);
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new MoeforgeError('invalid_data', 'not valid JSON', { path: `${file}:${i + 1}` });
    }
    const t = typeof v === 'string' ? v : v !== null && typeof v === 'object' ? (v as Record<string, unknown>).text : undefined;
    if (typeof t !== 'string' || !t) throw new MoeforgeError('invalid_data', 'expected a string or an object with a non-empty "text" field', { path: `${file}:${i + 1}` });
    samples.push(t);
  });
  if (samples.length === 0) throw new MoeforgeError('invalid_data', 'the training data file has no samples', { path: file });
  return samples;
}
