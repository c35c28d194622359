// The gate computation driver: builds the PromptHiddenStates a strategy reads (the
// forward engine on the base model for hidden-state modes, loaded layer-streamed when
// the base's float32 weights exceed the memory limit; the embedding matrix rows for
// cheap_embed), runs the recipe's strategy, and splits its rows into the routers
// [E, d] and, for Qwen2-MoE, the shared expert gates [1, d] (mergekit/scripts/moe.py
// stacks the shared experts after the routed ones and slices them apart the same way).
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { MoeforgeError } from '../errors.js';
import { getArchitecture, tensorName } from '../architectures/index.js';
import { CausalLM } from '../model/causal-lm.js';
import type { GateExpertInput } from '../plugins.js';
import type { Rng } from '../rng.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { EngineHiddenStates, type GateTokenizer } from './hidden-states.js';
import { DEFAULT_MAX_RESIDENT_BYTES, type BuildPlan } from './plan.js';
import { gateKey } from './tensor-streams.js';

export interface GateResult {
  /** `router.<layer>` → [E, d], `shared.<layer>` → [1, d]. */
  weights: Map<string, Float32Array>;
  forwardPasses: number;
  /** Lines the strategy reported (gate_mode learned: held-out routing accuracy per layer). */
  report: string[];
}

async function gateTokenizer(folder: string): Promise<GateTokenizer> {
  let tok: Tokenizer;
  try {
    tok = await Tokenizer.fromFolder(folder);
  } catch (e) {
    throw new MoeforgeError('missing_file', `the prompt-based gate needs the base model's tokenizer (tokenizer.json): ${(e as Error).message}`, {
      path: folder,
      cause: e,
    });
  }
  // mergekit's tokenize_prompts: `(tokenizer.bos_token or "") + prompt`, add_special_tokens=False.
  const bos = tok.bosToken ?? '';
  return { encode: (text) => tok.encode(bos + text, { addSpecialTokens: false }), bosTokenId: null };
}

export async function computeGates(plan: BuildPlan, baseFolder: string, rng: Rng, options: { maxResidentBytes?: number | undefined; expertFolders?: string[] } = {}): Promise<GateResult> {
  const strategy = plan.gate.strategy;
  const config = plan.inputs.base.config;
  const experts: GateExpertInput[] = plan.gate.experts.map((e, i) => ({
    name: i < plan.recipe.experts.length ? `experts[${i}]` : `shared_experts[${i - plan.recipe.experts.length}]`,
    positivePrompts: e.positivePrompts ?? [],
    negativePrompts: e.negativePrompts ?? [],
    noiseScale: e.noiseScale ?? undefined,
    residualScale: e.residualScale ?? undefined,
    trainData: e.trainData ?? undefined,
  }));
  let model: CausalLM | undefined;
  let embedCkpt: Checkpoint | undefined;
  try {
    let states: EngineHiddenStates;
    if (strategy.needsPrompts) {
      const tokenizer = await gateTokenizer(baseFolder);
      if (strategy.needsForward) {
        model = await CausalLM.load(baseFolder, { mode: 'auto', maxResidentBytes: options.maxResidentBytes ?? DEFAULT_MAX_RESIDENT_BYTES });
      }
      const ckpt = (embedCkpt = await Checkpoint.open(baseFolder));
      const embedName = tensorName(getArchitecture(config.modelType), { role: 'embed' });
      const d = config.hiddenSize;
      states = new EngineHiddenStates(model, tokenizer, d, {
        batchSize: model?.mode === 'streamed' ? 64 : 8,
        embeddingRow: (id) => ckpt.readFloat32Range(embedName, id * d, (id + 1) * d),
      });
      // Every prompt of every expert in as few passes as possible (each streamed pass reads the whole base).
      if (model) await states.prepare(experts.flatMap((e) => [...e.positivePrompts, ...e.negativePrompts]));
    } else {
      states = new EngineHiddenStates(undefined, { encode: () => [], bosTokenId: null }, config.hiddenSize);
    }
    const report: string[] = [];
    const moe = {
      baseFolder,
      expertFolders: options.expertFolders ?? [],
      expertsPerToken: plan.recipe.expertsPerToken,
      normTopkProb: plan.outputConfig.moe?.normTopkProb ?? true,
    };
    const perLayer = await strategy.computeGates({ config, experts, layers: plan.gate.layers, states, rng: rng.derive('gates'), options: plan.recipe.gateOptions ?? {}, moe, report });
    const d = config.hiddenSize;
    const E = plan.recipe.experts.length;
    const weights = new Map<string, Float32Array>();
    plan.gate.layers.forEach((layer, i) => {
      const w = perLayer[i]!;
      if (w.length !== experts.length * d) throw new Error(`gate strategy ${strategy.name} returned ${w.length} values for layer ${layer}, expected ${experts.length * d}`);
      weights.set(gateKey(layer, 'router'), w.slice(0, E * d));
      if (plan.gate.sharedWithPrompts) weights.set(gateKey(layer, 'shared'), w.slice(E * d, (E + 1) * d));
    });
    return { weights, forwardPasses: states.forwardPasses, report };
  } finally {
    model?.dispose();
    await embedCkpt?.close();
  }
}
