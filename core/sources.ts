// Where models come from: every registered ExpertSource plugin (local folders, the
// Hub, …) is asked in registration order and the first whose `canResolve` accepts the
// reference serves it. core never imports the plugins; it resolves them by token.
import type { DependencyContainer } from 'tsyringe';
import { MoeforgeError } from './errors.js';
import { TOKENS, type ExpertSource, type FetchOptions, type ModelDescription, type ModelFiles } from './plugins.js';

function sourceFor(container: DependencyContainer, ref: string): ExpertSource {
  const sources = container.isRegistered(TOKENS.ExpertSource, true) ? container.resolveAll<ExpertSource>(TOKENS.ExpertSource) : [];
  const source = sources.find((s) => s.canResolve(ref));
  if (source) return source;
  const known = sources.map((s) => s.name).join(', ');
  throw new MoeforgeError(
    'missing_file',
    sources.length === 0
      ? 'no model sources are registered (register expert sources before building)'
      : `no model source understands this reference (tried ${known}); expected a local folder or a Hub id org/name[@revision]`,
    { path: ref },
  );
}

/** Makes a model's files available locally (downloading when a Hub reference). */
export async function fetchModel(container: DependencyContainer, ref: string, options?: FetchOptions): Promise<ModelFiles> {
  return sourceFor(container, ref).fetch(ref, options);
}

/** Config and tensor headers of a model, without its weights. */
export async function describeModel(container: DependencyContainer, ref: string): Promise<ModelDescription> {
  return sourceFor(container, ref).describe(ref);
}
