import type { ServerResponse } from 'node:http';

/**
 * Server-sent events to every open page: one `snapshot` event per push, a comment line as
 * heartbeat (proxies and the browser keep an idle stream open), and an orderly end on stop so
 * the server can close without waiting for clients.
 */
export class SseHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(heartbeatMs: number) {
    this.heartbeat = setInterval(() => this.write(`: heartbeat ${Date.now()}\n\n`), heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes over a response as an event stream; `first` is sent at once (the current state). */
  add(res: ServerResponse, first?: { event: string; data: string }): void {
    if (this.closed) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // The browser reconnects after this long if the stream drops.
    res.write('retry: 2000\n\n');
    if (first) res.write(frame(first.event, first.data));
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }

  send(event: string, data: string): void {
    this.write(frame(event, data));
  }

  private write(text: string): void {
    for (const res of this.clients) {
      // A client that does not read (a frozen tab) is dropped rather than buffered without bound.
      if (res.writableLength > 8 * 1024 * 1024) {
        res.destroy();
        this.clients.delete(res);
        continue;
      }
      res.write(text);
    }
  }

  /** Ends every stream with a `bye` event (the page shows "console stopped" instead of retrying silently). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const res of this.clients) res.end(frame('bye', '{}'));
    this.clients.clear();
  }
}

function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data.replace(/\n/g, '\ndata: ')}\n\n`;
}
