// The experts/ folder's plugins: merge methods and model sources. Called once
// from the composition root (index.ts createContainer); nothing registers by import.
import type { DependencyContainer } from 'tsyringe';
import type { HubContextOptions } from './hub/context.js';
import { registerMergeMethods } from './methods/register.js';
import { registerExpertSources } from './sources/register.js';

export function registerBuiltins(container: DependencyContainer, options: { hub?: HubContextOptions } = {}): void {
  registerMergeMethods(container);
  registerExpertSources(container, options.hub);
}
