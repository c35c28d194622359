// An evaluation suite: a YAML file naming tasks. The schema is zod, strict (an
// unknown key is an error naming its YAML path), and mirrors the fields of
// lm-evaluation-harness task YAMLs where they overlap (doc_to_text → prompt,
// doc_to_target → target, doc_to_choice → choices, num_fewshot, target_delimiter,
// fewshot_delimiter, generation `until` → stop, exact_match's ignore_* options),
// so a user of lm-eval recognises them.
//
//   name: zoo
//   seed: 0
//   tasks:
//     - name: addition
//       type: generate            # multiple_choice | generate | perplexity
//       data: addition.test.jsonl # relative to the suite file (JSONL or .parquet)
//       prompt: "{{ question }}"  # Jinja over the sample's fields
//       target: "{{ answer }}"
//       max_new_tokens: 8
//       stop: ["\n"]
//       metrics: [exact_match]
//     - name: arc
//       type: multiple_choice
//       builtin: arc              # a built-in definition over the public column layout
//       data: arc.jsonl
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { MoeforgeError, fsError } from '../../core/errors.js';
import { loadYamlDocument } from '../../core/recipe/yaml.js';

export const TASK_TYPES = ['multiple_choice', 'generate', 'perplexity'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export const BUILTIN_TASKS = ['mmlu', 'arc', 'arc_easy', 'arc_challenge', 'hellaswag', 'gsm8k'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASKS)[number];

export const METRICS = ['acc', 'acc_norm', 'exact_match', 'token_perplexity', 'byte_perplexity', 'bits_per_byte'] as const;
export type MetricName = (typeof METRICS)[number];

/** Which metrics each task type can compute (the first ones are its defaults). */
export const METRICS_BY_TYPE: Record<TaskType, readonly MetricName[]> = {
  multiple_choice: ['acc', 'acc_norm'],
  generate: ['exact_match'],
  perplexity: ['token_perplexity', 'byte_perplexity', 'bits_per_byte'],
};

const taskSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a name of letters, digits, _ . -'),
    type: z.enum(TASK_TYPES).optional(),
    builtin: z.enum(BUILTIN_TASKS).optional(),
    /** A local JSONL / Parquet file, relative to the suite file; `hf://datasets/org/name` later. */
    data: z.string().min(1),
    /** Jinja over the sample's fields: the context (perplexity: the text scored). */
    prompt: z.string().optional(),
    /** generate: the reference answer; multiple_choice: the gold index, or the gold choice's text. */
    target: z.string().optional(),
    /** multiple_choice: Jinja templates, one per choice, or one `{{ expr }}` giving a list. */
    choices: z.union([z.string(), z.array(z.string()).min(2)]).optional(),
    /** Rendered once per task and put before the few-shot examples (lm-eval's `description`). */
    description: z.string().optional(),
    target_delimiter: z.string().optional(),
    fewshot_delimiter: z.string().optional(),
    num_fewshot: z.number().int().min(0).max(64).optional(),
    /** Where few-shot examples come from (default: the task's own data, never the sample itself). */
    fewshot_data: z.string().min(1).optional(),
    /** Wrap the prompt in the model's chat template (one user turn, generation prompt added). */
    chat_template: z.boolean().optional(),
    max_new_tokens: z.number().int().min(1).max(4096).optional(),
    stop: z.array(z.string().min(1)).optional(),
    /** 0 = greedy; above 0 samples with the suite seed. */
    temperature: z.number().min(0).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    /** generate: take the first match's group 1 (or the whole match) of this regex from the output. */
    regex: z.string().optional(),
    ignore_case: z.boolean().optional(),
    ignore_punctuation: z.boolean().optional(),
    /** Removed from prediction and reference before comparison (lm-eval's `regexes_to_ignore`). */
    regexes_to_ignore: z.array(z.string()).optional(),
    metrics: z.array(z.enum(METRICS)).min(1).optional(),
    limit: z.number().int().min(1).optional(),
  });

const suiteSchema = z.strictObject({
  name: z.string().min(1),
  seed: z.number().int().min(0).optional(),
  description: z.string().optional(),
  tasks: z.array(taskSchema).min(1),
});

export type TaskSpec = z.infer<typeof taskSchema>;

export interface Suite {
  name: string;
  seed: number;
  description?: string;
  /** The suite file (absolute); task data paths are resolved against its folder. */
  file: string;
  tasks: TaskSpec[];
}

function yamlPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : `${out ? '.' : ''}${String(k)}`;
  return out;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

function valueAt(raw: unknown, p: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const k of p) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function fail(file: string, at: string, message: string): MoeforgeError {
  return new MoeforgeError('invalid_data', message, { path: `${file}: ${at}` });
}

/** Validates a parsed YAML value as a suite; `file` names it in errors and anchors data paths. */
export function validateSuite(raw: unknown, file: string): Suite {
  const parsed = suiteSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = [...parsed.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
    const issue = issues[0]!;
    const at = yamlPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const known = Object.keys(issue.path.length === 0 ? suiteSchema.shape : taskSchema.shape);
      throw fail(file, at ? `${at}.${key}` : key, `unknown key; expected one of ${known.join(', ')}`);
    }
    const got = valueAt(raw, issue.path);
    // zod 4 says "Invalid input: expected number, received string"; show the value instead.
    const said = issue.message.replace(/^Invalid (input|option): /, '').replace(/, received .*$/, '');
    const message = said.startsWith('expected ') ? `${got === undefined ? 'required: ' : ''}${said}${got === undefined ? '' : `, got ${describeValue(got)}`}` : said;
    throw fail(file, at || '(top level)', message);
  }
  const s = parsed.data;
  const seen = new Set<string>();
  s.tasks.forEach((t, i) => {
    const at = (k: string) => `tasks[${i}].${k}`;
    if (seen.has(t.name)) throw fail(file, at('name'), `task name "${t.name}" is used twice`);
    seen.add(t.name);
    if (!t.builtin && !t.type) throw fail(file, at('type'), `required: expected one of ${TASK_TYPES.join(', ')} (or a builtin: ${BUILTIN_TASKS.join(', ')})`);
    if (!t.builtin && t.prompt === undefined) throw fail(file, at('prompt'), 'required: a Jinja template over the sample fields, e.g. "{{ question }}"');
    const type = t.type;
    if (!t.builtin && type === 'multiple_choice') {
      if (t.choices === undefined) throw fail(file, at('choices'), 'required for multiple_choice: a list of templates or "{{ column }}" naming a list column');
      if (t.target === undefined) throw fail(file, at('target'), 'required for multiple_choice: the gold choice (index or text)');
    }
    if (!t.builtin && type === 'generate' && t.target === undefined) throw fail(file, at('target'), 'required for generate: the reference answer template');
    if (type && t.metrics) {
      const allowed = METRICS_BY_TYPE[type];
      const bad = t.metrics.find((m) => !allowed.includes(m));
      if (bad) throw fail(file, at('metrics'), `metric ${bad} does not apply to ${type} tasks; expected ${allowed.join(', ')}`);
    }
    for (const [k, v] of [['regex', t.regex], ...(t.regexes_to_ignore ?? []).map((r) => ['regexes_to_ignore', r] as const)] as const) {
      if (v === undefined) continue;
      try {
        new RegExp(v);
      } catch (e) {
        throw fail(file, at(k), `not a valid regular expression: ${(e as Error).message}`);
      }
    }
  });
  const suite: Suite = { name: s.name, seed: s.seed ?? 0, file, tasks: s.tasks };
  if (s.description !== undefined) suite.description = s.description;
  return suite;
}

/** Reads and validates a suite file. */
export async function loadSuite(file: string): Promise<Suite> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw fsError(e, file, 'read the suite');
  }
  let raw: unknown;
  try {
    raw = loadYamlDocument(text, file);
  } catch (e) {
    // Same line, but a suite is a data file, not a recipe.
    const err = e as MoeforgeError;
    throw new MoeforgeError('invalid_data', err.message, { path: err.path ?? file, cause: e });
  }
  return { ...validateSuite(raw, file), file: abs };
}

/** A task's data path, resolved against the suite's folder. */
export function resolveDataPath(suite: Suite, data: string): string {
  if (/^(hf|hub):/.test(data)) return data;
  return path.resolve(path.dirname(suite.file), data);
}
