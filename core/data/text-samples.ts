// Samples of text, one per line: plain text, or JSONL whose lines are strings or
// objects with a "text" field (the usual layout of HF text datasets). Read by
// learned gates (`train_data:`) and data-driven merges (`calibration:`).
import { readFile } from 'node:fs/promises';
import { MoeforgeError, fsError } from '../errors.js';

/**
 * Every sample of the file, in file order. `what` names the file in messages
 * ("the training data file", "the calibration file of ./expert-a").
 */
export async function readTextSamples(file: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, file, `read ${what}`);
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
      throw new MoeforgeError('invalid_data', `${what}: not valid JSON`, { path: `${file}:${i + 1}` });
    }
    const t = typeof v === 'string' ? v : v !== null && typeof v === 'object' ? (v as Record<string, unknown>).text : undefined;
    if (typeof t !== 'string' || !t) {
      throw new MoeforgeError('invalid_data', `${what}: expected a string or an object with a non-empty "text" field`, { path: `${file}:${i + 1}` });
    }
    samples.push(t);
  });
  if (samples.length === 0) throw new MoeforgeError('invalid_data', `${what} has no samples`, { path: file });
  return samples;
}
