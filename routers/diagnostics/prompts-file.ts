// The prompts file of `moeforge routes`: a YAML mapping group name → list of prompt
// strings. Validated strictly (one clear line per problem, code invalid_data) because a
// typo in a group name silently gives a diagnostic of the wrong thing.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { MoeforgeError, fsError } from '../../core/errors.js';

export type PromptGroups = Map<string, string[]>;

/** Validates an already-parsed YAML value; `expectedGroups`, when given, must contain every group. */
export function validatePromptGroups(raw: unknown, label: string, expectedGroups?: readonly string[]): PromptGroups {
  const fail = (message: string, where = label) => new MoeforgeError('invalid_data', message, { path: where });
  if (raw === null || raw === undefined) throw fail('the prompts file is empty; expected a mapping of group name → list of prompts');
  if (typeof raw !== 'object' || Array.isArray(raw)) throw fail('expected a mapping of group name → list of prompts');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) throw fail('the prompts file has no groups; expected a mapping of group name → list of prompts');
  const groups: PromptGroups = new Map();
  for (const [name, value] of entries) {
    const at = `${label}: ${name}`;
    if (expectedGroups && !expectedGroups.includes(name)) {
      throw fail(`unknown group "${name}"; expected one of ${expectedGroups.join(', ')}`, at);
    }
    if (!Array.isArray(value)) throw fail('expected a list of prompt strings', at);
    if (value.length === 0) throw fail('the group has no prompts; expected a non-empty list of prompt strings', at);
    value.forEach((p, i) => {
      if (typeof p !== 'string' || p.length === 0) throw fail('expected a non-empty prompt string', `${at}[${i}]`);
    });
    groups.set(name, value as string[]);
  }
  return groups;
}

export function parsePromptGroups(text: string, label: string, expectedGroups?: readonly string[]): PromptGroups {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new MoeforgeError('invalid_data', `not valid YAML: ${(e as Error).message.split('\n')[0]}`, { path: label, cause: e });
  }
  return validatePromptGroups(raw, label, expectedGroups);
}

export async function readPromptGroups(file: string, expectedGroups?: readonly string[]): Promise<PromptGroups> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fsError(e, file, 'read the prompts file');
  }
  return parsePromptGroups(text, file, expectedGroups);
}
