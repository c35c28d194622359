// What `moeforge build --dry-run` prints: the plan in a few lines a user can check
// before spending hours (format, experts, tensors, bytes, shards, the gate
// computation, shared weights, peak memory). Also a JSON form for scripts and tests.
import { formatBytes } from '../inspect.js';
import type { BuildPlan, TensorOp } from './plan.js';

export interface PlanSummary {
  format: string;
  architecture: string;
  experts: number;
  expertsPerToken: number;
  sharedExpert: boolean;
  gateMode: string;
  gatePrompts: number;
  gateLayers: number;
  dtype: string;
  tensors: number;
  totalBytes: number;
  shards: { file: string; tensors: number; bytes: number }[];
  operations: Record<TensorOp['kind'], number>;
  rawCopies: number;
  sharedWeights: string;
  peakMemoryBytes: number;
  seed: number;
  models: { field: string; ref: string; modelType: string }[];
}

export function summarizePlan(plan: BuildPlan): PlanSummary {
  const operations: Record<TensorOp['kind'], number> = { copy: 0, expert: 0, merge: 0, average: 0, gate: 0, zeros: 0 };
  let rawCopies = 0;
  for (const t of plan.tensors) {
    operations[t.op.kind]++;
    if ((t.op.kind === 'copy' || t.op.kind === 'expert') && t.op.raw) rawCopies++;
  }
  return {
    format: plan.format.name,
    architecture: plan.outputConfig.architecture,
    experts: plan.recipe.experts.length,
    expertsPerToken: plan.recipe.expertsPerToken,
    sharedExpert: plan.outputConfig.moe?.sharedExpertIntermediateSize !== null,
    gateMode: plan.gate.mode,
    gatePrompts: plan.gate.prompts,
    gateLayers: plan.gate.layers.length,
    dtype: plan.torchDtype,
    tensors: plan.tensors.length,
    totalBytes: plan.totalBytes,
    shards: plan.shards.map((s) => ({ file: s.file, tensors: s.tensors.length, bytes: s.bytes })),
    operations,
    rawCopies,
    sharedWeights: plan.recipe.sharedWeights.method,
    peakMemoryBytes: plan.peakMemoryBytes,
    seed: plan.seed,
    models: plan.inputs.models.map((m) => ({ field: m.field, ref: m.ref, modelType: m.config.modelType })),
  };
}

export function formatPlan(plan: BuildPlan): string {
  const s = summarizePlan(plan);
  const gate = plan.gate.forward
    ? `${s.gatePrompts} prompts × ${s.gateLayers} layers through the base (${plan.engine?.streamed ? 'layer-streamed' : 'resident'}, ${formatBytes(plan.engine?.bytes ?? 0)} float32)`
    : plan.gate.strategy.needsPrompts
      ? `${s.gatePrompts} prompts, token embeddings only`
      : 'no prompts (seeded)';
  const ops = Object.entries(s.operations)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const lines = [
    `output format     ${s.format} (${s.architecture})`,
    `experts           ${s.experts}, ${s.expertsPerToken} per token${s.sharedExpert ? ', plus a shared expert' : ''}`,
    `gate              ${s.gateMode}: ${gate}`,
    `shared weights    ${s.sharedWeights}`,
    `dtype             ${s.dtype}`,
    `tensors           ${s.tensors} (${ops}; ${s.rawCopies} copied as bytes)`,
    `output bytes      ${s.totalBytes} (${formatBytes(s.totalBytes)})`,
    `shards            ${s.shards.length}: ${s.shards.map((x) => `${x.file} ${formatBytes(x.bytes)}`).join(', ')}`,
    `peak memory       ~${formatBytes(s.peakMemoryBytes)} (estimate, weights and buffers)`,
    `seed              ${s.seed}`,
    ...s.models.map((m, i) => `${i === 0 ? 'models            ' : '                  '}${m.field}: ${m.ref} (${m.modelType})`),
    ...plan.warnings.map((w) => `warning           ${w}`),
  ];
  return `${lines.join('\n')}\n`;
}
