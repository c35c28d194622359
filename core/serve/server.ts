// `moeforge serve`: the built-in engine behind the OpenAI API subset that vLLM,
// TGI and llama.cpp's server implement (/v1/models, /v1/completions,
// /v1/chat/completions), on node:http. Every failure is an HTTP answer with
// OpenAI's error object (400 bad JSON or field, 404 unknown route or model, 405,
// 413 body over the limit, 500 a bug): nothing a client sends stops the server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServeEngine } from './engine.js';
import { chatCompletions, completions, listModels } from './handlers.js';
import { HttpError, readBody, sendError, sendJson } from './http.js';
import { parseJson } from './schemas.js';

export interface ServeOptions {
  /** Default 127.0.0.1: only this machine can reach the server unless asked otherwise. */
  host?: string;
  /** Default 8000 (as vLLM); 0 picks a free port. */
  port?: number;
  /** Largest request body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Called with each unexpected error (a bug): the server answers 500 and goes on. */
  onError?: (e: unknown) => void;
}

export interface RunningServer {
  server: Server;
  /** http://host:port (the OpenAI base URL is this + /v1). */
  url: string;
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

type Route = (engine: ServeEngine, body: unknown) => Promise<unknown> | unknown;

const ROUTES: Record<string, { method: 'GET' | 'POST'; run: Route }> = {
  '/health': { method: 'GET', run: () => ({ status: 'ok' }) },
  '/v1/models': { method: 'GET', run: (engine) => listModels(engine) },
  '/v1/completions': { method: 'POST', run: completions },
  '/v1/chat/completions': { method: 'POST', run: chatCompletions },
};

async function handle(engine: ServeEngine, req: IncomingMessage, res: ServerResponse, o: Required<Omit<ServeOptions, 'onError'>> & ServeOptions): Promise<void> {
  const pathname = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
  const route = ROUTES[pathname];
  if (!route) throw new HttpError(404, `no route ${req.method ?? ''} ${pathname}; this server answers ${Object.keys(ROUTES).join(', ')}`, 'not_found_error');
  if (req.method !== route.method) throw new HttpError(405, `${pathname} takes ${route.method}, not ${req.method ?? '?'}`);
  const body = route.method === 'POST' ? parseJson(await readBody(req, o.maxBodyBytes)) : undefined;
  sendJson(res, 200, await route.run(engine, body));
}

export function startServer(engine: ServeEngine, options: ServeOptions = {}): Promise<RunningServer> {
  const o = { host: DEFAULT_HOST, port: DEFAULT_PORT, maxBodyBytes: DEFAULT_MAX_BODY_BYTES, ...options };
  const server = createServer((req, res) => {
    // A client that goes away mid-answer is not our error.
    res.on('error', () => undefined);
    handle(engine, req, res, o).catch((e: unknown) => {
      if (e instanceof HttpError) {
        // After a 413 the rest of the body is not read: close the connection.
        sendError(res, e, e.status === 413 ? { connection: 'close' } : {});
        return;
      }
      o.onError?.(e);
      sendError(res, new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error'));
    });
  });
  // Idle keep-alive connections outlive the clients' own idle timeouts (undici: 4 s),
  // so a client never reuses a socket the server is closing at that moment (which
  // a client sees as a failed request). Node's default is 5 s.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        server,
        url: `http://${host}:${address.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
