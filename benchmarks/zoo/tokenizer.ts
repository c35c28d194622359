// The zoo's character-level tokenizer: one token per character over the few
// characters the zoo's tasks use, plus BOS/EOS/PAD/UNK. Written as a real
// tokenizer.json (the approach of benchmarks/synthetic/char-tokenizer.ts: a BPE
// with no merges over a per-character Split pre-tokenizer, a Fuse decoder and a
// TemplateProcessing post-processor adding BOS), so @huggingface/tokenizers and
// transformers load it; the trainer encodes with the same table directly.
import { charLevelTokenizerJson } from '../synthetic/char-tokenizer.js';

export const UNK = '<unk>';
export const BOS = '<s>';
export const EOS = '</s>';
export const PAD = '<pad>';

export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const PAD_ID = 3;

const CHARS = ['\n', ' ', ...'abcdefghijklmnopqrstuvwxyz', ...'0123456789', ...':=+-,.', ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'];

/** Token text by id. */
export const ZOO_VOCAB: readonly string[] = [UNK, BOS, EOS, PAD, ...CHARS];
export const ZOO_VOCAB_SIZE = ZOO_VOCAB.length; // 74

const ID_OF = new Map(ZOO_VOCAB.map((t, i) => [t, i]));

/** Characters to ids (no special tokens); throws on a character outside the vocabulary. */
export function encodeChars(text: string): number[] {
  return [...text].map((ch) => {
    const id = ID_OF.get(ch);
    if (id === undefined) throw new Error(`zoo tokenizer: character ${JSON.stringify(ch)} is not in the vocabulary`);
    return id;
  });
}

export function decodeIds(ids: number[]): string {
  return ids.map((id) => (id >= 4 ? ZOO_VOCAB[id] : '')).join('');
}

/** tokenizer.json, tokenizer_config.json, special_tokens_map.json (file name → text). */
export function zooTokenizerFiles(): Record<string, string> {
  const vocab: Record<string, number> = {};
  ZOO_VOCAB.forEach((t, i) => (vocab[t] = i));
  const tokenizer = charLevelTokenizerJson(vocab, [UNK, BOS, EOS, PAD], BOS, UNK);
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: BOS,
    eos_token: EOS,
    unk_token: UNK,
    pad_token: PAD,
    clean_up_tokenization_spaces: false,
    model_max_length: 64,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const specialTokensMap = { bos_token: BOS, eos_token: EOS, unk_token: UNK, pad_token: PAD };
  return {
    'tokenizer.json': `${JSON.stringify(tokenizer, null, 2)}\n`,
    'tokenizer_config.json': `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
    'special_tokens_map.json': `${JSON.stringify(specialTokensMap, null, 2)}\n`,
  };
}
