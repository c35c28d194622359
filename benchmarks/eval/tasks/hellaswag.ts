// HellaSwag (Zellers et al. 2019, https://arxiv.org/abs/1905.07830) in the
// Rowan/hellaswag layout: ind, activity_label, ctx_a, ctx_b, ctx, endings (list of
// 4), label (a string "0".."3"). lm-evaluation-harness's hellaswag/utils.py
// process_docs: query = preprocess(activity_label + ": " + ctx_a + " " +
// ctx_b.capitalize()), choices = preprocess(ending) each, gold = int(label); the
// preprocess strips, turns " [title]" into ". ", drops other [bracketed] WikiHow
// markers and collapses double spaces. Metrics acc and acc_norm (the reported one).
import type { BuiltinDefinition } from '../task.js';
import { int, str, strList } from './common.js';

/** Python's str.capitalize(): first character upper-cased, the rest lower-cased. */
export function pyCapitalize(text: string): string {
  return text.length === 0 ? text : text[0]!.toUpperCase() + text.slice(1).toLowerCase();
}

export function hellaswagPreprocess(text: string): string {
  return text.trim().replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}

export const hellaswag: BuiltinDefinition = {
  reference: 'lm-evaluation-harness lm_eval/tasks/hellaswag/hellaswag.yaml + utils.py',
  defaults: { metrics: ['acc', 'acc_norm'] },
  docs: {
    type: 'multiple_choice',
    columns: ['activity_label', 'ctx_a', 'ctx_b', 'endings', 'label'],
    text: (s, row) => {
      const ctx = `${str('hellaswag', s, row, 'ctx_a')} ${pyCapitalize(str('hellaswag', s, row, 'ctx_b'))}`;
      return hellaswagPreprocess(`${str('hellaswag', s, row, 'activity_label')}: ${ctx}`);
    },
    choices: (s, row) => strList('hellaswag', s.endings, row, 'endings').map(hellaswagPreprocess),
    target: (s, row) => int('hellaswag', s.label, row, 'label'),
  },
};
