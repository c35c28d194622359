// Chat templates, rendered as transformers' apply_chat_template renders them:
// @huggingface/jinja over the template with `messages`, `add_generation_prompt`,
// the special tokens as strings (`bos_token`, `eos_token`, …); the library itself
// supplies `raise_exception` and `strftime_now`. A template's complaint
// (raise_exception) becomes a MoeforgeError naming it.
import { Template } from '@huggingface/jinja';
import { MoeforgeError } from '../errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export function renderChatTemplate(
  template: string,
  messages: ChatMessage[],
  variables: Record<string, unknown>,
  addGenerationPrompt: boolean,
  label: string,
): string {
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (e) {
    throw new MoeforgeError('invalid_data', `chat template does not parse: ${(e as Error).message}`, { path: label, cause: e });
  }
  try {
    return compiled.render({
      ...variables,
      messages,
      add_generation_prompt: addGenerationPrompt,
    });
  } catch (e) {
    throw new MoeforgeError('invalid_argument', `chat template failed on these messages: ${(e as Error).message}`, { path: label, cause: e });
  }
}
