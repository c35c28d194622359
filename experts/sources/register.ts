// Registers the built-in expert sources under TOKENS.ExpertSource, local first: a
// reference that names an existing folder is that folder, even if it also looks
// like `org/name` (core/sources.ts asks them in registration order).
import type { DependencyContainer } from 'tsyringe';
import { TOKENS } from '../../core/plugins.js';
import type { HubContextOptions } from '../hub/context.js';
import { HubSource } from './hub.js';
import { LocalFolderSource } from './local.js';

export function registerExpertSources(container: DependencyContainer, hubOptions: HubContextOptions = {}): void {
  container.register(TOKENS.ExpertSource, { useValue: new LocalFolderSource() });
  container.register(TOKENS.ExpertSource, { useValue: new HubSource(hubOptions) });
}
