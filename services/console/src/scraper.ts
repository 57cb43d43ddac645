import type { Logger } from '../../../shared/src/log/logger.js';
import type { ScrapeTarget } from './config.js';
import { summariseWorker, type ScrapeMemory, type WorkerRow, type WorkerScrape } from './state/index.js';

/** Options of {@link createScraper}. */
export interface ScraperOptions {
  targets: ScrapeTarget[];
  intervalMs: number;
  timeoutMs: number;
  onRows: (rows: WorkerRow[]) => void;
  logger: Logger;
}

async function fetchText(url: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, text: await r.text() };
}

/** One scrape of one worker: `/metrics` and `/readyz` side by side; never throws. */
export async function scrapeWorker(target: ScrapeTarget, timeoutMs: number, now: () => number = Date.now): Promise<WorkerScrape> {
  const [metrics, ready] = await Promise.allSettled([fetchText(`${target.url}/metrics`, timeoutMs), fetchText(`${target.url}/readyz`, timeoutMs)]);
  const out: WorkerScrape = { at: now() };
  if (metrics.status === 'fulfilled' && metrics.value.status === 200) out.metrics = metrics.value.text;
  else out.error = metrics.status === 'rejected' ? `unreachable (${(metrics.reason as Error).message})` : `/metrics answered ${metrics.value.status}`;
  if (ready.status === 'fulfilled') {
    try {
      const body = JSON.parse(ready.value.text) as { ready?: unknown; state?: unknown };
      out.readiness = { ready: body.ready === true, ...(typeof body.state === 'string' ? { state: body.state } : {}) };
    } catch {
      // A /readyz that is not JSON: the row shows 'unknown'.
    }
  }
  return out;
}

/**
 * Scrapes every configured worker every `intervalMs` (one round at a time: a slow worker delays
 * the next round, it never stacks requests) and hands the fleet table to `onRows`.
 */
export function createScraper(options: ScraperOptions): { start(): void; stop(): Promise<void> } {
  const memory = new Map<string, ScrapeMemory>();
  const warned = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const round = async () => {
    const rows = await Promise.all(
      options.targets.map(async (t) => {
        const scrape = await scrapeWorker(t, options.timeoutMs);
        const { row, memory: m } = summariseWorker(t.name, t.url, scrape, memory.get(t.name));
        if (m) memory.set(t.name, m);
        // Log a worker going down once, and coming back once.
        if (row.error && !warned.has(t.name)) {
          warned.add(t.name);
          options.logger.warn({ worker: t.name, url: t.url, error: row.error }, 'worker metrics unreachable');
        } else if (!row.error && warned.delete(t.name)) {
          options.logger.info({ worker: t.name }, 'worker metrics reachable again');
        }
        return row;
      }),
    );
    if (!stopped) options.onRows(rows);
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round().finally(schedule);
    }, options.intervalMs);
  };

  return {
    start() {
      if (options.targets.length === 0) return;
      running = round().finally(schedule);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
