// Opening the models a merge config names: a path (relative to the config file's folder)
// that exists is a local folder; anything else goes to the registered ExpertSource plugins
// (core/sources.ts: the Hub, …).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { normalizeConfig } from '../config/normalize.js';
import type { NormalizedConfig } from '../config/types.js';
import { MoeforgeError } from '../errors.js';
import { TOKENS } from '../plugins.js';
import { fetchModel } from '../sources.js';

export interface OpenedModel {
  ref: string;
  folder: string;
  revision: string | undefined;
  checkpoint: Checkpoint;
  config: NormalizedConfig;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function locateModel(
  container: DependencyContainer | undefined,
  ref: string,
  baseDir: string,
): Promise<{ folder: string; revision: string | undefined }> {
  const local = path.resolve(baseDir, ref);
  if (await isDir(local)) return { folder: local, revision: undefined };
  // Clearly a path (./x, ../x, /x, C:\x): say where we looked rather than asking the Hub.
  if (/^(\.{1,2}[\\/]|[\\/]|~|[A-Za-z]:[\\/])/.test(ref)) {
    throw new MoeforgeError('missing_file', `no such model folder (looked in ${local})`, { path: ref });
  }
  if (container && container.isRegistered(TOKENS.ExpertSource, true)) {
    const files = await fetchModel(container, ref);
    return { folder: files.folder, revision: files.revision };
  }
  throw new MoeforgeError('missing_file', 'model not found: no such local folder (relative to the config file) and no model source registered', {
    path: ref,
  });
}

export async function openModel(container: DependencyContainer | undefined, ref: string, baseDir: string): Promise<OpenedModel> {
  const { folder, revision } = await locateModel(container, ref, baseDir);
  const checkpoint = await Checkpoint.open(folder);
  const config = normalizeConfig(checkpoint.rawConfig, path.join(folder, 'config.json'));
  return { ref, folder, revision, checkpoint, config };
}
