// `npm run bench`: runs every performance suite in this folder, in file-name
// order, and prints one table per suite. A suite is a file here exporting
// `suite: PerfSuite`; adding a benchmark means adding a file, nothing else.
//   npm run bench               all suites
//   npm run bench -- io         only suites whose name contains "io"

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface PerfSuite {
  name: string;
  /** A short line printed above the table: what is measured, against what. */
  description?: string;
  /** Metric name → value; numbers are printed with 3 significant decimals. */
  run(): Promise<Record<string, number | string>>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** `.js` when run compiled (dist/), `.ts` under tsx. */
const EXT = path.extname(fileURLToPath(import.meta.url));

export async function discoverSuites(dir = HERE): Promise<{ file: string; suite: PerfSuite }[]> {
  const files = (await readdir(dir))
    .filter((f) => f.endsWith(EXT) && !f.endsWith(`.d${EXT}`) && f !== `run${EXT}`)
    .sort();
  const out: { file: string; suite: PerfSuite }[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { suite?: PerfSuite };
    if (mod.suite && typeof mod.suite.run === 'function') out.push({ file: f, suite: mod.suite });
  }
  return out;
}

function format(v: number | string): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3);
}

export function renderTable(rows: Record<string, number | string>): string {
  const entries = Object.entries(rows).map(([k, v]) => [k, format(v)] as const);
  const w = Math.max(6, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const suites = (await discoverSuites()).filter(
    ({ suite }) => filters.length === 0 || filters.some((f) => suite.name.includes(f)),
  );
  if (suites.length === 0) {
    console.error(`no benchmark suite matches ${filters.join(', ')}`);
    process.exitCode = 2;
    return;
  }
  console.log(`moeforge benchmarks — node ${process.version}, ${process.platform}/${process.arch}`);
  for (const { file, suite } of suites) {
    console.log(`\n## ${suite.name} (${file})${suite.description ? `\n${suite.description}` : ''}`);
    const started = performance.now();
    const result = await suite.run();
    console.log(renderTable(result));
    console.log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
