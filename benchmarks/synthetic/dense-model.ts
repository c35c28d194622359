// Synthetic dense checkpoints for benchmarks and tests: a real config.json (the v4
// spelling transformers writes) and seeded random weights under the family's exact
// tensor names, streamed tensor by tensor in chunks through CheckpointWriter, so a
// model of several GB is written with a few MB of memory.
//
// Values follow the goldens' scheme (../shared/golden/README.md): RMSNorm weights
// 1 + 0.1 z, everything else scale · z (default 0.02), z ~ N(0, 1) (fast-normal.ts:
// inverse-CDF lookup, 4× Box–Muller's speed), each tensor from
// its own generator `Rng(seed).derive(tensorName)`, so values do not depend on the
// chunk size, the shard size or which other tensors exist.
//
// `perturb` makes an "expert": the tensors of an existing model folder plus
// scale · N(0, 1) noise (seeded per tensor) on the chosen roles, default every linear
// role, which is how tests get fine-tunes that differ from a base in a known way.

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expectedTensors, getArchitecture, parseTensorName, validateTensors } from '../../core/architectures/index.js';
import { Checkpoint } from '../../core/checkpoint/checkpoint.js';
import { CheckpointWriter } from '../../core/checkpoint/writer.js';
import { normalizeConfig } from '../../core/config/normalize.js';
import { dtypeToTorchDtype, encodeFloat32 } from '../../core/dtypes.js';
import { MoeforgeError, fsError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { ROLE_INFO, type TensorRole } from '../../core/roles.js';
import { addNormalFast, fillNormalFast } from './fast-normal.js';

export interface SyntheticModelOptions {
  family?: 'llama' | 'qwen2' | 'mistral' | 'qwen3';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  vocabSize: number;
  numHeads: number;
  numKvHeads: number;
  dtype?: 'F32' | 'BF16' | 'F16';
  seed: number;
  tieWordEmbeddings?: boolean;
  /** Standard deviation of the non-norm weights (default 0.02). */
  scale?: number;
}

export interface PerturbOptions {
  /** A model folder whose tensors (same config) are the base. */
  from: string;
  /** Standard deviation of the added noise. */
  scale: number;
  seed: number;
  /** Roles that get noise; default every role of kind 'linear'. */
  roles?: TensorRole[];
}

export interface WriteSyntheticOptions extends SyntheticModelOptions {
  /** Largest shard (bytes of tensor data); default one file. */
  shardSizeBytes?: number;
  perturb?: PerturbOptions;
}

const CHUNK_ELEMENTS = 1 << 20;

const ARCH_NAMES = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' } as const;

/** A config.json as transformers 4.x writes it for this family (which normalizeConfig accepts). */
export function syntheticConfig(o: SyntheticModelOptions): Record<string, unknown> {
  const family = o.family ?? 'llama';
  if (o.hiddenSize % o.numHeads !== 0) {
    throw new MoeforgeError('invalid_argument', `hiddenSize ${o.hiddenSize} is not divisible by numHeads ${o.numHeads}`);
  }
  const qwen = family === 'qwen2' || family === 'qwen3';
  const config: Record<string, unknown> = {
    architectures: [ARCH_NAMES[family]],
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: o.hiddenSize / o.numHeads,
    hidden_act: 'silu',
    hidden_size: o.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: o.intermediateSize,
    max_position_embeddings: 2048,
    model_type: family,
    num_attention_heads: o.numHeads,
    num_hidden_layers: o.numLayers,
    num_key_value_heads: o.numKvHeads,
    rms_norm_eps: qwen ? 1e-6 : 1e-5,
    rope_theta: qwen ? 1000000.0 : 10000.0,
    tie_word_embeddings: o.tieWordEmbeddings ?? false,
    torch_dtype: dtypeToTorchDtype(o.dtype ?? 'F32'),
    transformers_version: '4.49.0',
    use_cache: true,
    vocab_size: o.vocabSize,
  };
  if (family === 'llama') Object.assign(config, { attention_bias: false, mlp_bias: false, pretraining_tp: 1, rope_scaling: null });
  if (family === 'mistral') config.sliding_window = null;
  if (qwen) Object.assign(config, { max_window_layers: o.numLayers, rope_scaling: null, sliding_window: null, use_sliding_window: false });
  if (family === 'qwen3') config.attention_bias = false;
  // Sorted keys, as save_pretrained writes them.
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Writes config.json and the weights into `folder` (created atomically; it must not exist yet). */
export async function writeSyntheticModel(folder: string, o: WriteSyntheticOptions): Promise<void> {
  const rawConfig = syntheticConfig(o);
  const config = normalizeConfig(rawConfig, 'synthetic config.json');
  const dtype = o.dtype ?? 'F32';
  const tensors = expectedTensors(config);
  const arch = getArchitecture(config.modelType);
  const scale = o.scale ?? 0.02;

  let base: Checkpoint | undefined;
  let noisy: Set<TensorRole> | undefined;
  if (o.perturb) {
    base = await Checkpoint.open(o.perturb.from);
    const problems = validateTensors(config, base.headers()).filter((p) => p.severity === 'error');
    if (problems.length > 0) {
      await base.close();
      const p = problems[0]!;
      throw new MoeforgeError('incompatible_models', `perturb base does not match the options: ${p.tensor}: ${p.message}`, {
        path: o.perturb.from,
      });
    }
    noisy = new Set(o.perturb.roles ?? (Object.keys(ROLE_INFO) as TensorRole[]).filter((r) => ROLE_INFO[r].kind === 'linear'));
  }

  try {
    const writer = await CheckpointWriter.create(
      folder,
      tensors.map((t) => ({ name: t.name, dtype, shape: t.shape })),
      { shardSizeBytes: o.shardSizeBytes ?? Number.MAX_SAFE_INTEGER },
    );
    try {
      for (const t of tensors) {
        const numel = t.shape.reduce((a, b) => a * b, 1);
        const role = parseTensorName(arch, t.name)!.role;
        const chunks = base
          ? perturbedChunks(base, t.name, numel, noisy!.has(role) ? o.perturb! : undefined, dtype)
          : freshChunks(t.name, numel, ROLE_INFO[role].kind === 'norm', o.seed, scale, dtype);
        await writer.writeTensor(t.name, chunks);
      }
      const configPath = path.join(writer.tempFolder, 'config.json');
      try {
        await writeFile(configPath, `${JSON.stringify(rawConfig, null, 2)}\n`);
      } catch (e) {
        throw fsError(e, configPath, 'write');
      }
      await writer.finish();
    } catch (e) {
      await writer.abort();
      throw e;
    }
  } finally {
    await base?.close();
  }
}

async function* freshChunks(
  name: string,
  numel: number,
  isNorm: boolean,
  seed: number,
  scale: number,
  dtype: 'F32' | 'BF16' | 'F16',
): AsyncGenerator<Uint8Array> {
  const rng = new Rng(seed).derive(name);
  for (let start = 0; start < numel; start += CHUNK_ELEMENTS) {
    const values = new Float32Array(Math.min(CHUNK_ELEMENTS, numel - start));
    if (isNorm) fillNormalFast(rng, values, 0.1, 1);
    else fillNormalFast(rng, values, scale);
    yield encodeFloat32(dtype, values);
  }
}

async function* perturbedChunks(
  base: Checkpoint,
  name: string,
  numel: number,
  perturb: PerturbOptions | undefined,
  dtype: 'F32' | 'BF16' | 'F16',
): AsyncGenerator<Uint8Array> {
  const rng = perturb ? new Rng(perturb.seed).derive(name) : undefined;
  for (let start = 0; start < numel; start += CHUNK_ELEMENTS) {
    const end = Math.min(numel, start + CHUNK_ELEMENTS);
    const values = await base.readFloat32Range(name, start, end);
    if (rng) addNormalFast(rng, values, perturb!.scale);
    yield encodeFloat32(dtype, values);
  }
}
