// Loading a heterogeneous MoE: from an exported trust_remote_code repo (one checkpoint,
// expert i's tensors under `experts.{i}.`, each expert run by the engine's CausalLM
// through a Checkpoint view with its own config), or from the experts' own folders
// (a recipe's models, before export).
import path from 'node:path';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { MoeforgeError } from '../errors.js';
import { CausalLM, type LoadOptions } from '../model/causal-lm.js';
import { centroidName, expertPrefix, isHeteroConfig, parseHeteroConfig, ROUTER_WEIGHT } from './config.js';
import { projectedExpertCheckpoints, readSharedEmbed } from './projected.js';
import { HeteroMoE } from './model.js';
import type { SequenceRouterSpec } from './router.js';

/** True when `folder`'s config.json is a moeforge heterogeneous MoE. */
export async function isHeteroFolder(folder: string): Promise<boolean> {
  const cp = await Checkpoint.open(folder).catch(() => undefined);
  if (!cp) return false;
  try {
    return isHeteroConfig(cp.rawConfig);
  } finally {
    await cp.close();
  }
}

export async function loadHeteroRepo(folder: string, options: LoadOptions = {}): Promise<HeteroMoE> {
  const cp = await Checkpoint.open(folder);
  const experts: CausalLM[] = [];
  try {
    const label = path.join(folder, 'config.json');
    if (!isHeteroConfig(cp.rawConfig)) {
      throw new MoeforgeError('invalid_config', `model_type is ${JSON.stringify(cp.rawConfig['model_type'])}, not a moeforge heterogeneous MoE`, { path: label });
    }
    const config = parseHeteroConfig(cp.rawConfig, label);
    const views = config.form === 'projected' ? await projectedExpertCheckpoints(cp, config) : config.expertConfigs.map((raw, i) => cp.view(expertPrefix(i), raw));
    for (const v of views) experts.push(await CausalLM.load(v, options));
    const router: SequenceRouterSpec = { kind: config.routerType, topK: config.topK, temperature: config.temperature };
    if (config.routerType === 'learned' || config.routerType === 'embedding') {
      if (!cp.has(ROUTER_WEIGHT)) throw new MoeforgeError('missing_tensor', `${config.routerType} routing needs the router weight`, { path: `${folder}: ${ROUTER_WEIGHT}` });
      router.weight = await cp.readFloat32(ROUTER_WEIGHT);
      if (config.routerType === 'embedding') router.sharedEmbed = await readSharedEmbed(cp, config);
    }
    if (config.routerType === 'centroid') {
      router.centroids = [];
      for (let i = 0; i < experts.length; i++) {
        if (!cp.has(centroidName(i))) throw new MoeforgeError('missing_tensor', 'centroid routing needs one centroid per expert', { path: `${folder}: ${centroidName(i)}` });
        router.centroids.push(await cp.readFloat32(centroidName(i)));
      }
    }
    return new HeteroMoE(experts, config.expertNames, router, folder, () => void cp.close());
  } catch (e) {
    for (const m of experts) m.dispose();
    await cp.close();
    throw e;
  }
}

/** From the experts' own model folders (the engine loads each as it is). */
export async function loadHeteroExperts(folders: string[], names: string[], router: SequenceRouterSpec, options: LoadOptions = {}): Promise<HeteroMoE> {
  const experts: CausalLM[] = [];
  try {
    for (const f of folders) experts.push(await CausalLM.load(f, options));
    return new HeteroMoE(experts, names, router, folders[0]!);
  } catch (e) {
    for (const m of experts) m.dispose();
    throw e;
  }
}
