// The tool version recorded in every output's provenance.
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // core/version.ts lives one folder below package.json, both as source and compiled to dist/core/.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'moeforge' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
