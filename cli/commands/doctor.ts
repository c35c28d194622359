// `moeforge doctor`: what this machine gives moeforge — Node, the tfjs backend
// in use (wasm SIMD/threads, or tensorflow/GPU when tfjs-node-gpu loads), the
// Hugging Face cache and endpoint. Never prints a token, only whether one is set.
import type { Command } from 'commander';
import os from 'node:os';
import { BACKEND_NAMES, initBackend, type BackendName } from '../../core/backend.js';
import { hubEnv } from '../../core/hub/env.js';
import { VERSION } from '../../core/version.js';

export interface DoctorReport {
  moeforge: string;
  node: string;
  platform: string;
  cpus: number;
  memoryGiB: number;
  backend: string;
  backendDetail: string;
  tensorflowGpuAvailable: boolean;
  hfEndpoint: string;
  hfHubCache: string;
  hfTokenSet: boolean;
  hfOffline: boolean;
}

async function canLoadTensorflow(): Promise<boolean> {
  try {
    const name = '@tensorflow/tfjs-node-gpu';
    await import(name);
    return true;
  } catch {
    return false;
  }
}

export async function doctor(backend?: BackendName): Promise<DoctorReport> {
  const info = await initBackend(backend);
  const hub = hubEnv();
  return {
    moeforge: VERSION,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    backend: info.name,
    backendDetail: info.detail,
    tensorflowGpuAvailable: info.name === 'tensorflow' || (await canLoadTensorflow()),
    hfEndpoint: hub.endpoint,
    hfHubCache: hub.cacheDir,
    hfTokenSet: hub.token !== undefined,
    hfOffline: hub.offline,
  };
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('print the Node version, the tfjs backend in use and the Hugging Face settings')
    .option('--backend <name>', `force a backend (${BACKEND_NAMES.join(', ')})`)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ moeforge doctor\n  $ moeforge doctor --backend cpu --json')
    .action(async (opts: { backend?: BackendName; json?: boolean }) => {
      const report = await doctor(opts.backend);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const rows: [string, string][] = [
        ['moeforge', report.moeforge],
        ['node', `${report.node} (${report.platform}, ${report.cpus} cores, ${report.memoryGiB} GiB)`],
        ['backend', `${report.backend}: ${report.backendDetail}`],
        ['tensorflow (GPU)', report.tensorflowGpuAvailable ? 'available' : 'not installed (optional @tensorflow/tfjs-node-gpu)'],
        ['hub endpoint', report.hfEndpoint],
        ['hub cache', report.hfHubCache],
        ['hub token', report.hfTokenSet ? 'set' : 'not set'],
        ['hub offline', report.hfOffline ? 'yes (HF_HUB_OFFLINE)' : 'no'],
      ];
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    });
}
