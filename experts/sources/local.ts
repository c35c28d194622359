// Models in a local folder (config.json + safetensors): nothing to fetch, and the
// description comes from the safetensors headers through Checkpoint.
import path from 'node:path';
import os from 'node:os';
import { Checkpoint } from '../../core/checkpoint/checkpoint.js';
import { isLocalRef } from '../../core/hub/model-ref.js';
import type { ExpertSource, ModelDescription, ModelFiles } from '../../core/plugins.js';
import { readdir } from 'node:fs/promises';
import { fsError } from '../../core/errors.js';

export function expandLocalPath(ref: string): string {
  return path.resolve(ref === '~' || ref.startsWith('~/') ? path.join(os.homedir(), ref.slice(1)) : ref);
}

export class LocalFolderSource implements ExpertSource {
  readonly name = 'local';

  canResolve(ref: string): boolean {
    return isLocalRef(ref);
  }

  async fetch(ref: string): Promise<ModelFiles> {
    const folder = expandLocalPath(ref);
    // Opening validates the folder now (config.json, safetensors, no pickles) rather than mid-build.
    const ckpt = await Checkpoint.open(folder);
    await ckpt.close();
    return { ref, folder };
  }

  async describe(ref: string): Promise<ModelDescription> {
    const folder = expandLocalPath(ref);
    const ckpt = await Checkpoint.open(folder);
    try {
      let files: string[];
      try {
        files = (await readdir(folder)).sort();
      } catch (e) {
        throw fsError(e, folder, 'list the model folder');
      }
      return { ref, config: ckpt.rawConfig, tensors: ckpt.headers(), weightBytes: ckpt.totalBytes, files };
    } finally {
      await ckpt.close();
    }
  }
}
