// tokenizer_source checks for merges (mergekit copies the base model's tokenizer unless
// told otherwise; the files themselves are copied by core/tokenizer/files.ts).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError, fsError } from '../errors.js';


async function readIf(p: string): Promise<Buffer | undefined> {
  try {
    return await readFile(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, p, 'read');
  }
}


/**
 * mergekit's `union` builds a new vocabulary; moeforge accepts it only when every model has the
 * same tokenizer.json (then the union is that tokenizer) and says so otherwise.
 */
export async function checkSameTokenizer(folders: { ref: string; folder: string }[]): Promise<void> {
  const first = await readIf(path.join(folders[0]!.folder, 'tokenizer.json'));
  for (const f of folders.slice(1)) {
    const other = await readIf(path.join(f.folder, 'tokenizer.json'));
    if ((first === undefined) !== (other === undefined) || (first && other && !first.equals(other))) {
      throw new MoeforgeError(
        'incompatible_models',
        `tokenizer_source union needs a merged vocabulary, which moeforge does not build: ${f.ref} has a different tokenizer.json than ${folders[0]!.ref} (use tokenizer_source: base)`,
        { path: 'tokenizer_source' },
      );
    }
  }
}
