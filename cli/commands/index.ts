// Every CLI command, one file each under cli/commands/. Each exports
// `register(program)`; this is the single list of them, in help order.
import type { Command } from 'commander';
import { register as registerBuild } from './build.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerEval } from './eval.js';
import { register as registerForward } from './forward.js';
import { register as registerGenerate } from './generate.js';
import { register as registerInspect } from './inspect.js';
import { register as registerMerge } from './merge.js';
import { register as registerPull } from './pull.js';
import { register as registerPush } from './push.js';
import { register as registerRoutes } from './routes.js';
import { register as registerScore } from './score.js';
import { register as registerServe } from './serve.js';
import { register as registerZoo } from './zoo.js';

export function registerCommands(program: Command): void {
  registerBuild(program);
  registerMerge(program);
  registerInspect(program);
  registerForward(program);
  registerGenerate(program);
  registerScore(program);
  registerEval(program);
  registerServe(program);
  registerRoutes(program);
  registerZoo(program);
  registerPull(program);
  registerPush(program);
  registerDoctor(program);
}
