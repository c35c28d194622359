// How a scored request becomes token ids, shared by every scorer (the engine's,
// a remote server's, the heterogeneous MoE's) so they split text identically.
import { MoeforgeError } from '../errors.js';
import type { Tokenizer } from './tokenizer.js';

/** Context ids: BOS as the tokenizer adds it (as transformers' tokenizer(text)); chat text is encoded without. */
export function encodeContext(tokenizer: Tokenizer, text: string, chat: boolean | undefined): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: !chat });
  // A context must predict the first continuation token: start from BOS when the text gives none.
  if (ids.length === 0 && tokenizer.bosTokenId !== undefined) return [tokenizer.bosTokenId];
  return ids;
}

/**
 * lm-evaluation-harness's `_encode_pair`: trailing context spaces move to the
 * continuation, then the joint encoding is split after the context's ids. When the
 * joint encoding does not start with the context's (a merge across the seam), the
 * continuation is encoded alone. `where` names the model in the error for an empty
 * context without a BOS token.
 */
export function encodePair(
  tokenizer: Tokenizer,
  request: { context: string; continuation: string; chat?: boolean },
  where: string,
): { context: number[]; continuation: number[] } {
  let { context, continuation } = request;
  const spaces = context.length - context.trimEnd().length;
  if (spaces > 0) {
    continuation = context.slice(-spaces) + continuation;
    context = context.slice(0, -spaces);
  }
  const contextIds = encodeContext(tokenizer, context, request.chat);
  const whole = tokenizer.encode(context + continuation, { addSpecialTokens: !request.chat });
  const prefixOk = contextIds.every((id, i) => whole[i] === id);
  const continuationIds =
    prefixOk && whole.length > contextIds.length ? whole.slice(contextIds.length) : tokenizer.encode(continuation, { addSpecialTokens: false });
  if (contextIds.length === 0) throw new MoeforgeError('invalid_data', 'empty context and the tokenizer has no BOS token to condition on', { path: where });
  return { context: contextIds, continuation: continuationIds };
}

/** The user turn wrapped in the model's chat template, ready for the assistant's answer. */
export function chatPrompt(tokenizer: Tokenizer, userText: string): string {
  return tokenizer.applyChatTemplate([{ role: 'user', content: userText }], { addGenerationPrompt: true });
}
