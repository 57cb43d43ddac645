import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../../shared/src/log/logger.js';
import { framePng } from './frame-png.js';
import { SseHub } from './sse.js';
import { describeDelivery, type ConsoleState } from './state/index.js';

/** Options of {@link startConsoleServer}. */
export interface ConsoleServerOptions {
  port: number;
  host: string;
  publicDir: string;
  state: ConsoleState;
  heartbeatMs: number;
  logger: Logger;
}

/** The running server. */
export interface ConsoleServer {
  port: number;
  /** Sends the current state to every open page. */
  push(): void;
  /** Ends the event streams, stops listening, closes connections. Idempotent. */
  close(): Promise<void>;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** An andon delivery is one event JSON; anything bigger is refused unread. */
const MAX_ANDON_BYTES = 1024 * 1024;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The console's HTTP surface on node:http (a handful of routes, no framework):
 * - `GET /`, `/app.js`, `/style.css`: the page, from the repository (no CDN: plants run offline);
 * - `GET /api/snapshot`: the state as JSON; `GET /api/events`: the same as server-sent events;
 * - `GET /api/frames/<frameId>.png`: a held frame as PNG (404 once it has left memory);
 * - `POST /api/andon`: where the actions worker delivers defect and alert events;
 * - `GET /healthz`: 200 while the process serves.
 */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const { state, logger } = options;
  const log = logger.child({ component: 'console-http' });
  const hub = new SseHub(options.heartbeatMs);
  const files = new Map<string, Buffer>();
  for (const { file } of Object.values(STATIC)) if (!files.has(file)) files.set(file, await readFile(join(options.publicDir, file)));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://console').pathname;
    const method = req.method ?? 'GET';
    if (path === '/api/andon') {
      if (method !== 'POST') {
        res.setHeader('allow', 'POST');
        return sendJson(res, 405, { error: 'use POST' });
      }
      const body = await readBody(req, MAX_ANDON_BYTES);
      if (body === undefined) return sendJson(res, 413, { error: `body over ${MAX_ANDON_BYTES} bytes` });
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        return sendJson(res, 400, { error: 'body is not JSON' });
      }
      const { kind, summary } = describeDelivery(json);
      const key = req.headers['idempotency-key'];
      const eventId = (Array.isArray(key) ? key[0] : key) ?? `no-key-${Date.now()}`;
      const fresh = state.onAndon({ receivedAt: Date.now(), eventId: eventId.slice(0, 300), kind, summary: summary.slice(0, 300) });
      return sendJson(res, 200, { ok: true, repeat: !fresh });
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET');
      return sendJson(res, 405, { error: `${method} not allowed on ${path}` });
    }
    const asset = STATIC[path];
    if (asset) {
      const data = files.get(asset.file)!;
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'content-length': data.length });
      res.end(method === 'HEAD' ? undefined : data);
      return;
    }
    if (path === '/healthz') return sendJson(res, 200, { alive: true, kafka: state.kafkaState });
    if (path === '/api/snapshot') return sendJson(res, 200, state.snapshot());
    if (path === '/api/events') return hub.add(res, { event: 'snapshot', data: JSON.stringify(state.snapshot()) });
    const frame = /^\/api\/frames\/(.+)\.png$/.exec(path);
    if (frame) {
      let id: string;
      try {
        id = decodeURIComponent(frame[1]!);
      } catch {
        return sendJson(res, 400, { error: 'bad frame id' });
      }
      const held = state.frames.get(id);
      if (!held) return sendJson(res, 404, { error: `frame ${id} is no longer held` });
      if (!held.png) state.frames.setPng(id, await framePng(held));
      const png = held.png ?? (await framePng(held));
      // A frame id names one image forever: the browser may keep it.
      res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'private, max-age=3600, immutable', 'content-length': png.length });
      res.end(method === 'HEAD' ? undefined : png);
      return;
    }
    return sendJson(res, 404, { error: `no route ${path}` });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn({ err, url: req.url }, 'console request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  // No requestTimeout: the event stream is one long response.
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.warn({ err }, 'console server error'));
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    port,
    push() {
      if (hub.size > 0) hub.send('snapshot', JSON.stringify(state.snapshot()));
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        hub.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
