// The end-to-end check of the remote path on one machine: a suite scored on the
// built-in engine directly and through `moeforge serve` (an in-process server on
// 127.0.0.1) must agree, generations exactly and log-likelihoods within 1e-4.
//
//   npx tsx benchmarks/eval/remote/compare-served.ts <model-folder> <suite.yml> [limit]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CausalLM } from '../../../core/model/causal-lm.js';
import { ServeEngine } from '../../../core/serve/engine.js';
import { startServer } from '../../../core/serve/server.js';
import { Tokenizer } from '../../../core/tokenizer/tokenizer.js';
import { evaluate, localModel } from '../evaluate.js';
import { loadSuite } from '../suite.js';
import { remoteModel } from './open.js';

export interface ServedComparison {
  /** Generated outputs compared, and how many differ. */
  generations: number;
  differing: number;
  /** Largest |direct − served| over every per-sample number (log-likelihoods, perplexity sums, predictions). */
  maxAbsDiff: number;
  /** Task → model (direct, served) → metric → value. */
  metrics: Record<string, Record<string, Record<string, number>>>;
  seconds: { direct: number; served: number };
}

export async function compareServed(folder: string, suiteFile: string, limit?: number): Promise<ServedComparison> {
  const suite = await loadSuite(suiteFile);
  const model = await CausalLM.load(folder);
  const server = await startServer(new ServeEngine(model, await Tokenizer.fromFolder(folder), folder), { port: 0 });
  try {
    const options = limit === undefined ? {} : { limit };
    let t0 = performance.now();
    const direct = await evaluate(suite, [localModel(folder, folder, { name: 'direct' })], options);
    const directSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const served = await evaluate(suite, [{ ...remoteModel(`openai:${server.url}/v1#${folder}`), name: 'served' }], options);
    const servedSeconds = (performance.now() - t0) / 1000;
    const out: ServedComparison = { generations: 0, differing: 0, maxAbsDiff: 0, metrics: {}, seconds: { direct: directSeconds, served: servedSeconds } };
    for (const [task, byModel] of Object.entries(direct.samples ?? {})) {
      const a = byModel.direct ?? [];
      const b = served.samples?.[task]?.served ?? [];
      if (a.length !== b.length) throw new Error(`${task}: ${a.length} direct samples, ${b.length} served (see the model errors in results)`);
      a.forEach((x, i) => {
        for (const [k, v] of Object.entries(x)) {
          const w = b[i]![k];
          if (k === 'output') {
            out.generations++;
            if (v !== w) out.differing++;
          } else if (typeof v === 'number') out.maxAbsDiff = Math.max(out.maxAbsDiff, Math.abs(v - (w as number)));
          else if (Array.isArray(v)) v.forEach((u, j) => (out.maxAbsDiff = Math.max(out.maxAbsDiff, Math.abs((u as number) - (w as number[])[j]!))));
        }
      });
      const values = (r: typeof direct, name: string) => {
        const run = r.results[task]?.[name];
        return run && 'metrics' in run ? Object.fromEntries(Object.entries(run.metrics).map(([m, v]) => [m, v.value])) : {};
      };
      out.metrics[task] = { direct: values(direct, 'direct'), served: values(served, 'served') };
    }
    return out;
  } finally {
    await server.close();
    model.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const [folder, suite, limit] = process.argv.slice(2);
  if (!folder || !suite) {
    process.stderr.write('usage: compare-served.ts <model-folder> <suite.yml> [limit]\n');
    process.exit(2);
  }
  const r = await compareServed(folder, suite, limit === undefined ? undefined : Number(limit));
  for (const [task, m] of Object.entries(r.metrics)) process.stdout.write(`${task}\tdirect ${JSON.stringify(m.direct)}\tserved ${JSON.stringify(m.served)}\n`);
  process.stdout.write(
    `generations: ${r.generations} compared, ${r.differing} differ; max |numeric difference| ${r.maxAbsDiff}; ${r.seconds.direct.toFixed(1)} s direct, ${r.seconds.served.toFixed(1)} s served\n`,
  );
  process.exitCode = r.differing === 0 && r.maxAbsDiff <= 1e-4 ? 0 : 1;
}
