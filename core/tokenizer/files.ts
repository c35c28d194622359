// The files a model folder carries besides config.json and its weights: tokenizer,
// chat templates and generation defaults. One list for what a Hub pull fetches and
// what build and merge outputs copy from their tokenizer source.
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fsError } from '../errors.js';

export const CARRIED_FILES: readonly string[] = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'vocab.json',
  'vocab.txt',
  'merges.txt',
  'generation_config.json',
  'chat_template.jinja',
  'chat_template.json',
];

/** Copies the carried files present in `from` into `to`; returns the names copied. */
export async function copyCarriedFiles(from: string, to: string): Promise<string[]> {
  const copied: string[] = [];
  for (const name of CARRIED_FILES) {
    const src = path.join(from, name);
    try {
      await copyFile(src, path.join(to, name));
      copied.push(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, src, 'copy');
    }
  }
  return copied;
}
