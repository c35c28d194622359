// Reading special tokens out of tokenizer_config.json / special_tokens_map.json /
// generation_config.json. transformers stores them either as strings or as
// AddedToken dicts (`{"content": "<s>", "lstrip": false, …, "__type": "AddedToken"}`).

/** A special token's text, whether written as a string or an AddedToken dict. */
export function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** `eos_token_id` of config.json / generation_config.json: one id, a list, or absent. */
export function idList(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

/**
 * The chat template of a tokenizer: `chat_template.jinja` (transformers ≥ 4.43
 * saves it there), else tokenizer_config.json's `chat_template`, which may also be
 * a list of named templates (`[{name: "default", template}, …]`) — the one named
 * "default" is used, as transformers does without an explicit name.
 */
export function pickChatTemplate(configValue: unknown, jinjaFile: string | undefined): string | undefined {
  if (jinjaFile !== undefined) return jinjaFile;
  if (typeof configValue === 'string') return configValue;
  if (Array.isArray(configValue)) {
    const named = configValue as { name?: unknown; template?: unknown }[];
    const def = named.find((t) => t.name === 'default') ?? named[0];
    return typeof def?.template === 'string' ? def.template : undefined;
  }
  return undefined;
}
