// Stop strings, as generation APIs apply them (OpenAI `stop`, lm-eval's `until`):
// the text ends where the earliest stop string starts, the stop itself excluded.

/** The earliest index where any stop string starts in `text`, or -1. */
export function firstStop(text: string, stop: readonly string[]): number {
  let at = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** `text` cut before its earliest stop string. */
export function cutAtStop(text: string, stop: readonly string[]): string {
  const at = firstStop(text, stop);
  return at < 0 ? text : text.slice(0, at);
}
