// Models on the Hugging Face Hub (`org/name`, `org/name@revision`): fetched into
// the standard cache (experts/hub/pull.ts), described from remote headers
// (experts/hub/describe.ts). Settings come from the environment as in Python's
// huggingface_hub, unless given explicitly (tests, the CLI).
import { tryParseHubRef } from '../../core/hub/model-ref.js';
import type { ExpertSource, FetchOptions, ModelDescription, ModelFiles } from '../../core/plugins.js';
import { hubContext, type HubContext, type HubContextOptions } from '../hub/context.js';
import { describeHubModel } from '../hub/describe.js';
import { missingFromSnapshot, pullModel } from '../hub/pull.js';
import { RepoCache } from '../../core/hub/cache-layout.js';
import { LocalFolderSource } from './local.js';

export class HubSource implements ExpertSource {
  readonly name = 'hub';
  private readonly options: HubContextOptions;

  constructor(options: HubContextOptions = {}) {
    this.options = options;
  }

  /** Read the environment at use time, so HF_* set after startup are honoured. */
  private context(): HubContext {
    return hubContext(this.options);
  }

  canResolve(ref: string): boolean {
    return tryParseHubRef(ref) !== undefined;
  }

  async fetch(ref: string, options: FetchOptions = {}): Promise<ModelFiles> {
    const result = await pullModel(ref, this.context(), { ...options, includeWeights: true });
    return { ref, folder: result.folder, revision: result.commit };
  }

  async describe(ref: string): Promise<ModelDescription> {
    const ctx = this.context();
    const hubRef = tryParseHubRef(ref);
    if (hubRef) {
      // A complete cached snapshot is described from disk: no network, and it works offline.
      const cache = new RepoCache(ctx.cacheDir, hubRef.repo);
      const commit = await cache.resolveCached(hubRef.revision);
      if (commit && (await missingFromSnapshot(cache, commit, true)) === undefined) {
        const local = await new LocalFolderSource().describe(cache.snapshotDir(commit));
        return { ...local, ref, revision: commit };
      }
      if (ctx.offline) {
        // Same hub_offline error as a pull, naming what is missing.
        await pullModel(ref, ctx, { includeWeights: true });
      }
    }
    return describeHubModel(ref, ctx);
  }
}
