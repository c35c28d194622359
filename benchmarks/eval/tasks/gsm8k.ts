// GSM8K (Cobbe et al. 2021, https://arxiv.org/abs/2110.14168) in the openai/gsm8k
// layout: question, answer (worked solution ending in "#### N"). As
// lm-evaluation-harness's gsm8k.yaml: prompt "Question: {q}\nAnswer:", 5-shot,
// greedy until "Question:", "</s>" or "<|im_end|>"; the "strict-match" filter takes
// the first "#### (-?[0-9.,]+)" group of the output; exact_match ignores case and
// the regexes ",", "$", everything up to "#### " and a final ".", which reduces the
// reference to N.
import type { BuiltinDefinition } from '../task.js';
import { str } from './common.js';

export const gsm8k: BuiltinDefinition = {
  reference: 'lm-evaluation-harness lm_eval/tasks/gsm8k/gsm8k.yaml',
  defaults: {
    numFewshot: 5,
    metrics: ['exact_match'],
    stop: ['Question:', '</s>', '<|im_end|>'],
    maxNewTokens: 256,
    temperature: 0,
    regex: '#### (\\-?[0-9\\.\\,]+)',
    ignoreCase: true,
    ignorePunctuation: false,
    regexesToIgnore: [',', '\\$', '(?s).*#### ', '\\.$'],
  },
  docs: {
    type: 'generate',
    columns: ['question', 'answer'],
    text: (s, row) => `Question: ${str('gsm8k', s, row, 'question')}\nAnswer:`,
    target: (s, row) => str('gsm8k', s, row, 'answer'),
  },
};
