// Jinja templates over a sample's fields (@huggingface/jinja, the engine
// transformers.js renders chat templates with), as lm-evaluation-harness's
// doc_to_text / doc_to_target / doc_to_choice are Jinja over the dataset row.
// Jinja renders an unknown variable as an empty string; a prompt silently missing
// its question would score garbage, so the columns a template reads are found up
// front (from its tokens) and checked against the data.
import { Template, tokenize } from '@huggingface/jinja';
import { MoeforgeError } from '../../core/errors.js';
import type { Sample } from './data.js';

const NOT_COLUMNS = new Set([
  'in', 'not', 'and', 'or', 'if', 'else', 'elif', 'endif', 'for', 'endfor', 'set', 'endset', 'is', 'true', 'false', 'none',
  'True', 'False', 'None', 'loop', 'range', 'namespace', 'macro', 'endmacro', 'call', 'endcall', 'filter', 'endfilter',
  'raise_exception', 'strftime_now', 'recursive',
]);

/** Top-level variables a template reads (not attributes, filters, loop or `set` variables). */
export function templateVariables(source: string): string[] {
  const tokens = tokenize(source) as { value: string; type: string }[];
  const bound = new Set<string>();
  const used = new Set<string>();
  let forVars = false;
  tokens.forEach((tok, i) => {
    if (tok.type !== 'Identifier') return;
    const prev = tokens[i - 1];
    const value = tok.value;
    if (value === 'for' || value === 'set') {
      forVars = value === 'for';
      // `set x = …`: x is bound here.
      if (value === 'set' && tokens[i + 1]?.type === 'Identifier') bound.add(tokens[i + 1]!.value);
      return;
    }
    if (forVars) {
      if (value === 'in') forVars = false;
      else bound.add(value);
      return;
    }
    if (prev && (prev.type === 'Dot' || prev.type === 'Pipe' || prev.value === 'is')) return;
    if (tokens[i + 1]?.type === 'Equals' && prev?.value === 'set') return;
    // keyword arguments `f(x=1)`
    if (tokens[i + 1]?.type === 'Equals' && prev && (prev.type === 'OpenParen' || prev.type === 'Comma')) return;
    if (NOT_COLUMNS.has(value)) return;
    used.add(value);
  });
  return [...used].filter((v) => !bound.has(v));
}

export type Render = (sample: Sample) => string;

/** Compiles a template; `where` names it in errors (`suite.yml: tasks[0].prompt`). */
export function compileTemplate(source: string, where: string): Render {
  let t: Template;
  try {
    t = new Template(source);
  } catch (e) {
    throw new MoeforgeError('invalid_data', `not a valid Jinja template: ${(e as Error).message}`, { path: where, cause: e });
  }
  return (sample) => {
    try {
      return t.render(sample);
    } catch (e) {
      throw new MoeforgeError('invalid_data', `template failed on a sample: ${(e as Error).message}`, { path: where, cause: e });
    }
  };
}

/**
 * A template that yields a list (multiple-choice choices): `"{{ expr }}"` is
 * rendered through `tojson` and parsed, as lm-eval literal_evals doc_to_choice.
 */
export function compileListTemplate(source: string, where: string): (sample: Sample) => string[] {
  const m = source.trim().match(/^\{\{-?\s*([\s\S]+?)\s*-?\}\}$/);
  if (!m || m[1]!.includes('}}')) {
    throw new MoeforgeError('invalid_data', 'expected one "{{ expression }}" giving a list (e.g. "{{ choices }}"), or a list of templates', { path: where });
  }
  const render = compileTemplate(`{{ (${m[1]}) | tojson }}`, where);
  return (sample) => {
    const text = render(sample);
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      v = undefined;
    }
    if (!Array.isArray(v) || v.length < 2) {
      throw new MoeforgeError('invalid_data', `gives ${text.length > 60 ? `${text.slice(0, 60)}…` : text}, not a list of at least 2 choices`, { path: where });
    }
    return v.map((c) => (typeof c === 'string' ? c : JSON.stringify(c)));
  };
}

/** The first sample lacking one of `columns`, as one line naming task, file, row and column. */
export function checkColumns(samples: Sample[], columns: string[], task: string, file: string): void {
  samples.forEach((s, row) => {
    for (const c of columns) {
      if (!(c in s)) {
        const have = Object.keys(s).join(', ');
        throw new MoeforgeError('invalid_data', `task ${task} reads column "${c}", which row ${row + 1} does not have (columns: ${have})`, {
          path: file,
        });
      }
    }
  });
}
