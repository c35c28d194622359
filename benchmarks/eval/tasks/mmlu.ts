// MMLU (Hendrycks et al. 2021, https://arxiv.org/abs/2009.03300) in the cais/mmlu
// layout: question, subject, choices (list of 4), answer (int 0..3).
// Prompt as lm-evaluation-harness's mmlu/default template: a subject description,
// then the question, the lettered choices and "Answer:"; the choices scored are
// the letters, so acc and acc_norm coincide (lm-eval reports acc).
import { MoeforgeError } from '../../../core/errors.js';
import type { BuiltinDefinition } from '../task.js';
import { int, str, strList } from './common.js';

const LETTERS = 'ABCDEFGHIJ';

export const mmlu: BuiltinDefinition = {
  reference: 'lm-evaluation-harness lm_eval/tasks/mmlu/default/_default_template_yaml',
  defaults: { metrics: ['acc'] },
  docs: {
    type: 'multiple_choice',
    columns: ['question', 'subject', 'choices', 'answer'],
    description: (s) => `The following are multiple choice questions (with answers) about ${String(s.subject).replace(/_/g, ' ')}.\n\n`,
    text: (s, row) => {
      const choices = strList('mmlu', s.choices, row, 'choices');
      const lines = choices.map((c, i) => `${LETTERS[i]}. ${c}`);
      return `${str('mmlu', s, row, 'question').trim()}\n${lines.join('\n')}\nAnswer:`;
    },
    choices: (s, row) => [...LETTERS.slice(0, strList('mmlu', s.choices, row, 'choices').length)],
    target: (s, row) => {
      // Some MMLU exports spell the answer as a letter.
      const a = s.answer;
      if (typeof a === 'string' && /^[A-J]$/.test(a.trim())) return LETTERS.indexOf(a.trim());
      const n = int('mmlu', a, row, 'answer');
      const count = strList('mmlu', s.choices, row, 'choices').length;
      if (n >= count) {
        throw new MoeforgeError('invalid_data', `row ${row + 1}: answer ${n} is not a choice index (0..${count - 1})`, { path: 'builtin mmlu' });
      }
      return n;
    },
  },
};
