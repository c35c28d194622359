// The zoo suite in the harness's YAML format (benchmarks/eval/suite.ts): one
// `generate` task per skill, greedy, exact match on the answer, stopping at the
// model's EOS (the harness also stops at the suite's stop strings). Written by
// hand rather than through a YAML serialiser so that it reads like the example
// in the docs (`stop: ["\n"]`).
import { TASK_NAMES, type TaskName, type ZooTask } from './tasks.js';

export function zooSuiteYaml(tasks: Record<TaskName, ZooTask>, seed: number): string {
  const lines = [
    "# The expert zoo's suite: held-out questions per skill (see zoo.json for the models).",
    'name: zoo',
    `seed: ${seed}`,
    'tasks:',
  ];
  for (const n of TASK_NAMES) {
    lines.push(
      `  - name: ${n}`,
      '    type: generate',
      `    data: data/${n}.test.jsonl`,
      '    prompt: "{{ question }}"',
      '    target: "{{ answer }}"',
      `    max_new_tokens: ${tasks[n].maxAnswerChars + 1}`,
      '    stop: ["\\n"]',
      '    metrics: [exact_match]',
    );
  }
  return `${lines.join('\n')}\n`;
}
