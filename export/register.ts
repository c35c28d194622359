// Registers the built-in output formats in a tsyringe container, in mergekit's
// order of preference (mergekit/moe/__init__.py: Mixtral first, then the Qwen ones).
import type { DependencyContainer } from 'tsyringe';
import { TOKENS, type HeteroBuilder, type OutputFormat } from '../core/plugins.js';
import { heteroBuilder } from './formats/hetero/builder.js';
import { mixtralFormat } from './formats/mixtral.js';
import { qwen2MoeFormat } from './formats/qwen2-moe.js';
import { qwen3MoeFormat } from './formats/qwen3-moe.js';

export const BUILTIN_OUTPUT_FORMATS: readonly OutputFormat[] = [mixtralFormat, qwen2MoeFormat, qwen3MoeFormat];

export function registerOutputFormats(container: DependencyContainer): void {
  for (const format of BUILTIN_OUTPUT_FORMATS) container.register<OutputFormat>(TOKENS.OutputFormat, { useValue: format });
  // Heterogeneous experts (issue 9) are not an OutputFormat (no shared tensor layout): core's buildMoe resolves this builder.
  container.register<HeteroBuilder>(TOKENS.HeteroBuilder, { useValue: heteroBuilder });
}
