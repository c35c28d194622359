// Training data of a learned gate, per expert: its positive_prompts plus an optional
// `train_data:` file, one sample per line: plain text, or JSONL whose lines are
// strings or objects with a "text" field (the usual layout of HF text datasets).
import { readTextSamples } from '../../core/data/text-samples.js';

export function readTrainData(file: string): Promise<string[]> {
  return readTextSamples(file, 'the training data file');
}
