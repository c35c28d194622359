// The projected form of a heterogeneous MoE (MergeME, arXiv 2502.00997 §3.2; trained by
// routers/learned/hetero): one shared embedding E [V, D] and head H [V, D], and for each
// expert e its own layer stack and final norm between a projection in P_in [d_e, D] and
// a projection out P_out [D, d_e]:
//   logits_e = H · P_out · finalNorm_e(layers_e(E[ids] · P_inᵀ))
// Matrix products associate, so expert e is exactly a dense causal LM of its own
// family whose embed_tokens is E · P_inᵀ [V, d_e] and whose lm_head is H · P_out
// [V, d_e]. The engine folds the projections into those two matrices once, at load, and
// runs each expert with the unchanged CausalLM (KV cache, streaming, every family);
// modeling_moeforge_hetero.py computes the unfolded products, equal up to float32
// rounding (test/hetero-projected.test.ts).
import { initBackend, tf } from '../backend.js';
import { getArchitecture, tensorName } from '../architectures/index.js';
import { Checkpoint, type MemoryTensor } from '../checkpoint/checkpoint.js';
import type { NormalizedConfig } from '../config/types.js';
import { normalizeConfig } from '../config/normalize.js';
import { CausalLM, type LoadOptions } from '../model/causal-lm.js';
import type { ProjectedWeights } from '../plugins.js';
import { HeteroMoE } from './model.js';
import { MoeforgeError } from '../errors.js';
import { expertPrefix, projInName, projOutName, SHARED_EMBED, SHARED_HEAD, type HeteroConfig } from './config.js';

function expectShape(cp: Checkpoint, name: string, shape: number[]): void {
  if (!cp.has(name)) throw new MoeforgeError('missing_tensor', `the projected form needs this tensor [${shape.join(', ')}]`, { path: `${cp.folder}: ${name}` });
  const got = cp.header(name).shape;
  if (got.join(',') !== shape.join(',')) {
    throw new MoeforgeError('shape_mismatch', `shape [${got.join(', ')}], expected [${shape.join(', ')}]`, { path: `${cp.folder}: ${name}` });
  }
}

/** a [V, D] · b, with b [D, d] (or bᵀ when b is stored [d, D]), as float32 on the active backend. */
function product(a: Float32Array, rows: number, inner: number, b: Float32Array, d: number, bTransposed: boolean): Float32Array {
  return tf.tidy(() => {
    const bt = bTransposed ? tf.tensor2d(b, [d, inner]) : tf.tensor2d(b, [inner, d]);
    return tf.matMul(tf.tensor2d(a, [rows, inner]), bt, false, bTransposed).dataSync() as Float32Array;
  });
}

/** Expert e's stored checkpoint with embed_tokens = E · P_inᵀ and lm_head = H · P_out in memory and an untied config. */
function foldedExpert(
  cp: Checkpoint,
  raw: Record<string, unknown>,
  c: NormalizedConfig,
  shared: { embed: Float32Array; head: Float32Array; dim: number },
  projIn: Float32Array,
  projOut: Float32Array,
): Checkpoint {
  const V = c.vocabSize;
  const d = c.hiddenSize;
  const arch = getArchitecture(c.modelType);
  return cp.withTensors(
    {
      [tensorName(arch, { role: 'embed' })]: { shape: [V, d], data: product(shared.embed, V, shared.dim, projIn, d, true) },
      [tensorName(arch, { role: 'lm_head' })]: { shape: [V, d], data: product(shared.head, V, shared.dim, projOut, d, false) },
    },
    { ...raw, tie_word_embeddings: false },
  );
}

/**
 * Expert e of a projected repo as a checkpoint a CausalLM loads: its stored layers and
 * final norm (under `experts.{e}.`), plus embed_tokens = E · P_inᵀ and lm_head = H · P_out
 * held in memory, with an untied config.
 */
export async function projectedExpertCheckpoints(cp: Checkpoint, config: HeteroConfig): Promise<Checkpoint[]> {
  await initBackend();
  const V = config.vocabSize;
  const D = config.sharedHiddenSize!;
  expectShape(cp, SHARED_EMBED, [V, D]);
  expectShape(cp, SHARED_HEAD, [V, D]);
  const embed = await cp.readFloat32(SHARED_EMBED);
  const head = await cp.readFloat32(SHARED_HEAD);
  const out: Checkpoint[] = [];
  for (const [i, c] of config.experts.entries()) {
    expectShape(cp, projInName(i), [c.hiddenSize, D]);
    expectShape(cp, projOutName(i), [D, c.hiddenSize]);
    const view = cp.view(expertPrefix(i), config.expertConfigs[i]!);
    out.push(foldedExpert(view, config.expertConfigs[i]!, c, { embed, head, dim: D }, await cp.readFloat32(projInName(i)), await cp.readFloat32(projOutName(i))));
  }
  return out;
}

/** The shared embedding [V, D] the projected form's router reads. */
export async function readSharedEmbed(cp: Checkpoint, config: HeteroConfig): Promise<{ data: Float32Array; dim: number }> {
  return { data: await cp.readFloat32(SHARED_EMBED), dim: config.sharedHiddenSize! };
}

/**
 * The projected form before export: the experts' own folders with trained weights held in
 * memory (what the build computed; the exported repo must give the same logits).
 */
export async function loadProjectedExperts(folders: string[], names: string[], p: ProjectedWeights, topK: number, options: LoadOptions = {}): Promise<HeteroMoE> {
  await initBackend(options.backend);
  const cps: Checkpoint[] = [];
  const experts: CausalLM[] = [];
  try {
    const shared = { embed: p.embed, head: p.lmHead, dim: p.sharedHiddenSize };
    for (const [i, f] of folders.entries()) {
      const cp = await Checkpoint.open(f);
      cps.push(cp);
      const c = normalizeConfig(cp.rawConfig, f);
      experts.push(await CausalLM.load(foldedExpert(cp, cp.rawConfig, c, shared, p.projIn[i]!, p.projOut[i]!), options));
    }
    const router = { kind: 'embedding' as const, topK, temperature: 1, weight: p.router, sharedEmbed: { data: p.embed, dim: p.sharedHiddenSize } };
    return new HeteroMoE(experts, names, router, folders[0]!, () => void Promise.all(cps.map((cp) => cp.close())));
  } catch (e) {
    for (const m of experts) m.dispose();
    await Promise.all(cps.map((cp) => cp.close()));
    throw e;
  }
}
