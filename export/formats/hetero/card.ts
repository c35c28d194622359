// The model card of an exported heterogeneous MoE: front matter as every moeforge
// output (core/model-card.ts), the experts with their architecture and size, how the
// router works, how to load it with trust_remote_code, and the recipe.
import { codeBlock, renderModelCard } from '../../../core/model-card.js';
import type { HeteroExportOptions } from './write.js';

const ROUTER_TEXT = {
  perplexity: "perplexity routing (MergeME, arXiv 2502.00997): each expert scores the input by its mean token log-likelihood",
  centroid: "prompt centroids: each expert scores the input by the cosine between its mean final hidden state on it and the centroid of its hidden states on its positive prompts",
  uniform: 'uniform: every expert scores the same',
} as const;

export function renderHeteroCard(o: HeteroExportOptions, configs: Record<string, unknown>[]): string {
  const rows = o.experts.map((e, i) => {
    const c = configs[i]!;
    return `| ${i} | ${e.name} | \`${String(c['model_type'])}\` | ${String(c['hidden_size'])} | ${String(c['num_hidden_layers'])} | \`experts.${i}.\` |`;
  });
  const sections = [
    {
      heading: 'Experts',
      body: ['| # | expert | model_type | hidden_size | layers | tensor prefix |', '|---|---|---|---|---|---|', ...rows].join('\n'),
    },
    {
      heading: 'Routing',
      body: `One decision per sequence: ${ROUTER_TEXT[o.router.kind]}. Scores / ${o.router.temperature} go through a softmax; the top ${o.router.topK} expert(s) are kept and renormalised, and their next-token distributions are mixed with those weights (the model returns the log of the mixture as logits).`,
    },
    {
      heading: 'Usage',
      body: codeBlock(
        [
          'from transformers import AutoModelForCausalLM, AutoTokenizer',
          'model = AutoModelForCausalLM.from_pretrained("<this repo>", trust_remote_code=True)',
          'tokenizer = AutoTokenizer.from_pretrained("<this repo>")',
        ].join('\n'),
        'python',
      ) + '\n\nmoeforge runs it too: `moeforge inspect <folder>` describes it.',
    },
  ];
  if (o.recipeYaml) sections.push({ heading: 'Recipe', body: codeBlock(o.recipeYaml, 'yaml') });
  return renderModelCard({
    title: 'Heterogeneous mixture of experts',
    baseModels: o.experts.map((e) => e.ref),
    tags: ['moe', 'merge', 'moeforge', 'heterogeneous'],
    summary: `A training-free heterogeneous mixture of ${o.experts.length} experts of different architectures or sizes, built with moeforge. Every expert is kept whole; load with \`trust_remote_code=True\`.`,
    sections,
  });
}
