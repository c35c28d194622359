// Worker side of pool.ts: holds the lanes (lane.ts) of the models assigned to this worker and
// runs their stages, and slices of the combine step, on chunks in SharedArrayBuffers.
import { parentPort } from 'node:worker_threads';
import { CombineScratch, combineChunk } from './consensus.js';
import { ModelLane, type TaskVectorJob } from './lane.js';

interface State {
  job: TaskVectorJob;
  base: Float32Array;
  models: Float32Array[];
  out: Float32Array;
  /** Model index → lane, for the models this worker owns. */
  lanes: Map<number, ModelLane>;
  scratch: CombineScratch;
}

let state: State | undefined;

type Msg =
  | { id: number; op: 'init'; job: TaskVectorJob; owned: number[]; base: SharedArrayBuffer; models: SharedArrayBuffer[]; out: SharedArrayBuffer }
  | { id: number; op: 'lanes'; stage: 'high' | 'low' | 'stats' | 'output'; len: number }
  | { id: number; op: 'combine'; from: number; to: number }
  | { id: number; op: 'finishHigh' | 'select' | 'reset' | 'close' }
  | { id: number; op: 'scales'; scales: number[] };

parentPort!.on('message', (msg: Msg) => {
  try {
    parentPort!.postMessage({ id: msg.id, result: handle(msg) });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: e instanceof Error ? { message: e.message, name: e.name, code: (e as { code?: string }).code, path: (e as { path?: string }).path } : String(e) });
  }
});

function handle(msg: Msg): unknown {
  if (msg.op === 'init') {
    state = {
      job: msg.job,
      base: new Float32Array(msg.base),
      models: msg.models.map((m) => new Float32Array(m)),
      out: new Float32Array(msg.out),
      lanes: new Map(msg.owned.map((j) => [j, new ModelLane(msg.job.lanes[j]!)])),
      scratch: new CombineScratch(),
    };
    return undefined;
  }
  const s = state!;
  switch (msg.op) {
    case 'lanes': {
      const base = s.base.subarray(0, msg.len);
      const stats: [number, [number, number] | undefined][] = [];
      for (const [j, lane] of s.lanes) {
        const d = s.models[j]!.subarray(0, msg.len);
        for (let i = 0; i < d.length; i++) d[i] = d[i]! - base[i]!;
        stats.push([j, lane.run(msg.stage, d)]);
      }
      return stats;
    }
    case 'combine': {
      const { from, to } = msg;
      const deltas = s.models.map((m) => m.subarray(from, to));
      combineChunk(s.out.subarray(from, to), s.base.subarray(from, to), deltas, s.job.weights, s.job.combine, s.scratch);
      return undefined;
    }
    case 'finishHigh':
      for (const l of s.lanes.values()) l.finishHigh();
      return undefined;
    case 'select':
      for (const l of s.lanes.values()) l.select();
      return undefined;
    case 'reset':
      for (const l of s.lanes.values()) l.reset();
      return undefined;
    case 'scales':
      for (const [j, l] of s.lanes) l.scale = msg.scales[j]!;
      return undefined;
    case 'close':
      state = undefined;
      return undefined;
  }
}
