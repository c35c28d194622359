// Reading resolved merge parameters: typed, with one error naming the parameter.
import { z } from 'zod';
import { MoeforgeError } from '../../core/errors.js';

/** mergekit reads booleans by truthiness; mergekit-written configs say `normalize: 1.0`. */
export const boolish = z.union([z.boolean(), z.number()]).transform((v) => Boolean(v));

/** Parses resolved parameters with a zod schema; the first problem becomes an invalid_parameter error. */
export function parseParams<T>(schema: z.ZodType<T>, value: Record<string, unknown>, prefix: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const name = issue.path.map(String).join('.');
  const got = issue.path.length ? JSON.stringify(value[String(issue.path[0])]) : JSON.stringify(value);
  throw new MoeforgeError('invalid_parameter', `${issue.message} (got ${got})`, { path: `${prefix}${name}` });
}

export function modelPrefix(i: number): string {
  return `models[${i}].parameters.`;
}
