// The model card of an exported heterogeneous MoE: front matter as every moeforge
// output (core/model-card.ts), the experts with their architecture and size, how the
// router works, how to load it with trust_remote_code, and the recipe.
import { codeBlock, renderModelCard } from '../../../core/model-card.js';
import type { SequenceRouterKind } from '../../../core/hetero/router.js';
import type { HeteroExportOptions } from './write.js';

const ROUTER_TEXT: Record<SequenceRouterKind, string> = {
  perplexity: "perplexity routing (MergeME, arXiv 2502.00997): each expert scores the input by its mean token log-likelihood",
  centroid: "prompt centroids: each expert scores the input by the cosine between its mean final hidden state on it and the centroid of its hidden states on its positive prompts",
  learned: "a learned router: a linear map of the experts' mean final hidden states on the input (concatenated), trained on the experts' data to say whose data it is",
  embedding: "a learned router on the mean shared token embedding of the input (MergeME §3.2), trained on the experts' data to say whose data it is",
  uniform: 'uniform: every expert scores the same',
};

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
    ...(o.projected
      ? [
          {
            heading: 'Projected form (MergeME §3.2)',
            body: `The experts share one embedding and LM head of width ${o.projected.sharedHiddenSize} (\`shared.*\`, initialised as the average of the experts' zero-padded to that width); each expert's own layers and final norm sit between a projection in (\`proj_in.{i}\`) and a projection out (\`proj_out.{i}\`), trained on the experts' data with the rest frozen.`,
          },
        ]
      : []),
    ...(o.report && o.report.length > 0 ? [{ heading: 'Training', body: o.report.map((l) => `- ${l}`).join('\n') }] : []),
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
    summary: o.projected
      ? `A heterogeneous mixture of ${o.experts.length} experts of different architectures or sizes in MergeME's trained form (shared embedding and head, per-expert projections), built with moeforge; load with \`trust_remote_code=True\`.`
      : `A heterogeneous mixture of ${o.experts.length} experts of different architectures or sizes, built with moeforge. Every expert is kept whole; load with \`trust_remote_code=True\`.`,
    sections,
  });
}
