// The bytes of one planned tensor as a stream of chunks, so the writer never holds a
// whole tensor: raw copies are byte slices read straight from the input file (same
// dtype: no decoding, DESIGN.md §5); conversions, expert noise/scale, averages and
// merges are float32 chunks encoded to the output dtype with round-to-nearest-even.
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import { encodeFloat32 } from '../dtypes.js';
import type { SafetensorsReader } from '../safetensors/reader.js';
import type { ChunkReader, MergeMethod, MergeTensorInput } from '../plugins.js';
import { Rng } from '../rng.js';
import type { OutDtype, PlannedTensor } from './plan.js';
import { COPY_SLICE_BYTES } from './plan.js';

export interface StreamContext {
  checkpoints: Checkpoint[];
  /** The safetensors file holding a tensor of a model, opened once (raw copies read into reused buffers). */
  rawReader: (model: number, tensor: string) => Promise<SafetensorsReader>;
  /** Two slice buffers reused by every raw copy: fresh 16 MiB buffers per read cost more than the read (page faults). */
  copyBuffers: [Uint8Array, Uint8Array];
  gates: Map<string, Float32Array>;
  rng: Rng;
  chunkElements: number;
  numLayers: number;
  mergeMethod: MergeMethod | undefined;
  mergeParams: { global: Record<string, unknown>; perModel: Record<string, unknown>[] } | undefined;
  /** The merge that builds a merged shared expert (`shared_experts: [{merge: …}]`). */
  sharedExpertMerge?: { method: MergeMethod; params: { global: Record<string, unknown>; perModel: Record<string, unknown>[] } } | undefined;
}

export function gateKey(layer: number, which: 'router' | 'shared'): string {
  return `${which}.${layer}`;
}

/**
 * The writer awaits each chunk's write before pulling the next, so two alternating
 * buffers are never overwritten while in use.
 */
async function* rawSlices(ctx: StreamContext, model: number, name: string, bytes: number): AsyncGenerator<Uint8Array> {
  const reader = await ctx.rawReader(model, name);
  let which = 0;
  for (let b = 0; b < bytes; b += COPY_SLICE_BYTES) {
    const n = Math.min(COPY_SLICE_BYTES, bytes - b);
    const buf = ctx.copyBuffers[which]!.subarray(0, n);
    which ^= 1;
    yield await reader.readRawInto(name, buf, b);
  }
}

async function* floatChunks(t: PlannedTensor, step: number, produce: (start: number, end: number) => Promise<Float32Array>): AsyncGenerator<Uint8Array> {
  for (let s = 0; s < t.numel; s += step) {
    const e = Math.min(t.numel, s + step);
    yield encodeFloat32(t.dtype, await produce(s, e));
  }
}

/**
 * Runs a push-style merge (MergeMethod.mergeTensor calls `write` with consecutive
 * chunks) as a pull-style stream with backpressure: the merge waits until the writer
 * has taken each chunk, so at most one output chunk is in flight.
 */
async function* pushToPull(dtype: OutDtype, numel: number, run: (write: (start: number, v: Float32Array) => Promise<void>) => Promise<void>): AsyncGenerator<Uint8Array> {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let taken: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  let expected = 0;
  const finished = run(async (start, values) => {
    if (start !== expected) throw new Error(`merge emitted elements from ${start}, expected ${expected}`);
    expected += values.length;
    queue.push(encodeFloat32(dtype, values));
    wake?.();
    await new Promise<void>((r) => (taken = r));
  }).then(
    () => {
      done = true;
      wake?.();
    },
    (e: unknown) => {
      failure = e;
      done = true;
      wake?.();
    },
  );
  while (true) {
    if (queue.length > 0) {
      yield queue.shift()!;
      const t = taken;
      taken = undefined;
      t?.();
      continue;
    }
    if (done) break;
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
  await finished;
  if (failure !== undefined) throw failure;
  if (expected !== numel) throw new Error(`merge emitted ${expected} of ${numel} elements`);
}

export function tensorStream(t: PlannedTensor, ctx: StreamContext): Uint8Array | AsyncIterable<Uint8Array> {
  const op = t.op;
  const step = ctx.chunkElements;
  switch (op.kind) {
    case 'zeros':
      return new Uint8Array(t.bytes);
    case 'gate':
      return encodeFloat32(t.dtype, ctx.gates.get(gateKey(op.layer, op.which))!);
    case 'copy': {
      const ckpt = ctx.checkpoints[op.model]!;
      if (op.raw) return rawSlices(ctx, op.model, op.input, t.bytes);
      return floatChunks(t, step, (s, e) => ckpt.readFloat32Range(op.input, s, e));
    }
    case 'expert': {
      const ckpt = ctx.checkpoints[op.model]!;
      if (op.raw) return rawSlices(ctx, op.model, op.input, t.bytes);
      // mergekit/moe/common.py noise_and_scale: tensor + randn_like(tensor) * noise_scale, then × residual_scale.
      const rng = op.noiseScale !== null ? ctx.rng.derive(`noise:${t.name}`) : undefined;
      return floatChunks(t, step, async (s, e) => {
        const v = await ckpt.readFloat32Range(op.input, s, e);
        const out = new Float32Array(v.length);
        for (let i = 0; i < v.length; i++) {
          let x = v[i]!;
          if (rng) x += rng.normal() * op.noiseScale!;
          if (op.scale !== null) x *= op.scale;
          out[i] = x;
        }
        return out;
      });
    }
    case 'average': {
      const cks = op.models.map((m) => ctx.checkpoints[m]!);
      return floatChunks(t, step, async (s, e) => {
        const parts = await Promise.all(cks.map((c) => c.readFloat32Range(op.input, s, e)));
        const out = new Float32Array(e - s);
        for (let i = 0; i < out.length; i++) {
          let acc = 0;
          for (const p of parts) acc += p[i]!;
          out[i] = acc / parts.length;
        }
        return out;
      });
    }
    case 'merge': {
      const method = op.sharedExpert ? ctx.sharedExpertMerge!.method : ctx.mergeMethod!;
      const params = op.sharedExpert ? ctx.sharedExpertMerge!.params : ctx.mergeParams!;
      const reader = (m: number): ChunkReader => (s, e) => ctx.checkpoints[m]!.readFloat32Range(op.input, s, e);
      const input: MergeTensorInput = {
        tensorName: t.name,
        role: t.slot.role,
        layer: t.slot.layer,
        numLayers: ctx.numLayers,
        shape: t.shape,
        numel: t.numel,
        base: reader(op.base),
        models: op.models.map(reader),
        global: params.global,
        perModel: params.perModel,
        rng: ctx.rng.derive(`merge:${t.name}`),
        chunkSize: step,
      };
      return pushToPull(t.dtype, t.numel, (write) => method.mergeTensor(input, write));
    }
  }
}
