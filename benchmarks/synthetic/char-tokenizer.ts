// A real, tiny Hugging Face tokenizer (one token per character) for golden-sized
// models (vocab ≤ 128), so tests and synthetic models take text prompts through the
// same code path as real ones. tokenizer.json is a BPE with no merges over a
// per-character Split pre-tokenizer (@huggingface/tokenizers has no WordLevel
// model), a Fuse decoder, and a TemplateProcessing post-processor adding BOS.
//
// Layout: 0 <unk>, bosId (default 1) <s>, eosId (default 2) </s>, then the chat
// markers <|system|> <|user|> <|assistant|> <|end|>, then '\n', ' ', letters,
// digits, punctuation, as many as fit; ids left over are <reserved_N>.

export const DEFAULT_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

const CHAT_MARKERS = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>'];

const CHARS = [
  '\n',
  ' ',
  ...'abcdefghijklmnopqrstuvwxyz',
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  ...'0123456789',
  ...'.,!?;:\'"-()[]{}<>/\\|@#$%^&*_+=~`',
];

export function charTokenizerFiles(opts: { vocabSize: number; bosId?: number; eosId?: number; chatTemplate?: string }): Record<string, string> {
  const { vocabSize } = opts;
  const bosId = opts.bosId ?? 1;
  const eosId = opts.eosId ?? 2;
  const reserved = new Set([0, bosId, eosId]);
  if (!Number.isInteger(vocabSize) || vocabSize < 8 || reserved.size !== 3 || bosId >= vocabSize || eosId >= vocabSize || bosId < 0 || eosId < 0) {
    throw new Error(`charTokenizerFiles: need vocabSize >= 8 and distinct bos/eos ids in 1..vocabSize-1 (got ${vocabSize}, ${bosId}, ${eosId})`);
  }
  const byId: string[] = new Array<string>(vocabSize);
  byId[0] = '<unk>';
  byId[bosId] = '<s>';
  byId[eosId] = '</s>';
  const queue = [...CHAT_MARKERS, ...CHARS];
  for (let id = 0; id < vocabSize; id++) {
    if (byId[id] === undefined) byId[id] = queue.shift() ?? `<reserved_${id}>`;
  }
  const vocab: Record<string, number> = {};
  byId.forEach((token, id) => (vocab[token] = id));
  const special = ['<unk>', '<s>', '</s>', ...CHAT_MARKERS.filter((m) => m in vocab)];
  const tokenizer = charLevelTokenizerJson(vocab, special, '<s>', '<unk>');
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: '</s>',
    chat_template: opts.chatTemplate ?? DEFAULT_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: 4096,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const specialTokensMap = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '</s>' };
  return {
    'tokenizer.json': JSON.stringify(tokenizer, null, 2),
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2),
    'special_tokens_map.json': JSON.stringify(specialTokensMap, null, 2),
  };
}

/**
 * A character-level tokenizer.json that @huggingface/tokenizers (and the Rust
 * library) load: every character is split off by the pre-tokenizer and looked up
 * in a BPE vocabulary without merges; `bos` is prepended as transformers'
 * TemplateProcessing does; the decoder fuses the characters back.
 */
export function charLevelTokenizerJson(vocab: Record<string, number>, specialTokens: string[], bos: string, unk: string): Record<string, unknown> {
  const addedTokens = specialTokens.map((content) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
    },
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}
