// Helpers shared by the built-in task definitions: typed field access with an error
// naming the row and column when the public layout is not what the file holds.
import { MoeforgeError } from '../../../core/errors.js';
import type { Sample } from '../data.js';

function bad(task: string, row: number, column: string, expected: string, got: unknown): MoeforgeError {
  const shown = JSON.stringify(got);
  return new MoeforgeError('invalid_data', `row ${row + 1}: column "${column}" should be ${expected}, got ${shown === undefined ? 'nothing' : shown.slice(0, 60)}`, {
    path: `builtin ${task}`,
  });
}

export function str(task: string, s: Sample, row: number, column: string): string {
  const v = s[column];
  if (typeof v !== 'string') throw bad(task, row, column, 'a string', v);
  return v;
}

export function strList(task: string, v: unknown, row: number, column: string): string[] {
  if (!Array.isArray(v) || v.length < 2 || v.some((x) => typeof x !== 'string')) throw bad(task, row, column, 'a list of at least 2 strings', v);
  return v as string[];
}

export function int(task: string, v: unknown, row: number, column: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw bad(task, row, column, 'a non-negative integer', v);
  return n;
}
