// Which files of a Hub repo a build needs. Pickled weights (*.bin, *.pt, *.pth,
// *.pkl) are never downloaded: loading a pickle runs arbitrary code.
const CONFIG_FILES = new Set(['config.json', 'generation_config.json']);

const TOKENIZER_FILES = new Set([
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'vocab.json',
  'vocab.txt',
  'merges.txt',
  'chat_template.jinja',
  'chat_template.json',
]);

const PICKLE = /\.(bin|pt|pth|pkl|pickle|ckpt)$/i;

export function isPickle(name: string): boolean {
  return PICKLE.test(name);
}

export function isWeightFile(name: string): boolean {
  return /^[^/]+\.safetensors$/.test(name) || name === 'model.safetensors.index.json';
}

/** Top-level files only: nested folders (onnx/, original/, …) hold other formats. */
export function isNeededFile(name: string, includeWeights: boolean): boolean {
  if (name.includes('/') || isPickle(name)) return false;
  if (CONFIG_FILES.has(name) || TOKENIZER_FILES.has(name)) return true;
  return includeWeights && isWeightFile(name);
}
