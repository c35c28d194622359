// moeforge's public API: the composition root (createContainer) and the pieces a
// program embedding moeforge uses. The CLI and the benchmarks go through here.
import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { registerBuiltins as registerExperts } from './experts/register.js';
import type { HubContextOptions } from './experts/hub/context.js';
import { registerOutputFormats } from './export/register.js';
import { registerGateStrategies } from './routers/register.js';

/** A fresh DI container with every built-in plugin registered (sources, merge methods, gates, formats). */
export function createContainer(options: { hub?: HubContextOptions } = {}): DependencyContainer {
  const container = rootContainer.createChildContainer();
  registerExperts(container, options);
  registerGateStrategies(container);
  registerOutputFormats(container);
  return container;
}

export { MoeforgeError, isMoeforgeError, type ErrorCode } from './core/errors.js';
export { TOKENS } from './core/plugins.js';
export type { ExpertSource, MergeMethod, GateStrategy, OutputFormat, ModelFiles, ModelDescription } from './core/plugins.js';
export type { TensorRole, TensorSlot } from './core/roles.js';
export type { NormalizedConfig, ModelFamily } from './core/config/types.js';
export { Rng } from './core/rng.js';
export { VERSION } from './core/version.js';
export { normalizeConfig } from './core/config/normalize.js';
export { getArchitecture, tensorName, parseTensorName, expectedTensors, validateTensors } from './core/architectures/index.js';
export { SafetensorsReader } from './core/safetensors/reader.js';
export { SafetensorsWriter, writeSafetensors, encodeHeader, type TensorSpec } from './core/safetensors/writer.js';
export { Checkpoint } from './core/checkpoint/checkpoint.js';
export { CheckpointWriter } from './core/checkpoint/writer.js';
export { summarizeModel, summarizeFolder, formatSummary, type ModelSummary } from './core/inspect.js';
export { fetchModel, describeModel } from './core/sources.js';

// Running models
export { initBackend, type BackendName, type BackendInfo } from './core/backend.js';
export { CausalLM, type ForwardOptions, type ForwardResult, type LoadOptions, type GenerateOptions } from './core/model/causal-lm.js';
export { Tokenizer } from './core/tokenizer/tokenizer.js';

// Building and merging
export { readRecipeFile, parseRecipeText, planFromRecipe, buildMoe, type BuildOutcome, type MoeBuildOutcome, type HeteroBuildOutcome } from './core/build/build.js';
export { detectHeteroRecipe, formatHeteroPlan, type HeteroBuildPlan } from './core/build/hetero.js';
export { formatPlan, summarizePlan } from './core/build/dry-run.js';
export { parseMoeRecipe, type MoeRecipe } from './core/recipe/moe-recipe.js';
export { parseMergeConfig, type MergeConfig } from './core/recipe/merge-config.js';
export { prepareMerge, describePlan as describeMergePlan, executeMerge } from './core/merge/execute.js';
export { renderModelCard } from './core/model-card.js';

// Hub
export { pullModel } from './experts/hub/pull.js';
export { hubContext } from './experts/hub/context.js';
export { pushFolder } from './export/push.js';

// Routing, evaluation, serving
export { computeRoutes } from './routers/diagnostics/routing-stats.js';
export { PerplexityRouter, PerplexityRouterScorer } from './routers/baselines/perplexity-router.js';
export { loadSuite } from './benchmarks/eval/suite.js';
export { evaluate, localModel } from './benchmarks/eval/evaluate.js';
export { writeReport } from './benchmarks/eval/report.js';
export { startServer } from './core/serve/server.js';
export { ServeEngine, type ServeModel } from './core/serve/engine.js';
export { loadHeteroRepo, isHeteroFolder } from './core/hetero/load.js';
