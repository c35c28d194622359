// The demo's recipes, written from the committed zoo: MoEs with hidden gates and
// each way of merging the shared weights (base, average, ties), one MoE with the
// gate vectors taken at the router's real input (router_input) and one with
// gates trained on the same prompts (learned) as the gate comparisons, and a dense TIES merge of the four experts (mergekit-yaml).
import { stringify } from 'yaml';
import { Rng } from '../../core/rng.js';
import { TASK_NAMES, testSet, trainSampler, zooTasks, type TaskName } from '../zoo/tasks.js';

export interface MoeVariant {
  name: string;
  gateMode: 'hidden' | 'router_input' | 'learned';
  sharedWeights: 'base' | 'average' | { method: 'ties'; parameters: Record<string, unknown> };
}

export const MOE_VARIANTS: MoeVariant[] = [
  { name: 'moe-base', gateMode: 'hidden', sharedWeights: 'base' },
  { name: 'moe-average', gateMode: 'hidden', sharedWeights: 'average' },
  { name: 'moe-ties', gateMode: 'hidden', sharedWeights: { method: 'ties', parameters: { density: 0.5, weight: 1 } } },
  { name: 'moe-router-input', gateMode: 'router_input', sharedWeights: 'base' },
  { name: 'moe-learned', gateMode: 'learned', sharedWeights: 'base' },
];

/**
 * Positive prompts per expert: training-distribution questions cut at a random
 * point of their answer (mergekit's `hidden` gate reads the prompt's last token,
 * so the prompts end where the MoE will be routing: inside an answer). Drawn from
 * a seed of their own, never from the held-out test sets (same filter as training).
 */
export function positivePrompts(zooSeed: number, testSize: number, perExpert = 64): Record<TaskName, string[]> {
  const tasks = zooTasks(zooSeed);
  const out = {} as Record<TaskName, string[]>;
  for (const n of TASK_NAMES) {
    const rng = new Rng(zooSeed).derive(`demo/prompts/${n}`);
    const sample = trainSampler(tasks[n], testSet(tasks[n], zooSeed, testSize), rng);
    out[n] = Array.from({ length: perExpert }, () => {
      const s = sample();
      return s.question + s.answer.slice(0, rng.int(s.answer.length + 1));
    });
  }
  return out;
}

export function moeRecipe(v: MoeVariant, zoo: Record<'base' | TaskName, string>, prompts: Record<TaskName, string[]>, expertsPerToken: number, negatives = true): string {
  const recipe = {
    base_model: zoo.base,
    gate_mode: v.gateMode,
    dtype: 'float32',
    experts_per_token: expertsPerToken,
    shared_weights: v.sharedWeights,
    // negative_prompts = the other experts' prompts: mergekit subtracts their mean
    // hidden state, which removes what every prompt shares (the character being
    // read, the position) and leaves the direction that tells this task apart.
    experts: TASK_NAMES.map((n) => ({
      source_model: zoo[n],
      positive_prompts: prompts[n],
      ...(negatives && v.gateMode !== 'learned' ? { negative_prompts: TASK_NAMES.filter((m) => m !== n).flatMap((m) => prompts[m]) } : {}),
    })),
  };
  return `# moeforge demo: ${v.name}\n${stringify(recipe)}`;
}

/** A dense TIES merge of the experts over the base (mergekit-yaml). */
export function tiesMergeConfig(zoo: Record<'base' | TaskName, string>): string {
  const config = {
    merge_method: 'ties',
    base_model: zoo.base,
    models: TASK_NAMES.map((n) => ({ model: zoo[n], parameters: { density: 0.5, weight: 1 } })),
    parameters: { normalize: true },
    dtype: 'float32',
  };
  return `# moeforge demo: dense TIES merge of the zoo experts\n${stringify(config)}`;
}

/**
 * The routing oracle for one task: a MoE holding that task's expert alone (one
 * expert, so every token goes to it) built the same way. What it loses against
 * the dense expert is what the MoE conversion and the shared weights lose; what
 * a full MoE loses beyond it is the gates'.
 */
export function oracleRecipe(task: TaskName, zoo: Record<'base' | TaskName, string>, prompts: Record<TaskName, string[]>): string {
  const recipe = {
    base_model: zoo.base,
    gate_mode: 'hidden',
    dtype: 'float32',
    experts_per_token: 1,
    shared_weights: 'base',
    experts: [{ source_model: zoo[task], positive_prompts: prompts[task].slice(0, 4) }],
  };
  return `# moeforge demo: routing oracle for ${task}\n${stringify(recipe)}`;
}
