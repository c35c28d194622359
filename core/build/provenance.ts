// What a build records about itself (DESIGN.md §2 "Determinism and provenance"):
// `moeforge.yml` holds the resolved recipe (every default explicit), the seed, the
// tool version and the source revisions, so the same command rebuilds the same
// bytes; `README.md` is a Hub model card with front matter (base_model list, tags,
// library_name) as the Hub reads it.
import { stringify } from 'yaml';
import { formatBytes } from '../inspect.js';
import { codeBlock, renderModelCard } from '../model-card.js';
import { recipeToYamlObject } from '../recipe/moe-recipe.js';
import { VERSION } from '../version.js';
import type { BuildPlan } from './plan.js';

export function provenanceObject(plan: BuildPlan): Record<string, unknown> {
  return {
    ...recipeToYamlObject(plan.recipe),
    architecture: plan.format.name,
    dtype: plan.torchDtype,
    seed: plan.seed,
    moeforge: {
      version: VERSION,
      output_format: plan.format.name,
      sources: plan.inputs.models.map((m) => ({ ref: m.ref, field: m.field, revision: m.description.revision ?? null })),
    },
  };
}

export function provenanceYaml(plan: BuildPlan): string {
  return `# Resolved by moeforge ${VERSION}: \`moeforge build moeforge.yml --out <folder>\` rebuilds this model.\n${stringify(provenanceObject(plan), { lineWidth: 0 })}`;
}

export interface BuildFigures {
  parameters: number;
  activeParameters: number;
}

function count(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(1)}K`;
}

/** The card (core/model-card.ts renders the front matter); no timings, so a rebuild gives the same bytes. */
export function renderBuildCard(plan: BuildPlan, figures: BuildFigures): string {
  const r = plan.recipe;
  const experts = r.experts.map((e, i) => `| ${i} | ${e.sourceModel} | ${(e.positivePrompts ?? []).length} | ${(e.negativePrompts ?? []).length} |`);
  return renderModelCard({
    title: `${plan.outputConfig.architecture} mixture of experts`,
    baseModels: plan.inputs.models.map((m) => m.ref),
    tags: ['moe', 'merge', 'moeforge'],
    summary: `A ${r.experts.length}-expert mixture of experts (${r.expertsPerToken} active per token) built by moeforge ${VERSION} from dense models, in the ${plan.format.displayName} layout (\`${plan.outputConfig.architecture}\`).`,
    sections: [
      {
        heading: 'Build',
        body: [
          `- base model (attention, norms, embeddings): \`${r.baseModel}\`, shared weights: \`${r.sharedWeights.method}\``,
          `- gate mode: \`${r.gateMode}\`${plan.gate.forward ? ` (${plan.gate.prompts} prompts through the base model, every layer)` : ''}`,
          `- dtype: ${plan.torchDtype}, seed: ${plan.seed}`,
          `- parameters: ${count(figures.parameters)} total, ${count(figures.activeParameters)} active per token`,
          `- size: ${formatBytes(plan.totalBytes)} in ${plan.shards.length} shard(s)`,
          '',
          '| expert | model | positive prompts | negative prompts |',
          '|---:|---|---:|---:|',
          ...experts,
        ].join('\n'),
      },
      { heading: 'Recipe', body: codeBlock(stringify(recipeToYamlObject(r), { lineWidth: 0 }), 'yaml') },
    ],
  });
}
