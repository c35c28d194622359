// `moeforge serve <model> [--port 8000] [--host 127.0.0.1]`: the built-in engine
// behind the OpenAI API subset vLLM serves (/v1/models, /v1/completions,
// /v1/chat/completions), so any OpenAI client, lm-evaluation-harness's
// local-completions or `moeforge eval openai:<url>#<name>` can use a freshly built
// model (a heterogeneous MoE folder too). Binds 127.0.0.1 unless told otherwise:
// there is no authentication.
import type { Command } from 'commander';
import { MoeforgeError } from '../../core/errors.js';
import { ServeEngine } from '../../core/serve/engine.js';
import { DEFAULT_HOST, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, startServer } from '../../core/serve/server.js';
import { Tokenizer } from '../../core/tokenizer/tokenizer.js';
import { openModelFolder, parseBytes, withModelOptions, type ModelCliOptions } from '../model-folder.js';

interface ServeCliOptions extends ModelCliOptions {
  host: string;
  port: string;
  servedModelName?: string;
  maxBodyBytes?: string;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MoeforgeError('invalid_argument', `expected a port number 0..65535 (0 = any free port), got '${text}'`, { path: '--port' });
  }
  return port;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function register(program: Command): void {
  withModelOptions(
    program
      .command('serve')
      .description('serve a model over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)')
      .argument('<model>', 'model folder (config.json, safetensors, tokenizer files)')
      .option('--host <host>', 'address to bind (0.0.0.0 exposes the model to the network, without authentication)', DEFAULT_HOST)
      .option('--port <port>', 'port to listen on (0 = any free port)', String(DEFAULT_PORT))
      .option('--served-model-name <name>', 'the model id clients send (default: the <model> argument as given, as vLLM)')
      .option('--max-body-bytes <n>', `largest request body accepted (default ${DEFAULT_MAX_BODY_BYTES}, e.g. 4M)`),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ moeforge serve ./my-moe --port 8000\n  $ moeforge eval openai:http://127.0.0.1:8000/v1#./my-moe --suite suite.yaml',
    )
    .action(async (folder: string, opts: ServeCliOptions) => {
      const port = parsePort(opts.port);
      const maxBodyBytes = opts.maxBodyBytes === undefined ? DEFAULT_MAX_BODY_BYTES : parseBytes(opts.maxBodyBytes, '--max-body-bytes');
      const tokenizer = await Tokenizer.fromFolder(folder);
      // A heterogeneous MoE serves the same way: routed once per request on its prompt.
      const { model } = await openModelFolder(folder, opts);
      const name = opts.servedModelName ?? folder;
      const engine = new ServeEngine(model, tokenizer, name);
      let running;
      try {
        running = await startServer(engine, {
          host: opts.host,
          port,
          maxBodyBytes,
          onError: (e) => process.stderr.write(`moeforge serve: internal error (a bug, please report it): ${(e as Error)?.stack ?? String(e)}\n`),
        });
      } catch (e) {
        model.dispose();
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'EADDRINUSE' ? 'the port is in use (choose another with --port)' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (e as Error).message;
        throw new MoeforgeError('io_error', `cannot listen on ${opts.host}:${port}: ${why}`, { path: '--port', cause: e });
      }
      if (!LOOPBACK.has(opts.host)) process.stderr.write(`warning: listening on ${opts.host}: anyone who can reach it can use the model (no authentication)\n`);
      process.stdout.write(`serving ${name} at ${running.url}/v1 (OpenAI API: /v1/models, /v1/completions, /v1/chat/completions); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await running.close();
      model.dispose();
    });
}
