// Plugin interfaces and their DI tokens. Implementations live in experts/, routers/
// and export/, each folder registering its own with one explicit
// `registerBuiltins(container)` called from the composition root (cli/, index.ts).
// The build pipeline in core resolves them with `container.resolveAll(TOKEN)`, so
// core never imports its siblings. Constructor parameters use explicit
// `@inject(TOKEN)`: esbuild-based runners (tsx) emit no decorator metadata.

import type { DependencyContainer } from 'tsyringe';
import type { z } from 'zod';
import type { HeteroBuildPlan } from './build/hetero.js';
import type { NormalizedConfig } from './config/types.js';
import type { TensorRole } from './roles.js';
import type { Rng } from './rng.js';

// ---------------------------------------------------------------------------
// Expert sources: where models come from (local folders, the Hugging Face Hub).

export interface ModelFiles {
  /** The reference as the user wrote it (`org/name@rev`, `./models/x`). */
  ref: string;
  /** A local folder holding config.json, safetensors and tokenizer files. */
  folder: string;
  /** Provenance: the resolved commit for Hub models, absent for local folders. */
  revision?: string;
}

export interface RemoteTensorHeader {
  dtype: string;
  shape: number[];
}

/** What can be known about a model without its weights: for planning and `inspect`. */
export interface ModelDescription {
  ref: string;
  config: Record<string, unknown>;
  /** Tensor name → dtype and shape, from the safetensors headers. */
  tensors: Map<string, RemoteTensorHeader>;
  /** Weight bytes on the source (sum of safetensors files). */
  weightBytes: number;
  files: string[];
  /** Size in bytes of each file in `files`, where the source knows it. */
  fileSizes?: Record<string, number>;
  revision?: string;
}

export interface FetchOptions {
  /** Called with per-file progress for long downloads. */
  onProgress?: (event: { file: string; bytes: number; total: number }) => void;
}

export interface ExpertSource {
  readonly name: string;
  /** True when this source understands the reference (a local path, `org/name[@rev]`). */
  canResolve(ref: string): boolean;
  /** Makes the model's files available locally (downloading if needed). */
  fetch(ref: string, options?: FetchOptions): Promise<ModelFiles>;
  /** Config and tensor headers only, without fetching weights. */
  describe(ref: string): Promise<ModelDescription>;
}

// ---------------------------------------------------------------------------
// Merge methods: how several versions of one tensor become one.

/** Reads a range of elements [start, end) of one input tensor, decoded to float32. */
export type ChunkReader = (start: number, end: number) => Promise<Float32Array>;

export interface MergeTensorInput {
  /** Output tensor name (for error messages). */
  tensorName: string;
  role: TensorRole;
  layer: number | undefined;
  numLayers: number;
  shape: number[];
  numel: number;
  /** The task-vector origin; absent for methods that need none (linear, slerp w/o base). */
  base: ChunkReader | undefined;
  models: ChunkReader[];
  /** Global parameters, resolved for this tensor (gradients and filters applied). */
  global: Record<string, unknown>;
  /** Per-model parameters, resolved for this tensor, in `models` order. */
  perModel: Record<string, unknown>[];
  /** Seeded generator for this tensor (derived from the merge seed and the tensor name). */
  rng: Rng;
  /** Elements per chunk: memory stays bounded by chunkSize × models. */
  chunkSize: number;
  /** What the method's `prepare` returned (data-driven methods: coefficients, masks), else undefined. */
  prepared?: unknown;
}

/** What a data-driven method's pre-pass sees: called once, before any tensor is merged (issue 10). */
export interface MergePrepareContext {
  /** The task-vector origin's folder (requiresBase methods). */
  baseFolder: string | undefined;
  /** Folders and references (as written) of the merged models, in `models` order. */
  modelFolders: string[];
  modelRefs: string[];
  /** The template model's folder: its tokenizer reads a model's data when the model has none. */
  templateFolder: string;
  /** Global and per-model parameters (the method's defs) resolved for no particular tensor (t = 0, no filter). */
  global: Record<string, unknown>;
  perModel: Record<string, unknown>[];
  /** Folder relative data paths are resolved against (the config file's). */
  configDir: string;
  seed: number;
  /** A line for the user: printed by the CLI, kept in the model card and moeforge.yml. */
  note(line: string): void;
}

/** A parameter a merge method reads, with mergekit's default (`required` ones have none). */
export interface MergeParameterDef {
  name: string;
  default?: number | boolean | string;
  required?: boolean;
}

export interface MergeMethod {
  /** mergekit's name (`ties`, `dare_ties`, …). */
  readonly name: string;
  /** The paper or reference implementation this method follows. */
  readonly reference: string;
  /** Whether `base_model` is required (task-vector methods). */
  readonly requiresBase: boolean;
  /**
   * The parameters this method reads, as mergekit's `parameters()` / `tensor_parameters()`
   * list them: the executor resolves exactly these for every tensor (a per-model parameter
   * falls back to the global `parameters:` block, as mergekit's ConfigReader does).
   */
  readonly globalParameterDefs: readonly MergeParameterDef[];
  readonly modelParameterDefs: readonly MergeParameterDef[];
  /** zod schemas of the resolved values; parameters are validated before any tensor is read. */
  readonly globalParameters: z.ZodType;
  readonly modelParameters: z.ZodType;
  /** Checks the number of models and parameter combinations; throws `invalid_parameter`. */
  validate(global: Record<string, unknown>, perModel: Record<string, unknown>[], hasBase: boolean): void;
  /** Optional pre-pass over whole models (calibration data, gradients); its result reaches every mergeTensor as `prepared`. */
  prepare?(ctx: MergePrepareContext): Promise<unknown>;
  /** Merges one tensor, emitting consecutive output chunks through `write`. */
  mergeTensor(input: MergeTensorInput, write: (start: number, values: Float32Array) => Promise<void>): Promise<void>;
}

/**
 * Reverts the layers of a merged model that do not pay for themselves (issue 10: importance-based
 * expert enhancement, `enhance_threshold` / `enhance_keep` per model): given to the merge executor
 * by the composition root (MergeRunOptions.enhancer), so core never imports experts/.
 */
export interface ModelEnhancer {
  /** Per-model parameters it reads (resolved with the usual fallback to the global block). */
  readonly modelParameterDefs: readonly MergeParameterDef[];
  /** Whether these parameters ask for enhancement (throws invalid_parameter when out of range). */
  wants(params: Record<string, unknown>, where: string): boolean;
  /** The layers of this model to replace by the base's before merging. */
  revertedLayers(ctx: {
    baseFolder: string;
    folder: string;
    ref: string;
    templateFolder: string;
    params: Record<string, unknown>;
    where: string;
    configDir: string;
    note(line: string): void;
  }): Promise<number[]>;
}

// ---------------------------------------------------------------------------
// Gate strategies: how router weights are made.

export interface GateExpertInput {
  name: string;
  positivePrompts: string[];
  negativePrompts: string[];
  noiseScale: number | undefined;
  residualScale: number | undefined;
  /** gate_mode learned: the expert's `train_data:` file (text or JSONL, one sample per line). */
  trainData?: string | undefined;
}

/** Hidden states the builder computes on the base model with the forward engine. */
export interface PromptHiddenStates {
  /**
   * Per decoder layer (all of them, in order), one vector per prompt ([prompts, hidden]
   * row-major), taken where `site` says and reduced over tokens as `reduce` says.
   * `residual` is mergekit's choice: `output_hidden_states[layer]`, the residual stream
   * entering the layer; `router_input` is the output of the layer's
   * post_attention_layernorm, what the MoE router actually reads.
   */
  layers(prompts: string[], site: 'residual' | 'router_input', reduce: 'mean' | 'last'): Promise<Float32Array[]>;
  /** Per prompt, the sum of its tokens' embeddings ([prompts, hidden]): mergekit's cheap_embed input. */
  embeddingSums(prompts: string[]): Promise<Float32Array>;
}

export interface GateContext {
  config: NormalizedConfig;
  /** Routed experts, then (when they have prompts) shared experts, as mergekit stacks them. */
  experts: GateExpertInput[];
  /** Layers that get a router (sparse layers of the output). */
  layers: number[];
  states: PromptHiddenStates;
  rng: Rng;
  options: Record<string, unknown>;
  /** The MoE being built (folders of the base and of each routed expert), for gates trained on its own router inputs. */
  moe?: { baseFolder: string; expertFolders: string[]; expertsPerToken: number; normTopkProb: boolean };
  /** Lines a strategy reports (e.g. held-out routing accuracy per layer): the build prints them and the model card lists them. */
  report?: string[];
}

export interface GateStrategy {
  /** The recipe's `gate_mode` value. */
  readonly name: string;
  /** mergekit refuses prompt-less experts for every mode but `random`. */
  readonly needsPrompts: boolean;
  /** Whether it runs the base model (hidden states) rather than only its embeddings or nothing. */
  readonly needsForward: boolean;
  /** Router weights per layer in `ctx.layers` order, each [experts, hidden] row-major. */
  computeGates(ctx: GateContext): Promise<Float32Array[]>;
}

// ---------------------------------------------------------------------------
// Output formats: which MoE checkpoint layout a build writes.

export interface MoeShape {
  numExperts: number;
  expertsPerToken: number;
  /** Present when the output has a shared expert (Qwen2-MoE): its FFN width. */
  sharedExpertIntermediateSize: number | null;
}

/** What mergekit's `supports_config` looks at, known before any weight is read. */
export interface FormatSupportInput {
  /** `model_type` of the base, every expert and every shared expert, in that order. */
  families: string[];
  base: NormalizedConfig;
  numSharedExperts: number;
  gateMode: string;
}

export interface OutputFormat {
  /** moeforge's name and the recipe's `architecture` value (`mixtral`, `qwen2_moe`, `qwen3_moe`). */
  readonly name: string;
  /** mergekit's `name()` (`Mixtral`, `Qwen MoE`, `Qwen3 MoE`): a recipe's `architecture` may be a prefix of it. */
  readonly displayName: string;
  /** The architecture family whose role → name table the output uses. */
  readonly family: 'mixtral' | 'qwen2_moe' | 'qwen3_moe';
  /** Why this format cannot be built from these inputs, or undefined when it can (mergekit's `supports_config`). */
  unsupportedReason(input: FormatSupportInput): string | undefined;
  /** The output model as moeforge sees it: drives the tensor list (expectedTensors) and validation. */
  outputConfig(base: NormalizedConfig, shape: MoeShape): NormalizedConfig;
  /** The output config.json (transformers v4 spelling, which v5 reads); `dtype` is a torch dtype name. */
  synthesizeConfig(base: NormalizedConfig, shape: MoeShape, dtype: string): Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// Heterogeneous MoEs (issue 9): the trainings behind `gate_mode: learned` with experts
// of different architectures (routers/learned/hetero/*), resolved by the heterogeneous
// build in export/formats/hetero, and that build itself, resolved by core's buildMoe.

/** A sequence-level router fitted by classification: which expert's data a sequence comes from. */
export interface SequenceRouterData {
  /** One feature row per training sequence, [N, dim] row-major. */
  features: Float32Array;
  dim: number;
  /** The expert whose data each sequence is, [N]. */
  labels: Int32Array;
  numExperts: number;
  /** Experts mixed per sequence (the load-balancing term counts the top k). */
  topK: number;
}

export interface TrainedSequenceRouter {
  /** [E, dim] row-major: scores = W · feature, then softmax, top k, renormalised. */
  weight: Float32Array;
  /** Lines for the build output and the model card (held-out accuracy, steps). */
  report: string[];
}

export interface ProjectedExpertInput {
  name: string;
  /** The expert's own model folder (a dense causal LM the engine loads). */
  folder: string;
  /** Token ids of its training sequences (BOS first), each at least 2 tokens. */
  sequences: number[][];
}

/**
 * MergeME's trained form (arXiv 2502.00997 §3.2): one shared embedding and LM head of
 * width D (the widest expert), per-expert projections in (D → d_e) and out (d_e → D)
 * around each expert's own layer stack and final norm, and a router on the mean shared
 * token embedding. Matrices are nn.Linear / nn.Embedding weights, row-major.
 */
export interface ProjectedWeights {
  sharedHiddenSize: number;
  /** [V, D] */
  embed: Float32Array;
  /** [V, D] */
  lmHead: Float32Array;
  /** Per expert [d_e, D]: x_e = e_shared · proj_inᵀ. */
  projIn: Float32Array[];
  /** Per expert [D, d_e]: h_shared = h_e · proj_outᵀ. */
  projOut: Float32Array[];
  /** [E, D] */
  router: Float32Array;
  report: string[];
}

export interface HeteroTrainer {
  /** Validates the recipe's `gate:` block before any model is read (one line naming `gate.<key>`). */
  checkOptions(options: Record<string, unknown>): void;
  /** Softmax-regression router on per-sequence features (the recipe's `gate:` block gives epochs, lr, …). */
  trainSequenceRouter(data: SequenceRouterData, options: Record<string, unknown>, rng: Rng): Promise<TrainedSequenceRouter>;
  /** Initialises and trains the projected form's shared embedding/head, projections and router. */
  trainProjected(experts: ProjectedExpertInput[], topK: number, options: Record<string, unknown>, rng: Rng): Promise<ProjectedWeights>;
}

/** What a heterogeneous build wrote. */
export interface HeteroBuildResult {
  out: string;
  tensors: number;
  bytes: number;
  shards: number;
  /** Lines the build reports (router training figures), also in the model card. */
  report: string[];
}

/** Writes a heterogeneous MoE (export/formats/hetero), so core's buildMoe builds one without importing export/. */
export interface HeteroBuilder {
  build(container: DependencyContainer, plan: HeteroBuildPlan, out: string, options: { overwrite?: boolean; shardSizeBytes?: number; seed?: number; dtype?: 'F32' | 'F16' | 'BF16' | null }): Promise<HeteroBuildResult>;
}

// ---------------------------------------------------------------------------
// DI tokens.

export const TOKENS = {
  ExpertSource: Symbol.for('moeforge.ExpertSource'),
  MergeMethod: Symbol.for('moeforge.MergeMethod'),
  GateStrategy: Symbol.for('moeforge.GateStrategy'),
  OutputFormat: Symbol.for('moeforge.OutputFormat'),
  HeteroTrainer: Symbol.for('moeforge.HeteroTrainer'),
  HeteroBuilder: Symbol.for('moeforge.HeteroBuilder'),
} as const;
