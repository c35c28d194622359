// Writes one synthetic model of a given size and reports wall time, throughput and
// peak RSS (which must not grow with the model: weights are streamed in 1 Mi-element
// chunks). Usage: tsx benchmarks/synthetic/write-large.ts <folder> [GiB=1] [F32|BF16|F16]
import { rm } from 'node:fs/promises';
import { writeSyntheticModel } from './dense-model.js';
import { optionsForBytes, syntheticParameterCount } from './sizes.js';

async function main(): Promise<void> {
  const [folder, gib = '1', dtype = 'F32'] = process.argv.slice(2);
  if (!folder) throw new Error('usage: write-large.ts <folder> [GiB] [dtype]');
  const options = optionsForBytes(Number(gib) * 2 ** 30, dtype as 'F32' | 'BF16' | 'F16');
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const t0 = performance.now();
  await writeSyntheticModel(folder, { ...options, shardSizeBytes: 2 ** 30 });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const bytes = syntheticParameterCount(options) * (dtype === 'F32' ? 4 : 2);
  console.log(
    `wrote ${options.numLayers} layers, ${(bytes / 2 ** 30).toFixed(2)} GiB ${dtype} in ${seconds.toFixed(1)} s ` +
      `(${(bytes / 2 ** 20 / seconds).toFixed(0)} MiB/s), peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`,
  );
  if (process.env['KEEP'] !== '1') await rm(folder, { recursive: true, force: true });
}

await main();
