// ARC (Clark et al. 2018, https://arxiv.org/abs/1803.05457) in the allenai/ai2_arc
// layout: id, question, choices {text[], label[]}, answerKey (a label: "A".."E" or
// "1".."5"). Prompt as lm-evaluation-harness's arc_easy.yaml (arc_challenge includes
// it): "Question: {q}\nAnswer:", choices scored are the answer texts, gold is the
// index of answerKey among the labels; metrics acc and acc_norm.
import { MoeforgeError } from '../../../core/errors.js';
import type { Sample } from '../data.js';
import type { BuiltinDefinition } from '../task.js';
import { str, strList } from './common.js';

function choicesOf(task: string, s: Sample, row: number): { text: string[]; label: string[] } {
  const c = s.choices as { text?: unknown; label?: unknown } | undefined;
  const text = strList(task, c?.text, row, 'choices.text');
  const label = strList(task, c?.label, row, 'choices.label');
  if (text.length !== label.length) {
    throw new MoeforgeError('invalid_data', `row ${row + 1}: choices.text has ${text.length} entries, choices.label ${label.length}`, { path: `builtin ${task}` });
  }
  return { text, label };
}

export function arcDefinition(task: string): BuiltinDefinition {
  return {
    reference: 'lm-evaluation-harness lm_eval/tasks/arc/arc_easy.yaml',
    defaults: { metrics: ['acc', 'acc_norm'] },
    docs: {
      type: 'multiple_choice',
      columns: ['question', 'choices', 'answerKey'],
      text: (s, row) => `Question: ${str(task, s, row, 'question')}\nAnswer:`,
      choices: (s, row) => choicesOf(task, s, row).text,
      target: (s, row) => {
        const key = str(task, s, row, 'answerKey');
        const { label } = choicesOf(task, s, row);
        const i = label.indexOf(key);
        if (i < 0) throw new MoeforgeError('invalid_data', `row ${row + 1}: answerKey "${key}" is not one of the labels ${label.join(', ')}`, { path: `builtin ${task}` });
        return i;
      },
    },
  };
}
