#!/usr/bin/env node
// Entry point of the `moeforge` binary (package.json "bin").
import { main } from './main.js';

main(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`moeforge: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
