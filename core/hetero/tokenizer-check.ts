// Heterogeneous experts mix next-token distributions, so they must agree on what
// every token id means (issue 9: "same vocabulary and special tokens"). This
// compares, in order, each expert's config vocab_size, tokenizer.json's
// vocabulary (model.vocab), its added tokens, and the special tokens named in
// tokenizer_config.json / special_tokens_map.json, and reports the first
// difference with both tokenizers named. Merges and pre-tokenizers are not
// compared: two tokenizers that map the same ids to the same strings may still
// split text differently, which the mixing tolerates (each expert reads ids).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError, fsError } from '../errors.js';

export interface TokenizerSource {
  /** The reference as the recipe writes it. */
  ref: string;
  /** Recipe field naming it, e.g. `experts[1].source_model`. */
  field: string;
  folder: string;
  /** config.json vocab_size (the embedding rows). */
  vocabSize: number;
}

/** What is compared, read once per model. */
export interface TokenizerFacts {
  vocabSize: number;
  hasTokenizerJson: boolean;
  /** id → token string, from tokenizer.json model.vocab and added_tokens. */
  tokens: Map<number, string>;
  /** bos_token, eos_token, unk_token, pad_token → content ('' when unset). */
  special: Record<string, string>;
}

async function readJsonIf(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file, 'read');
  }
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch (e) {
    throw new MoeforgeError('invalid_config', `not valid JSON (${(e as Error).message})`, { path: file, cause: e });
  }
}

/** A special token entry is a string or an AddedToken object `{content: …}` (transformers writes both). */
function tokenContent(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return '';
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const;

export async function readTokenizerFacts(src: TokenizerSource): Promise<TokenizerFacts> {
  const tj = await readJsonIf(path.join(src.folder, 'tokenizer.json'));
  const tokens = new Map<number, string>();
  const vocab = (tj?.['model'] as { vocab?: unknown } | undefined)?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab as Record<string, unknown>)) if (typeof id === 'number') tokens.set(id, token);
  }
  const added = tj?.['added_tokens'];
  if (Array.isArray(added)) {
    for (const a of added as { id?: unknown; content?: unknown }[]) if (typeof a.id === 'number' && typeof a.content === 'string') tokens.set(a.id, a.content);
  }
  const tc = (await readJsonIf(path.join(src.folder, 'tokenizer_config.json'))) ?? {};
  const sm = (await readJsonIf(path.join(src.folder, 'special_tokens_map.json'))) ?? {};
  const special: Record<string, string> = {};
  for (const k of SPECIAL_KEYS) special[k] = tokenContent(tc[k]) || tokenContent(sm[k]);
  return { vocabSize: src.vocabSize, hasTokenizerJson: tj !== undefined, tokens, special };
}

/** The first difference between two tokenizers, in words, or undefined when they agree. */
export function firstTokenizerDifference(a: TokenizerFacts, b: TokenizerFacts): string | undefined {
  if (a.vocabSize !== b.vocabSize) return `vocab_size ${a.vocabSize} vs ${b.vocabSize}`;
  if (a.hasTokenizerJson !== b.hasTokenizerJson) return `tokenizer.json ${a.hasTokenizerJson ? 'present' : 'missing'} vs ${b.hasTokenizerJson ? 'present' : 'missing'}`;
  const ids = [...new Set([...a.tokens.keys(), ...b.tokens.keys()])].sort((x, y) => x - y);
  for (const id of ids) {
    const x = a.tokens.get(id);
    const y = b.tokens.get(id);
    if (x !== y) return `token ${id} is ${x === undefined ? 'absent' : JSON.stringify(x)} vs ${y === undefined ? 'absent' : JSON.stringify(y)}`;
  }
  for (const k of SPECIAL_KEYS) {
    if (a.special[k] !== b.special[k]) return `${k} ${JSON.stringify(a.special[k])} vs ${JSON.stringify(b.special[k])}`;
  }
  return undefined;
}

/** Throws incompatible_models naming both tokenizers and the first difference. */
export async function checkSharedTokenizer(sources: TokenizerSource[]): Promise<void> {
  const first = sources[0];
  if (!first) return;
  const ref = await readTokenizerFacts(first);
  for (const src of sources.slice(1)) {
    const diff = firstTokenizerDifference(ref, await readTokenizerFacts(src));
    if (diff !== undefined) {
      throw new MoeforgeError(
        'incompatible_models',
        `heterogeneous experts must share one tokenizer: ${first.ref} and ${src.ref} differ (${diff})`,
        { path: src.field },
      );
    }
  }
}
