// A task, resolved: where its samples come from, how a sample becomes a prompt,
// a reference and (multiple choice) choices, and the settings the runners use.
// Built-in definitions (benchmarks/eval/tasks/) and suite-defined Jinja tasks both
// produce a `TaskDocs`; the suite's keys override a built-in's defaults.
import type { Sample } from './data.js';
import { resolveDataPath, METRICS_BY_TYPE, type MetricName, type Suite, type TaskSpec, type TaskType } from './suite.js';
import { MoeforgeError } from '../../core/errors.js';
import { compileListTemplate, compileTemplate, templateVariables } from './template.js';
import { builtinTask } from './tasks/index.js';

/** How one sample becomes text (lm-eval's doc_to_text / doc_to_target / doc_to_choice). */
export interface TaskDocs {
  type: TaskType;
  /** Columns read; checked on every sample before any scoring. */
  columns: string[];
  text(sample: Sample, row: number): string;
  /** multiple_choice: the gold index; generate: the reference text; perplexity: unused. */
  target(sample: Sample, row: number): string | number;
  choices?(sample: Sample, row: number): string[];
  /** Put once before the few-shot examples (lm-eval's `description`). */
  description?(sample: Sample): string;
}

/** A built-in definition: its docs plus lm-eval's defaults for it. */
export interface BuiltinDefinition {
  docs: TaskDocs;
  defaults: Partial<TaskSettings>;
  /** Where the prompt format comes from. */
  reference: string;
}

export interface TaskSettings {
  numFewshot: number;
  targetDelimiter: string;
  fewshotDelimiter: string;
  chatTemplate: boolean;
  metrics: MetricName[];
  maxNewTokens: number;
  stop: string[];
  temperature: number;
  topP: number;
  regex: string | null;
  ignoreCase: boolean;
  ignorePunctuation: boolean;
  regexesToIgnore: string[];
}

export interface EvalTask extends TaskSettings {
  name: string;
  type: TaskType;
  builtin: string | null;
  dataFile: string;
  fewshotFile: string | null;
  limit: number | null;
  docs: TaskDocs;
  /** The suite's own entry, as written. */
  spec: TaskSpec;
}

// lm-eval's defaults: target_delimiter " ", fewshot_delimiter "\n\n", max_gen_toks 256, greedy.
const DEFAULTS: Omit<TaskSettings, 'metrics'> = {
  numFewshot: 0,
  targetDelimiter: ' ',
  fewshotDelimiter: '\n\n',
  chatTemplate: false,
  maxNewTokens: 256,
  stop: [],
  temperature: 0,
  topP: 1,
  regex: null,
  ignoreCase: false,
  ignorePunctuation: false,
  regexesToIgnore: [],
};

function templateDocs(spec: TaskSpec, type: TaskType, where: string): TaskDocs {
  const columns = new Set<string>();
  const use = (source: string) => templateVariables(source).forEach((c) => columns.add(c));
  const prompt = compileTemplate(spec.prompt!, `${where}.prompt`);
  use(spec.prompt!);
  const docs: TaskDocs = { type, columns: [], text: (s) => prompt(s), target: () => '' };
  if (spec.description !== undefined) {
    const d = compileTemplate(spec.description, `${where}.description`);
    use(spec.description);
    docs.description = (s) => d(s);
  }
  if (type === 'multiple_choice') {
    const c = spec.choices!;
    let choices: (s: Sample) => string[];
    if (Array.isArray(c)) {
      const parts = c.map((t, i) => compileTemplate(t, `${where}.choices[${i}]`));
      c.forEach(use);
      choices = (s) => parts.map((p) => p(s));
    } else {
      choices = compileListTemplate(c, `${where}.choices`);
      use(c);
    }
    docs.choices = choices;
    const target = compileTemplate(spec.target!, `${where}.target`);
    use(spec.target!);
    docs.target = (s, row) => {
      const t = target(s).trim();
      const list = choices(s);
      const index = /^\d+$/.test(t) ? Number(t) : list.indexOf(t);
      if (index < 0 || index >= list.length) {
        throw new MoeforgeError('invalid_data', `row ${row + 1}: target "${t}" is neither a choice index (0..${list.length - 1}) nor one of the choices`, {
          path: `${where}.target`,
        });
      }
      return index;
    };
  } else if (spec.target !== undefined) {
    const target = compileTemplate(spec.target, `${where}.target`);
    use(spec.target);
    docs.target = (s) => target(s);
  }
  docs.columns = [...columns];
  return docs;
}

/** Resolves one suite task (built-in defaults, then the suite's keys). */
export function resolveTask(suite: Suite, spec: TaskSpec, index: number, label = suite.file): EvalTask {
  const where = `${label}: tasks[${index}]`;
  const builtin = spec.builtin ? builtinTask(spec.builtin) : undefined;
  if (builtin && spec.type && spec.type !== builtin.docs.type) {
    throw new MoeforgeError('invalid_data', `builtin ${spec.builtin} is a ${builtin.docs.type} task, not ${spec.type}`, { path: `${where}.type` });
  }
  const type = builtin?.docs.type ?? spec.type!;
  // A built-in's prompt can be overridden by the suite (then it is a Jinja task over the same columns).
  const docs = builtin && spec.prompt === undefined ? builtin.docs : templateDocs(spec, type, where);
  if (builtin && spec.prompt !== undefined) {
    if (type === 'multiple_choice' && (spec.choices === undefined || spec.target === undefined)) {
      throw new MoeforgeError('invalid_data', 'overriding a built-in multiple_choice prompt needs choices and target too', { path: `${where}.prompt` });
    }
  }
  const base = { ...DEFAULTS, metrics: [...METRICS_BY_TYPE[type]], ...(builtin?.defaults ?? {}) };
  if (spec.metrics) {
    const bad = spec.metrics.find((m) => !METRICS_BY_TYPE[type].includes(m));
    if (bad) throw new MoeforgeError('invalid_data', `metric ${bad} does not apply to ${type} tasks; expected ${METRICS_BY_TYPE[type].join(', ')}`, { path: `${where}.metrics` });
  }
  return {
    name: spec.name,
    type,
    builtin: spec.builtin ?? null,
    dataFile: resolveDataPath(suite, spec.data),
    fewshotFile: spec.fewshot_data === undefined ? null : resolveDataPath(suite, spec.fewshot_data),
    limit: spec.limit ?? null,
    docs,
    spec,
    numFewshot: spec.num_fewshot ?? base.numFewshot,
    targetDelimiter: spec.target_delimiter ?? base.targetDelimiter,
    fewshotDelimiter: spec.fewshot_delimiter ?? base.fewshotDelimiter,
    chatTemplate: spec.chat_template ?? base.chatTemplate,
    metrics: spec.metrics ?? base.metrics,
    maxNewTokens: spec.max_new_tokens ?? base.maxNewTokens,
    stop: spec.stop ?? base.stop,
    temperature: spec.temperature ?? base.temperature,
    topP: spec.top_p ?? base.topP,
    regex: spec.regex ?? base.regex,
    ignoreCase: spec.ignore_case ?? base.ignoreCase,
    ignorePunctuation: spec.ignore_punctuation ?? base.ignorePunctuation,
    regexesToIgnore: spec.regexes_to_ignore ?? base.regexesToIgnore,
  };
}

/** The task as results.json records it: every setting explicit, in the suite's spelling. */
export function taskConfig(task: EvalTask): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: task.name,
    type: task.type,
    builtin: task.builtin,
    data: task.spec.data,
    fewshot_data: task.spec.fewshot_data ?? null,
    num_fewshot: task.numFewshot,
    target_delimiter: task.targetDelimiter,
    fewshot_delimiter: task.fewshotDelimiter,
    chat_template: task.chatTemplate,
    metrics: task.metrics,
    limit: task.limit,
  };
  for (const k of ['prompt', 'target', 'choices', 'description'] as const) if (task.spec[k] !== undefined) out[k] = task.spec[k];
  if (task.type === 'generate') {
    Object.assign(out, {
      max_new_tokens: task.maxNewTokens,
      stop: task.stop,
      temperature: task.temperature,
      top_p: task.topP,
      regex: task.regex,
      ignore_case: task.ignoreCase,
      ignore_punctuation: task.ignorePunctuation,
      regexes_to_ignore: task.regexesToIgnore,
    });
  }
  return out;
}
