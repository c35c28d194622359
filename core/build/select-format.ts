// Output format selection, as mergekit's `select_output_arch` (mergekit/scripts/moe.py):
// a recipe's `architecture` narrows the candidates (moeforge's name, or a
// case-insensitive prefix of mergekit's display name: `qwen` matches both Qwen
// formats); the candidates that support the inputs remain; Mixtral wins when it is
// among them ("for compatibility with older configs"), otherwise the first.
import { MoeforgeError } from '../errors.js';
import type { FormatSupportInput, OutputFormat } from '../plugins.js';

export function selectOutputFormat(formats: readonly OutputFormat[], architecture: string | null, input: FormatSupportInput): OutputFormat {
  let candidates = formats;
  if (architecture) {
    const a = architecture.toLowerCase();
    candidates = formats.filter((f) => f.name === a || f.displayName.toLowerCase().startsWith(a));
    if (candidates.length === 0) {
      throw new MoeforgeError('invalid_recipe', `unknown output architecture "${architecture}"; expected one of ${formats.map((f) => f.name).join(', ')}`, {
        path: 'architecture',
      });
    }
  }
  const reasons: string[] = [];
  const supported = candidates.filter((f) => {
    const why = f.unsupportedReason(input);
    if (why) reasons.push(why);
    return why === undefined;
  });
  if (supported.length === 0) {
    throw new MoeforgeError('incompatible_models', `no output architecture can be built from these models: ${reasons.join('; ')}`, {
      path: architecture ? 'architecture' : 'base_model',
    });
  }
  return supported.find((f) => f.name === 'mixtral') ?? supported[0]!;
}
