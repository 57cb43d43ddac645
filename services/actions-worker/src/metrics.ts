import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The delivery outcomes counted per attempt. */
export type DeliveryOutcomeLabel = 'delivered' | 'retry' | 'failed';

/** What one route's queue holds, read on every scrape. */
export type QueueCounts = Record<'waiting' | 'active' | 'delayed' | 'failed', number>;

export interface ActionsMetrics {
  /** One HTTP attempt ended: 2xx, a failure that will be retried, or the final failure. */
  delivery(route: string, outcome: DeliveryOutcomeLabel): void;
  /** Event creation (`processing.producedAt`) to the 2xx. */
  observeLatency(route: string, producedAt: number, deliveredAt?: number): void;
}

/**
 * The actions worker's metrics on the worker registry. Labels: `route` (configured, closed),
 * `outcome` and `state` (fixed sets); event ids never. Queue depth is read from Redis when
 * Prometheus scrapes (collect), so it is right across the fleet: every worker shows the same
 * shared queue.
 */
export function createActionsMetrics(registry: Registry, routes: readonly string[], readCounts: (route: string) => Promise<QueueCounts>): ActionsMetrics {
  const deliveries = new Counter({
    name: 'fleet_action_deliveries_total',
    help: 'HTTP delivery attempts by route and outcome (delivered: 2xx; retry: failed, will be retried; failed: final failure, sent to the failed topic).',
    labelNames: ['route', 'outcome'],
    registers: [registry],
  });
  for (const route of routes) for (const outcome of ['delivered', 'retry', 'failed']) deliveries.inc({ route, outcome }, 0);
  const latency = new Histogram({
    name: 'fleet_action_delivery_latency_seconds',
    help: 'Event creation (processing.producedAt) to the 2xx answer of a route, retries included.',
    labelNames: ['route'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [registry],
  });
  new Gauge({
    name: 'fleet_action_queue_jobs',
    help: 'Jobs in a route queue by state (waiting, active, delayed, failed), read from Redis on scrape.',
    labelNames: ['route', 'state'],
    registers: [registry],
    async collect() {
      await Promise.all(
        routes.map(async (route) => {
          try {
            const counts = await readCounts(route);
            for (const [state, n] of Object.entries(counts)) this.set({ route, state }, n);
          } catch {
            // Redis unreachable: keep the last values; /readyz says why.
          }
        }),
      );
    },
  });
  return {
    delivery(route, outcome) {
      deliveries.inc({ route, outcome });
    },
    observeLatency(route, producedAt, deliveredAt = Date.now()) {
      const seconds = (deliveredAt - producedAt) / 1000;
      if (Number.isFinite(seconds)) latency.observe({ route }, Math.max(0, seconds));
    },
  };
}
