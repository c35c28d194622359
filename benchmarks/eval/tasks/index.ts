// The built-in task definitions, by the name a suite's `builtin:` gives.
import type { BuiltinTaskName } from '../suite.js';
import type { BuiltinDefinition } from '../task.js';
import { arcDefinition } from './arc.js';
import { gsm8k } from './gsm8k.js';
import { hellaswag } from './hellaswag.js';
import { mmlu } from './mmlu.js';

export function builtinTask(name: BuiltinTaskName): BuiltinDefinition {
  switch (name) {
    case 'mmlu':
      return mmlu;
    case 'arc':
    case 'arc_easy':
    case 'arc_challenge':
      return arcDefinition(name);
    case 'hellaswag':
      return hellaswag;
    case 'gsm8k':
      return gsm8k;
  }
}
