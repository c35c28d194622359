// `moeforge routes <moe> --prompts <file.yml> [--out dir]`: where the MoE sends the
// tokens of each prompt group (top-1 / top-k fractions per expert and layer, routing
// entropy, unused experts, gate condition numbers). Prints a table; with --out also
// writes routes.json (the same numbers) and routes.svg (a heatmap).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { MoeforgeError, fsError } from '../../core/errors.js';
import { isHeteroFolder } from '../../core/hetero/load.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { routesHeatmapSvg } from '../../routers/diagnostics/heatmap-svg.js';
import { readPromptGroups } from '../../routers/diagnostics/prompts-file.js';
import { computeRoutes } from '../../routers/diagnostics/routing-stats.js';
import { formatRoutesTable } from '../../routers/diagnostics/table.js';
import { loadModelFromOptions, withModelOptions, type ModelCliOptions } from '../model-folder.js';

interface RoutesCliOptions extends ModelCliOptions {
  prompts: string;
  out?: string;
  expectGroups?: string;
}

export function register(program: Command): void {
  withModelOptions(
    program
      .command('routes')
      .description('show where an MoE routes the tokens of prompt groups: per-expert fractions, entropy, unused experts, gate condition numbers')
      .argument('<moe>', 'MoE model folder (config.json, safetensors, tokenizer files)')
      .requiredOption('--prompts <file>', 'YAML mapping: group name → list of prompts')
      .option('--out <dir>', 'also write routes.json and routes.svg (heatmap) into this folder')
      .option('--expect-groups <names>', 'comma-separated group names the prompts file may use (others are an error)'),
  )
    .addHelpText('after', '\nExample:\n  $ moeforge routes ./my-moe --prompts groups.yml --out ./routes')
    .action(async (folder: string, opts: RoutesCliOptions) => {
      const expected = opts.expectGroups?.split(',').map((s) => s.trim()).filter(Boolean);
      const groups = await readPromptGroups(opts.prompts, expected);
      if (await isHeteroFolder(folder)) {
        // Per-layer token routing does not exist there: one decision per sequence (`moeforge score` prints it).
        throw new MoeforgeError('invalid_argument', 'a heterogeneous MoE routes whole sequences, not tokens per layer: see its routing with `moeforge score` or `moeforge forward`', { path: folder });
      }
      const tokenizer = await Tokenizer.fromFolder(folder);
      const model = await loadModelFromOptions(folder, opts);
      let report;
      try {
        report = await computeRoutes(model, folder, groups, { encode: (p) => tokenizer.encode(p) });
      } finally {
        model.dispose();
      }
      process.stdout.write(formatRoutesTable(report));
      if (opts.out) {
        const json = path.join(opts.out, 'routes.json');
        const svg = path.join(opts.out, 'routes.svg');
        try {
          await mkdir(opts.out, { recursive: true });
          await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
          await writeFile(svg, routesHeatmapSvg(report));
        } catch (e) {
          throw fsError(e, opts.out, 'write the routes report');
        }
        process.stdout.write(`wrote ${json} and ${svg}\n`);
      }
    });
}
