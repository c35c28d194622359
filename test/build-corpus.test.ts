// Published mergekit-moe recipes, verbatim from the corpus (read from ../shared, not
// copied), with their model references substituted by local tiny models (llama-tiny
// for llama / mistral / Yi / SOLAR recipes, qwen2-tiny for Qwen2 ones; one folder per
// distinct reference), planned as `--dry-run` plans them: output format, experts,
// gate mode, tensor count and output bytes checked against hand-computed values.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRecipeText, planFromRecipe } from '../core/build/build.js';
import { formatPlan, summarizePlan } from '../core/build/dry-run.js';
import { buildTestContainer, goldenCopy } from './helpers/build-fixtures.js';
import { CORPUS_DIR, tempDir } from './helpers/paths.js';

const container = buildTestContainer();

// Both tiny models: hidden 64, intermediate 96, 3 layers, vocab 128, q 4×16, kv 2×16, float32.
const D = 64;
const I = 96;
const L = 3;
const V = 128;

/** Expected (tensors, elements) of an output, from the shapes transformers builds. */
function expectedCounts(format: 'mixtral' | 'qwen2_moe', experts: number, tied: boolean): { tensors: number; elements: number } {
  const attn = D * D + 2 * (32 * D) + D * D; // q, k, v, o
  const perLayerCommon = 2 * D + attn + experts * D + experts * 3 * I * D; // norms, attention, router, experts
  if (format === 'mixtral') {
    return { tensors: 2 + (tied ? 0 : 1) + L * (2 + 4 + 1 + 3 * experts), elements: V * D * (tied ? 1 : 2) + D + L * perLayerCommon };
  }
  // qwen2_moe adds q/k/v biases, a shared expert (3 × I×D) and its gate [1, d].
  return {
    tensors: 2 + (tied ? 0 : 1) + L * (2 + 4 + 3 + 1 + 3 * experts + 3 + 1),
    elements: V * D * (tied ? 1 : 2) + D + L * (perLayerCommon + D + 2 * 32 + 3 * I * D + D),
  };
}

const REF_LINE = /^(\s*(?:-\s*)?(?:base_model|source_model):\s*)("[^"]*"|'[^']*'|[^#\r\n]*?)(\s*(?:#.*)?)(\r?)$/;

/** Replaces every model reference in the recipe text by a local folder (one per distinct reference). */
async function substitute(text: string, dir: string, model: 'llama-tiny' | 'qwen2-tiny'): Promise<{ text: string; folders: Map<string, string> }> {
  const folders = new Map<string, string>();
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    const m = REF_LINE.exec(line);
    if (!m || m[2]!.trim() === '') {
      lines.push(line);
      continue;
    }
    const ref = m[2]!.trim().replace(/^["']|["']$/g, '');
    if (!folders.has(ref)) folders.set(ref, await goldenCopy(dir, model, `m${folders.size}`));
    lines.push(`${m[1]}${folders.get(ref)}${m[3]}${m[4]}`);
  }
  return { text: lines.join('\n'), folders };
}

interface Case {
  file: string;
  model: 'llama-tiny' | 'qwen2-tiny';
  format: 'mixtral' | 'qwen2_moe';
  experts: number;
  perToken: number;
  gate: string;
  dtype: 'float32' | 'float16' | 'bfloat16';
}

const CASES: Case[] = [
  { file: '004', model: 'llama-tiny', format: 'mixtral', experts: 4, perToken: 2, gate: 'hidden', dtype: 'bfloat16' }, // Yi-34B, negative prompts
  { file: '007', model: 'llama-tiny', format: 'mixtral', experts: 4, perToken: 2, gate: 'hidden', dtype: 'float16' },
  { file: '008', model: 'llama-tiny', format: 'mixtral', experts: 4, perToken: 2, gate: 'hidden', dtype: 'float32' }, // no gate_mode, no dtype
  { file: '011', model: 'llama-tiny', format: 'mixtral', experts: 2, perToken: 2, gate: 'hidden', dtype: 'bfloat16' }, // anchors
  { file: '015', model: 'llama-tiny', format: 'mixtral', experts: 4, perToken: 2, gate: 'hidden', dtype: 'bfloat16' }, // architecture: mixtral
  { file: '016', model: 'qwen2-tiny', format: 'qwen2_moe', experts: 3, perToken: 2, gate: 'hidden', dtype: 'float16' }, // architecture: qwen, shared expert
  { file: '019', model: 'llama-tiny', format: 'mixtral', experts: 6, perToken: 6, gate: 'hidden', dtype: 'bfloat16' },
  { file: '020', model: 'qwen2-tiny', format: 'qwen2_moe', experts: 3, perToken: 2, gate: 'cheap_embed', dtype: 'bfloat16' },
  { file: '022', model: 'llama-tiny', format: 'mixtral', experts: 2, perToken: 2, gate: 'hidden', dtype: 'bfloat16' },
  { file: '029', model: 'llama-tiny', format: 'mixtral', experts: 2, perToken: 2, gate: 'cheap_embed', dtype: 'float16' },
  { file: '033', model: 'llama-tiny', format: 'mixtral', experts: 4, perToken: 2, gate: 'hidden', dtype: 'bfloat16' }, // indented document
  { file: '036', model: 'qwen2-tiny', format: 'qwen2_moe', experts: 4, perToken: 1, gate: 'hidden', dtype: 'bfloat16' },
  { file: '038', model: 'llama-tiny', format: 'mixtral', experts: 2, perToken: 2, gate: 'hidden', dtype: 'float16' },
  { file: '040', model: 'llama-tiny', format: 'mixtral', experts: 4, perToken: 2, gate: 'hidden', dtype: 'float32' },
];

for (const c of CASES) {
  test(`corpus moe/${c.file}.yml: --dry-run plan`, async (t) => {
    const { dir, cleanup } = await tempDir();
    t.teardown(cleanup);
    const original = await readFile(path.join(CORPUS_DIR, 'moe', `${c.file}.yml`), 'utf8');
    const { text, folders } = await substitute(original, dir, c.model);
    const recipe = parseRecipeText(container, text, `${c.file}.yml`);
    const plan = await planFromRecipe(container, recipe);
    const s = summarizePlan(plan);
    const tied = c.model === 'qwen2-tiny';
    const want = expectedCounts(c.format, c.experts, tied);
    const bytesPer = c.dtype === 'float32' ? 4 : 2;
    t.is(s.format, c.format);
    t.is(s.experts, c.experts);
    t.is(s.expertsPerToken, c.perToken);
    t.is(s.gateMode, c.gate);
    t.is(s.dtype, c.dtype);
    t.is(s.tensors, want.tensors);
    t.is(s.totalBytes, want.elements * bytesPer);
    t.is(s.models.length, folders.size);
    t.is(s.shards.length, 1);
    // Same-dtype expert FFNs and base tensors are byte copies; float32 → 16-bit ones are converted.
    t.is(s.rawCopies, c.dtype === 'float32' ? s.operations.copy + s.operations.expert : 0);
    // mergekit's warning for llama.cpp: a non-power-of-two expert count.
    t.is(plan.warnings.some((w) => w.includes('not a power of two')), (c.experts & (c.experts - 1)) !== 0);
    const printed = formatPlan(plan);
    t.regex(printed, new RegExp(`^output format {5}${c.format} `));
    t.regex(printed, new RegExp(`output bytes {6}${s.totalBytes} `));
  });
}

test('corpus: at least ten published recipes are planned', (t) => {
  t.true(CASES.length >= 10);
});
