// Progress of calibration passes (one bar per pass, cli-progress), on stderr and only
// when it is a terminal: tests, pipes and CI logs stay quiet.
import { SingleBar } from 'cli-progress';

export interface PassProgress {
  tick(): void;
  stop(): void;
}

export function passProgress(label: string, total: number): PassProgress {
  if (!process.stderr.isTTY || total <= 0) return { tick() {}, stop() {} };
  const bar = new SingleBar({ format: `${label} {bar} {value}/{total} | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true });
  bar.start(total, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}
