// A Hugging Face tokenizer from a model folder: tokenizer.json through
// @huggingface/tokenizers (which encodes as the Rust `tokenizers` library does),
// tokenizer_config.json for special tokens and the chat template.
//
// BOS/EOS as transformers adds them: with `add_special_tokens` the tokenizer.json
// post-processor decides (TemplateProcessing, e.g. Llama 3's <|begin_of_text|>),
// except where tokenizer_config.json sets `add_bos_token` / `add_eos_token`
// explicitly, which override it as LlamaTokenizerFast.update_post_processor does
// (Llama 2, Mistral). Chat-templated text is encoded without special tokens, as
// apply_chat_template(tokenize=True) does (the template writes BOS itself).
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MoeforgeError, fsError } from '../errors.js';
import { renderChatTemplate, type ChatMessage } from './chat-template.js';
import { idList, pickChatTemplate, tokenText } from './special-tokens.js';

async function readJson(file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file, 'read tokenizer file');
  }
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new MoeforgeError('invalid_data', `not valid JSON: ${(e as Error).message}`, { path: file, cause: e });
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file, 'read');
  }
}

export class Tokenizer {
  readonly folder: string;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly bosTokenId: number | undefined;
  /** Every id that ends generation: the tokenizer's eos and generation_config.json's eos_token_id(s). */
  readonly eosTokenIds: number[];
  readonly vocabSize: number;
  readonly chatTemplate: string | undefined;
  private readonly hf: HfTokenizer;
  private readonly config: Record<string, unknown>;
  private readonly addBos: boolean | undefined;
  private readonly addEos: boolean | undefined;

  private constructor(folder: string, hf: HfTokenizer, config: Record<string, unknown>, generation: Record<string, unknown> | undefined, chatTemplate: string | undefined) {
    this.folder = folder;
    this.hf = hf;
    this.config = config;
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.bosTokenId = this.bosToken === undefined ? undefined : hf.token_to_id(this.bosToken);
    const eos = new Set<number>();
    const eosId = this.eosToken === undefined ? undefined : hf.token_to_id(this.eosToken);
    if (eosId !== undefined) eos.add(eosId);
    for (const id of idList(generation?.eos_token_id)) eos.add(id);
    this.eosTokenIds = [...eos];
    this.vocabSize = hf.get_vocab(true).size;
    this.chatTemplate = chatTemplate;
    this.addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : undefined;
    this.addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : undefined;
  }

  static async fromFolder(folder: string): Promise<Tokenizer> {
    const json = await readJson(path.join(folder, 'tokenizer.json'), true);
    const config = (await readJson(path.join(folder, 'tokenizer_config.json'), false)) ?? {};
    // special_tokens_map.json fills what tokenizer_config.json leaves out (older saves).
    const map = (await readJson(path.join(folder, 'special_tokens_map.json'), false)) ?? {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      if (config[key] === undefined && map[key] !== undefined) config[key] = map[key];
    }
    const generation = await readJson(path.join(folder, 'generation_config.json'), false);
    const template = pickChatTemplate(config.chat_template, await readText(path.join(folder, 'chat_template.jinja')));
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(json!, config);
    } catch (e) {
      throw new MoeforgeError('invalid_data', `tokenizer.json is not usable: ${(e as Error).message}`, {
        path: path.join(folder, 'tokenizer.json'),
        cause: e,
      });
    }
    return new Tokenizer(folder, hf, config, generation, template);
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const special = opts.addSpecialTokens ?? true;
    if (!special) return this.hf.encode(text, { add_special_tokens: false }).ids;
    if (this.addBos === undefined && this.addEos === undefined) return this.hf.encode(text, { add_special_tokens: true }).ids;
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    const eosId = this.eosToken === undefined ? undefined : this.hf.token_to_id(this.eosToken);
    return [
      ...(this.addBos && this.bosTokenId !== undefined ? [this.bosTokenId] : []),
      ...ids,
      ...(this.addEos && eosId !== undefined ? [eosId] : []),
    ];
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.hf.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The text of one id (for per-token listings). */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (this.chatTemplate === undefined) {
      throw new MoeforgeError('missing_file', 'the tokenizer has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja)', {
        path: this.folder,
      });
    }
    const variables: Record<string, unknown> = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const v = tokenText(this.config[key]);
      if (v !== undefined) variables[key] = v;
    }
    const extra = this.config.additional_special_tokens;
    if (Array.isArray(extra)) variables.additional_special_tokens = extra.map(tokenText);
    return renderChatTemplate(this.chatTemplate, messages, variables, opts.addGenerationPrompt ?? false, path.join(this.folder, 'tokenizer_config.json'));
  }
}
