// README.md model cards with Hugging Face front matter (https://huggingface.co/docs/hub/model-cards):
// `base_model:` lists the sources (the Hub links the model tree from it), `tags:`, and
// `library_name: transformers`, then free sections. Used by `merge` and `build`.
import { stringify } from 'yaml';

export interface ModelCardSection {
  heading: string;
  /** Markdown body. */
  body: string;
}

export interface ModelCard {
  title: string;
  /** Source model references (Hub ids or local paths), in recipe order, duplicates dropped. */
  baseModels: string[];
  /** e.g. ['merge', 'moeforge'] or ['moe', 'merge', 'moeforge']. */
  tags: string[];
  /** One-paragraph summary under the title. */
  summary?: string;
  sections: ModelCardSection[];
  license?: string;
}

/** Renders the card: YAML front matter between `---` lines, a title, the summary and sections. */
export function renderModelCard(card: ModelCard): string {
  const front: Record<string, unknown> = {
    base_model: [...new Set(card.baseModels)],
    tags: [...new Set(card.tags)],
    library_name: 'transformers',
  };
  if (card.license) front.license = card.license;
  const lines = ['---', stringify(front).trimEnd(), '---', '', `# ${card.title}`, ''];
  if (card.summary) lines.push(card.summary.trim(), '');
  for (const s of card.sections) lines.push(`## ${s.heading}`, '', s.body.trim(), '');
  return `${lines.join('\n').trimEnd()}\n`;
}

/** A fenced code block (for recipes), with a fence longer than any backtick run inside. */
export function codeBlock(text: string, info = ''): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${info}\n${text.trimEnd()}\n${fence}`;
}
