// The HeteroBuilder plugin (core/plugins.ts): core's buildMoe resolves it from the
// container to write a heterogeneous MoE, since core cannot import export/.
import type { HeteroBuilder } from '../../../core/plugins.js';
import { buildHetero } from './build.js';

export const heteroBuilder: HeteroBuilder = {
  async build(container, plan, out, options) {
    const r = await buildHetero(container, plan, out, options);
    return { out: r.out, tensors: r.tensors, bytes: r.bytes, shards: r.shards, report: r.report };
  },
};
