// Cross-check of the exported heterogeneous repos against transformers' own code
// (issue 9: the remote code must follow the engine's formulas). This half runs here:
// it writes three small repos, one per router family and form (whole + perplexity,
// whole + learned, projected + embedding), with experts of three shapes (llama d64,
// qwen2 d48 with tied embeddings, qwen2 d32), and the engine's mixture logits, routing
// weights and greedy generations on a padded batch as expected.json. The other half,
// hetero_check.py, loads each repo with AutoModelForCausalLM(trust_remote_code=True)
// where torch and transformers are installed and compares.
//
//   npx tsx benchmarks/eval/transformers-check/hetero.ts <dir>
//   python3 benchmarks/eval/transformers-check/hetero_check.py <dir>
// With `--repo name=folder` (repeatable) it writes the expectations of repos you built
// instead (paths as given, relative to where the Python half runs).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadHeteroRepo } from '../../../core/hetero/load.js';
import type { SequenceRouterSpec } from '../../../core/hetero/router.js';
import type { ProjectedWeights } from '../../../core/plugins.js';
import { Rng } from '../../../core/rng.js';
import { writeHeteroRepo } from '../../../export/formats/hetero/write.js';
import { charTokenizerFiles } from '../../synthetic/char-tokenizer.js';
import { writeSyntheticModel, type SyntheticModelOptions } from '../../synthetic/dense-model.js';

const V = 128;
const EXPERTS: (SyntheticModelOptions & { name: string })[] = [
  { name: 'llama-d64', family: 'llama', hiddenSize: 64, intermediateSize: 96, numLayers: 3, vocabSize: V, numHeads: 4, numKvHeads: 2, seed: 1, scale: 0.2 },
  { name: 'qwen2-d48-tied', family: 'qwen2', hiddenSize: 48, intermediateSize: 64, numLayers: 2, vocabSize: V, numHeads: 4, numKvHeads: 2, seed: 2, scale: 0.2, tieWordEmbeddings: true },
  { name: 'qwen2-d32', family: 'qwen2', hiddenSize: 32, intermediateSize: 48, numLayers: 2, vocabSize: V, numHeads: 4, numKvHeads: 2, seed: 3, scale: 0.2 },
];
const BATCH = [
  [1, 40, 41, 42, 43, 44, 10, 11, 12],
  [0, 0, 0, 1, 50, 51, 52, 53, 54],
];
const MASK = [BATCH[0]!.map(() => 1), [0, 0, 0, 1, 1, 1, 1, 1, 1]];

/** The engine's outputs on the fixed batch: what transformers must reproduce. */
async function expectations(folder: string): Promise<Record<string, unknown>> {
  const moe = await loadHeteroRepo(folder);
  try {
    const f = await moe.forward(BATCH, { attentionMask: MASK });
    // Stopping at the config's EOS, as transformers' generate() does.
    const e = moe.config.eosTokenId;
    const eos = e === null ? [] : Array.isArray(e) ? e : [e];
    const generated = await moe.generate(BATCH[0]!, { maxNewTokens: 6, temperature: 0, stopTokens: eos });
    return { folder, logits: Array.from(f.logits), routing: f.routingWeights, generated };
  } finally {
    moe.dispose();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dir = path.resolve(args.find((a) => !a.startsWith('--') && !args[args.indexOf(a) - 1]?.startsWith('--repo')) ?? 'transformers-check');
  const given = args.flatMap((a, i) => (args[i - 1] === '--repo' ? [a.split('=') as [string, string]] : []));
  await mkdir(dir, { recursive: true });
  if (given.length > 0) {
    const expected: Record<string, unknown> = { batch: BATCH, mask: MASK };
    for (const [name, folder] of given) expected[name] = await expectations(folder);
    await writeFile(path.join(dir, 'expected.json'), JSON.stringify(expected));
    process.stdout.write(`wrote ${path.join(dir, 'expected.json')}\n`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const experts = [];
  for (const e of EXPERTS) {
    const folder = path.join(dir, 'experts', e.name);
    await writeSyntheticModel(folder, e);
    for (const [f, text] of Object.entries(charTokenizerFiles({ vocabSize: V }))) await writeFile(path.join(folder, f), text);
    experts.push({ name: e.name, ref: folder, folder });
  }
  const rng = new Rng(5);
  const randn = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  const D = Math.max(...EXPERTS.map((e) => e.hiddenSize));
  const projected: ProjectedWeights = {
    sharedHiddenSize: D,
    embed: randn(V * D, 0.5),
    lmHead: randn(V * D, 0.5),
    projIn: EXPERTS.map((e) => randn(e.hiddenSize * D, 1 / Math.sqrt(D))),
    projOut: EXPERTS.map((e) => randn(D * e.hiddenSize, 1 / Math.sqrt(e.hiddenSize))),
    router: randn(EXPERTS.length * D, 2),
    report: [],
  };
  const features = EXPERTS.reduce((s, e) => s + e.hiddenSize, 0);
  const repos: Record<string, { router: SequenceRouterSpec; projected?: ProjectedWeights }> = {
    perplexity: { router: { kind: 'perplexity', topK: 2, temperature: 1 } },
    learned: { router: { kind: 'learned', topK: 2, temperature: 1, weight: randn(EXPERTS.length * features, 0.5) } },
    projected: { router: { kind: 'embedding', topK: 2, temperature: 1, weight: projected.router }, projected },
  };
  const expected: Record<string, unknown> = { batch: BATCH, mask: MASK };
  for (const [name, r] of Object.entries(repos)) {
    const out = path.join(dir, name);
    await writeHeteroRepo(out, { experts, router: r.router, tokenizerFolder: experts[0]!.folder, ...(r.projected ? { projected: r.projected } : {}) });
    expected[name] = { ...(await expectations(out)), folder: name };
    process.stdout.write(`wrote ${out}\n`);
  }
  await writeFile(path.join(dir, 'expected.json'), JSON.stringify(expected));
  process.stdout.write(`wrote ${path.join(dir, 'expected.json')}; now: python3 ${path.relative(process.cwd(), path.join(path.dirname(new URL(import.meta.url).pathname), 'hetero_check.py'))} ${dir}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
