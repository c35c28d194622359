// Registers the built-in gate strategies (one per `gate_mode`) in a tsyringe
// container; the build pipeline resolves them with container.resolveAll(TOKENS.GateStrategy).
import type { DependencyContainer } from 'tsyringe';
import { TOKENS, type GateStrategy, type HeteroTrainer } from '../core/plugins.js';
import { heteroTrainer } from './learned/hetero/index.js';
import { cheapEmbedGate } from './strategies/cheap-embed.js';
import { hiddenAvgGate } from './strategies/hidden-avg.js';
import { hiddenLastGate } from './strategies/hidden-last.js';
import { hiddenGate } from './strategies/hidden.js';
import { learnedGate } from './strategies/learned.js';
import { randomGate } from './strategies/random.js';
import { routerInputGate } from './strategies/router-input.js';
import { uniformRandomGate } from './strategies/uniform-random.js';

export const BUILTIN_GATE_STRATEGIES: readonly GateStrategy[] = [
  hiddenGate,
  hiddenAvgGate,
  hiddenLastGate,
  cheapEmbedGate,
  randomGate,
  uniformRandomGate,
  routerInputGate,
  learnedGate,
];

export function registerGateStrategies(container: DependencyContainer): void {
  for (const strategy of BUILTIN_GATE_STRATEGIES) container.register<GateStrategy>(TOKENS.GateStrategy, { useValue: strategy });
  // The trainings of heterogeneous MoEs (gate_mode learned over experts of different architectures).
  container.register<HeteroTrainer>(TOKENS.HeteroTrainer, { useValue: heteroTrainer });
}
