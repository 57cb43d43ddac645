/**
 * The fleet table from the workers' own ops endpoints: Prometheus text from `/metrics` (names in
 * docs/operations.md) and the state from `/readyz`. Pure functions over one scrape and the one
 * before it: rates and the recent p99 are differences between the two.
 */

/** One sample line: `name{labels} value`. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (comments and malformed lines skipped). */
export function parsePrometheus(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    const re = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(body); l !== null; l = re.exec(body)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(value) && m[4] !== 'NaN') continue;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

const sum = (samples: MetricSample[], name: string) => samples.filter((s) => s.name === name).reduce((a, s) => a + (Number.isFinite(s.value) ? s.value : 0), 0);

/** Cumulative histogram buckets `le -> count` of one metric, summed over its other labels. */
export function histogramBuckets(samples: MetricSample[], name: string): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  return buckets;
}

/**
 * The q-quantile of a cumulative histogram, as the upper bound of the bucket holding it (what
 * Prometheus's histogram_quantile approaches without interpolation); undefined with no
 * observations, the largest finite bound when it falls in +Inf.
 */
export function quantileOf(buckets: Map<number, number>, q: number): number | undefined {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted[sorted.length - 1]?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lastFinite: number | undefined;
  for (const [le, count] of sorted) {
    if (Number.isFinite(le)) lastFinite = le;
    if (count >= rank) return Number.isFinite(le) ? le : lastFinite;
  }
  return lastFinite;
}

/** Difference of two cumulative histograms (a counter reset gives the current one). */
function bucketDelta(cur: Map<number, number>, prev: Map<number, number> | undefined): Map<number, number> {
  if (!prev) return cur;
  const out = new Map<number, number>();
  for (const [le, c] of cur) {
    const d = c - (prev.get(le) ?? 0);
    if (d < 0) return cur;
    out.set(le, d);
  }
  return out;
}

/** What one scrape of one worker gave. */
export interface WorkerScrape {
  at: number;
  /** `/metrics` text, undefined when the scrape failed. */
  metrics?: string;
  /** `/readyz` body (`state`, `ready`), when it answered. */
  readiness?: { ready?: boolean; state?: string };
  error?: string;
}

/** One row of the fleet table. */
export interface WorkerRow {
  name: string;
  url: string;
  /** `running`, `starting`, `draining`, ... from `/readyz`; `down` when nothing answered. */
  state: string;
  ready: boolean;
  service?: string;
  workerId?: string;
  /** Records consumed per second since the previous scrape. */
  consumedPerSec?: number;
  /** Records produced (results, dead letters) or deliveries made per second. */
  producedPerSec?: number;
  consumed: number;
  produced: number;
  deadLettered: number;
  /** Sum of fleet_consumer_lag_records over assigned partitions. */
  lag?: number;
  /** p99 of capture-to-commit (or delivery) latency since the previous scrape, ms; overall when nothing new. */
  p99Ms?: number;
  models: { model: string; version: string; engine: string }[];
  lastScrapeAt: number;
  error?: string;
}

/** Internal: what the next summary needs from this one. */
export interface ScrapeMemory {
  at: number;
  consumed: number;
  produced: number;
  latency: Map<number, number>;
}

/** The row for one worker from its latest scrape and what was kept from the previous one. */
export function summariseWorker(name: string, url: string, scrape: WorkerScrape, prev: ScrapeMemory | undefined): { row: WorkerRow; memory?: ScrapeMemory } {
  const base = { name, url, lastScrapeAt: scrape.at, models: [], consumed: 0, produced: 0, deadLettered: 0 };
  if (scrape.metrics === undefined) {
    return { row: { ...base, state: scrape.readiness?.state ?? 'down', ready: false, ...(scrape.error ? { error: scrape.error } : {}) } };
  }
  const samples = parsePrometheus(scrape.metrics);
  const consumed = sum(samples, 'fleet_records_consumed_total');
  const deliveries = sum(samples, 'fleet_action_deliveries_total');
  const produced = sum(samples, 'fleet_records_produced_total') + deliveries;
  const e2e = histogramBuckets(samples, 'fleet_end_to_end_latency_seconds');
  // The actions worker registers the end-to-end histogram too but observes deliveries instead.
  const observed = (b: Map<number, number>) => Math.max(0, ...b.values()) > 0;
  const delivery = histogramBuckets(samples, 'fleet_action_delivery_latency_seconds');
  const latency = observed(e2e) || !observed(delivery) ? e2e : delivery;
  const lagSamples = samples.filter((s) => s.name === 'fleet_consumer_lag_records');
  const dt = prev ? (scrape.at - prev.at) / 1000 : 0;
  const rate = (cur: number, before: number | undefined) => (before === undefined || dt <= 0 || cur < before ? undefined : (cur - before) / dt);
  const recent = quantileOf(bucketDelta(latency, prev?.latency), 0.99);
  const p99 = recent ?? quantileOf(latency, 0.99);
  const any = samples.find((s) => s.labels.service !== undefined);
  const models = samples
    .filter((s) => s.name === 'fleet_model_info' && s.value === 1)
    .map((s) => ({ model: s.labels.model ?? '?', version: s.labels.version ?? '?', engine: s.labels.engine ?? '?' }));
  const consumedPerSec = rate(consumed, prev?.consumed);
  const producedPerSec = rate(produced, prev?.produced);
  const row: WorkerRow = {
    ...base,
    state: scrape.readiness?.state ?? 'unknown',
    ready: scrape.readiness?.ready === true,
    ...(any?.labels.service ? { service: any.labels.service } : {}),
    ...(any?.labels.worker ? { workerId: any.labels.worker } : {}),
    ...(consumedPerSec === undefined ? {} : { consumedPerSec }),
    ...(producedPerSec === undefined ? {} : { producedPerSec }),
    consumed,
    produced,
    deadLettered: sum(samples, 'fleet_records_dead_lettered_total'),
    ...(lagSamples.length > 0 ? { lag: sum(samples, 'fleet_consumer_lag_records') } : {}),
    ...(p99 === undefined ? {} : { p99Ms: Math.round(p99 * 1000) }),
    models,
    ...(scrape.error ? { error: scrape.error } : {}),
  };
  return { row, memory: { at: scrape.at, consumed, produced, latency } };
}
