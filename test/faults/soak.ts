/**
 * `npm run soak -- [--minutes 10] [--frame-rate 40] [--assets 12] [--warmup-minutes 2] [--engine auto] [--keep-logs]`
 *
 * The soak test: does a worker hold steady under hours of ordinary load, or does it creep? A leak
 * that costs a few kilobytes per batch never shows in a test that runs seconds, but it is what
 * gets a pod OOM-killed on the second night. So this runs one vision and one sensor worker as
 * child processes (as deployed: LOG_LEVEL=warn, one inference thread, each its own METRICS_PORT)
 * against a broker and Redis of its own (in a temp dir, on free ports), feeds them steady paced
 * load from the gateway simulator library (2 lines x 3 cameras at --frame-rate frames/s in all,
 * --assets pumps sending one 10-sample chunk per second each, in real time) for --minutes, and
 * scrapes each worker's /metrics every 10 s, the way Prometheus would. What it measures:
 * - RSS (`process_resident_memory_bytes`) after the warm-up: the median of the first minute of
 *   samples against the median of the last minute. The warm-up (default 2 min, or 20% of a
 *   shorter run) lets caches, JIT, allocator arenas and the batchers reach their working size;
 *   medians keep one sample that lands in a GC's trough (V8 hands back 30-40 MB at once) from
 *   passing for growth or hiding it. Target: growth below 10%.
 * - Live TF.js tensors (`fleet_inference_live_tensors`, summed over the pool's threads): must be
 *   the same in every sample after the warm-up (a tensor not disposed per batch grows without
 *   bound). With ONNX Runtime (the default for the shipped models) it is 0 throughout, which is
 *   what that engine reports (no TF.js registry); `--engine tfjs-wasm` etc. makes it meaningful.
 * - V8 heap used, event-loop lag p99 (`nodejs_eventloop_lag_p99_seconds`: each scrape's own
 *   interval), records consumed and produced, and the consumer lag at the end: the load must be
 *   one the workers keep up with (a lag that keeps growing means the rate is too high for the
 *   machine, and memory then measures a backlog, not a leak).
 * Progress lines go to stderr, then a small table, and as the last stdout line one JSON object
 * with the figures per worker, the targets and `met`. Exit code 0 when every target was met, 1
 * when not (or a worker crashed, or the run did not complete), 2 on bad flags, 130 on Ctrl-C.
 * Ctrl-C (once) ends the load early and stops the workers (SIGTERM, in-flight batches commit)
 * and the stack; a second Ctrl-C kills them at once. The temp dir (stack data, worker logs) is
 * removed after a run that met its targets; otherwise the worker logs are kept and named.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort } from '../../deploy/local/processes.js';
import { REPO_ROOT, stackDown, stackUp } from '../../deploy/local/stack.js';
import { parseSimArgs, runSimulator, type SimSummary } from '../../services/gateway-sim/src/index.js';
import { runMain } from '../../shared/src/lifecycle/run-main.js';
import { handleShutdownSignals } from '../../shared/src/lifecycle/signals.js';
import { createLogger } from '../../shared/src/log/logger.js';
import { readyzOk } from '../helpers/ops.js';
import { createTestStackDir, ownStackOptions } from '../helpers/stack.js';

type WorkerKind = 'vision' | 'sensor';
const KINDS: readonly WorkerKind[] = ['vision', 'sensor'];

const SCRAPE_INTERVAL_MS = 10_000;
/** Samples per chunk at the simulator's 100 ms period: one chunk per asset per second (as `npm start`). */
const CHUNK_SAMPLES = 10;
const TARGETS = { rssGrowthPctMax: 10, tensorsFlat: true } as const;
const MB = 1024 * 1024;

/** One scrape of one worker. */
interface Sample {
  /** Seconds since the load started. */
  t: number;
  rssMb: number;
  heapUsedMb: number;
  tensors: number;
  lagP99Ms: number;
  consumed: number;
  produced: number;
  lag: number;
}

/** What the last stdout line reports per worker. */
interface WorkerFigures {
  /** Median RSS of the first and the last minute after the warm-up. */
  rssStartMb: number;
  rssEndMb: number;
  rssGrowthPct: number;
  heapUsedStartMb: number;
  heapUsedEndMb: number;
  tensorsStart: number;
  tensorsEnd: number;
  /** Every sample after the warm-up had the same tensor count. */
  tensorsFlat: boolean;
  eventLoopLagP99MaxMs: number;
  eventLoopLagP99EndMs: number;
  consumed: number;
  produced: number;
  lagEnd: number;
  /** Largest consumer lag seen after the warm-up (bounded = the worker keeps up). */
  lagMax: number;
  /** Engine of the served model(s), from `fleet_model_info`. */
  engine: string;
  /** Exit code of the graceful stop (0 expected); null when it died of a signal. */
  exitCode: number | null;
}

class Worker {
  readonly samples: Sample[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  engine = '?';
  /** Log lines (warn and above) so far, and the distinct messages already shown. */
  logLines = 0;
  readonly messagesSeen = new Set<string>();
  private stopping = false;
  unexpectedExit = false;

  private constructor(
    readonly kind: WorkerKind,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly log: WriteStream,
    say: (line: string) => void,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.stopping) {
          this.unexpectedExit = true;
          say(`${kind}-worker exited on its own (code ${code}, signal ${signal})`);
        }
        log.end();
        resolve({ code, signal });
      });
    });
  }

  /** Starts the worker in its own process group: a terminal's Ctrl-C reaches only this script, which sends one SIGTERM. */
  static async start(kind: WorkerKind, env: NodeJS.ProcessEnv, dir: string, say: (line: string) => void): Promise<Worker> {
    const port = await freePort();
    const log = createWriteStream(join(dir, `${kind}-worker.log`), { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', `services/${kind}-worker/src/main.ts`], {
      cwd: REPO_ROOT,
      env: { ...env, METRICS_PORT: String(port), WORKER_ID: `soak-${kind}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const worker = new Worker(kind, port, child, log, say);
    // LOG_LEVEL=warn: every line goes to the worker's log file; the terminal gets a count per
    // sample and each distinct message once (a retried Kafka error can repeat many times a second).
    for (const stream of [child.stdout, child.stderr]) {
      stream.pipe(log, { end: false });
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (!line.trim()) continue;
          worker.logLines += 1;
          const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 200);
          if (worker.messagesSeen.size < 20 && !worker.messagesSeen.has(msg)) {
            worker.messagesSeen.add(msg);
            say(`[${kind}-worker, first of its kind] ${line.slice(0, 400)}`);
          }
        }
      });
    }
    return worker;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  ready(): Promise<boolean> {
    return readyzOk(this.port);
  }

  /** One scrape of /metrics, summed over label sets; undefined when the worker did not answer. */
  async scrape(t: number): Promise<Sample | undefined> {
    let text: string;
    try {
      const r = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(5000) });
      text = await r.text();
      if (!r.ok) return undefined;
    } catch {
      return undefined;
    }
    const m = parseMetrics(text);
    const sum = (name: string) => m.get(name)?.reduce((a, s) => a + s.value, 0) ?? Number.NaN;
    this.engine = [...new Set((m.get('fleet_model_info') ?? []).map((s) => s.labels.engine ?? '?'))].join(',') || '?';
    const sample: Sample = {
      t,
      rssMb: sum('process_resident_memory_bytes') / MB,
      heapUsedMb: sum('nodejs_heap_size_used_bytes') / MB,
      tensors: sum('fleet_inference_live_tensors'),
      lagP99Ms: sum('nodejs_eventloop_lag_p99_seconds') * 1000,
      consumed: sum('fleet_records_consumed_total'),
      produced: sum('fleet_records_produced_total'),
      lag: m.has('fleet_consumer_lag_records') ? sum('fleet_consumer_lag_records') : 0,
    };
    this.samples.push(sample);
    return sample;
  }

  /** SIGTERM, and SIGKILL when it has not exited within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<number | null> {
    this.stopping = true;
    if (this.alive) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }

  kill(): void {
    this.stopping = true;
    if (this.alive) this.child.kill('SIGKILL');
  }
}

interface PromSample {
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format's samples by name (label values here hold no escaped quotes). */
function parseMetrics(text: string): Map<string, PromSample[]> {
  const out = new Map<string, PromSample[]>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[k!] = v!;
    const list = out.get(m[1]!) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

/** Samples (10 s apart) in each end's RSS median: one minute. */
const RSS_WINDOW_SAMPLES = 6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (n: number, digits = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : Number.NaN);

function figures(w: Worker, warmupS: number, exitCode: number | null): WorkerFigures | undefined {
  const after = w.samples.filter((s) => s.t >= warmupS);
  const first = after[0];
  const last = after.at(-1);
  if (!first || !last) return undefined;
  // One minute of samples at each end (at least one; the two windows never overlap).
  const n = Math.max(1, Math.min(RSS_WINDOW_SAMPLES, Math.floor(after.length / 2)));
  const rssStart = median(after.slice(0, n).map((s) => s.rssMb));
  const rssEnd = median(after.slice(-n).map((s) => s.rssMb));
  return {
    rssStartMb: round(rssStart),
    rssEndMb: round(rssEnd),
    rssGrowthPct: round(((rssEnd - rssStart) / rssStart) * 100, 2),
    heapUsedStartMb: round(first.heapUsedMb),
    heapUsedEndMb: round(last.heapUsedMb),
    tensorsStart: first.tensors,
    tensorsEnd: last.tensors,
    tensorsFlat: after.every((s) => s.tensors === first.tensors),
    eventLoopLagP99MaxMs: round(Math.max(...after.map((s) => s.lagP99Ms))),
    eventLoopLagP99EndMs: round(last.lagP99Ms),
    consumed: last.consumed,
    produced: last.produced,
    lagEnd: last.lag,
    lagMax: Math.max(...after.map((s) => s.lag)),
    engine: w.engine,
    exitCode,
  };
}

function formatTable(rows: [WorkerKind, WorkerFigures][]): string {
  const header = ['worker', 'engine', 'rss MB start -> end', 'growth', 'heap MB start -> end', 'tensors', 'loop p99 max/end ms', 'consumed', 'produced', 'lag max/end'];
  const body = rows.map(([kind, f]) => [
    kind,
    f.engine,
    `${f.rssStartMb} -> ${f.rssEndMb}`,
    `${f.rssGrowthPct}%`,
    `${f.heapUsedStartMb} -> ${f.heapUsedEndMb}`,
    `${f.tensorsStart} -> ${f.tensorsEnd}${f.tensorsFlat ? '' : ' (varied)'}`,
    `${f.eventLoopLagP99MaxMs} / ${f.eventLoopLagP99EndMs}`,
    String(f.consumed),
    String(f.produced),
    `${f.lagMax} / ${f.lagEnd}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [header, ...body].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

function positive(name: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new RangeError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${v}"`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      'frame-rate': { type: 'string', default: '40' },
      assets: { type: 'string', default: '12' },
      'warmup-minutes': { type: 'string' },
      engine: { type: 'string', default: 'auto' },
      'keep-logs': { type: 'boolean', default: false },
    },
  });
  let minutes: number, frameRate: number, assets: number, warmupMinutes: number;
  try {
    minutes = positive('minutes', values.minutes, false);
    frameRate = positive('frame-rate', values['frame-rate'], false);
    assets = positive('assets', values.assets, true);
    warmupMinutes = values['warmup-minutes'] === undefined ? Math.min(2, minutes * 0.2) : Number(values['warmup-minutes']);
    if (!Number.isFinite(warmupMinutes) || warmupMinutes < 0 || warmupMinutes >= minutes) {
      throw new RangeError(`--warmup-minutes must be at least 0 and less than --minutes (${minutes}), got "${values['warmup-minutes']}"`);
    }
  } catch (err) {
    console.error(`soak: ${(err as Error).message}`);
    return 2;
  }
  const warmupS = warmupMinutes * 60;
  const say = (line: string) => console.error(line);

  const dir = await createTestStackDir();
  say(`soak: ${minutes} min at ${frameRate} frames/s and ${assets} pumps (warm-up ${round(warmupMinutes, 2)} min, engine ${values.engine}); state and worker logs in ${dir}`);
  const stackOptions = await ownStackOptions(dir, (line) => say(`  [stack] ${line}`));
  const workers: Worker[] = [];
  const stop = new AbortController();
  let interrupted = false;
  const removeSignalHandlers = handleShutdownSignals({
    onStop: () => {
      interrupted = true;
      say('soak: stopping (Ctrl-C again to kill at once) ...');
      stop.abort();
    },
    onForce: () => {
      for (const w of workers) w.kill();
      void stackDown({ ...stackOptions, stopTimeoutMs: 5000 })
        .then(() => rm(join(dir, 'stack'), { recursive: true, force: true }))
        .finally(() => process.exit(130));
    },
  });

  let failure: string | undefined;
  let summary: SimSummary | undefined;
  const exitCodes = new Map<WorkerKind, number | null>();
  try {
    const stack = await stackUp(stackOptions);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      REDIS_URL: stack.redisUrl,
      LOG_LEVEL: 'warn',
      INFERENCE_ENGINE: values.engine,
      INFERENCE_THREADS: '1',
    };
    for (const kind of KINDS) workers.push(await Worker.start(kind, env, dir, say));
    const readyBy = Date.now() + 180_000;
    while (!stop.signal.aborted && !(await Promise.all(workers.map((w) => w.ready()))).every(Boolean)) {
      if (workers.some((w) => !w.alive)) throw new Error('a worker exited before it was ready (see its log)');
      if (Date.now() > readyBy) throw new Error('the workers were not ready within 180 s');
      await sleep(500);
    }
    if (stop.signal.aborted) throw new Error('interrupted before the load started');
    say(`soak: both workers ready (metrics on ${workers.map((w) => `${w.kind} :${w.port}`).join(', ')}); load for ${minutes} min`);

    const parsed = parseSimArgs([
      '--seed', '1',
      '--frame-rate', String(frameRate),
      '--lines', '2',
      '--cameras', '3',
      '--assets', String(assets),
      '--sensor-format', 'chunk',
      '--chunk-size', String(CHUNK_SAMPLES),
      '--reading-rate', String(assets),
      '--anomaly-rate', '0.05',
      '--duration', `${Math.round(minutes * 60_000)}ms`,
      '--brokers', stack.kafkaBrokers.join(','),
      '--log-level', 'warn',
    ]);
    if (parsed.help) throw new Error('unexpected --help');
    const simLogger = createLogger({ service: 'gateway-sim', level: 'warn', destination: process.stderr });
    const began = performance.now();
    const elapsedS = () => (performance.now() - began) / 1000;
    const sampleAll = async () => {
      const t = Math.round(elapsedS());
      const line: string[] = [];
      for (const w of workers) {
        const s = await w.scrape(t);
        if (!s) {
          line.push(`${w.kind} (no answer)`);
          continue;
        }
        line.push(`${w.kind} rss ${s.rssMb.toFixed(1)} MB heap ${s.heapUsedMb.toFixed(1)} MB tensors ${s.tensors} loop p99 ${s.lagP99Ms.toFixed(1)} ms consumed ${s.consumed} lag ${s.lag} log lines ${w.logLines}`);
      }
      const mark = t < warmupS ? ' (warm-up)' : '';
      say(`[${String(Math.floor(t / 60)).padStart(2)}:${String(t % 60).padStart(2, '0')}]${mark} ${line.join(' | ')}`);
    };
    // A worker that dies ends the load: what follows would measure nothing.
    for (const w of workers) {
      void w.exited.then(() => {
        if (w.unexpectedExit) stop.abort();
      });
    }
    const sim = runSimulator(parsed.config, { logger: simLogger, signal: stop.signal });
    let sampling = Promise.resolve();
    const ticker = setInterval(() => {
      sampling = sampling.then(sampleAll);
    }, SCRAPE_INTERVAL_MS);
    try {
      summary = await sim;
    } finally {
      clearInterval(ticker);
      await sampling;
    }
    // The end sample: right as the load stops (unless a tick just took it).
    if (!stop.signal.aborted && workers.every((w) => (w.samples.at(-1)?.t ?? -1) < Math.round(elapsedS()) - 1)) await sampleAll();
    say(`soak: load done: ${summary.frames} frames (${summary.framesPerSecond.toFixed(1)}/s), ${summary.readings} chunks (${summary.readingsPerSecond.toFixed(1)}/s) in ${summary.seconds.toFixed(0)} s`);
    if (!stop.signal.aborted && summary.framesPerSecond < frameRate * 0.95) say(`soak: the simulator reached only ${summary.framesPerSecond.toFixed(1)} of ${frameRate} frames/s`);
  } catch (err) {
    failure = (err as Error).message;
    say(`soak: ${failure}`);
  } finally {
    say('soak: stopping the workers (SIGTERM) and the stack');
    const codes = await Promise.all(workers.map((w) => w.stop(45_000)));
    workers.forEach((w, i) => exitCodes.set(w.kind, codes[i]!));
    await stackDown({ ...stackOptions, log: () => undefined }).catch((err: unknown) => say(`soak: stopping the stack failed: ${(err as Error).message}`));
    removeSignalHandlers();
  }

  const results: [WorkerKind, WorkerFigures][] = [];
  for (const w of workers) {
    const f = figures(w, warmupS, exitCodes.get(w.kind) ?? null);
    if (f) results.push([w.kind, f]);
  }
  const crashed = workers.filter((w) => w.unexpectedExit).map((w) => w.kind);
  const badStops = results.filter(([, f]) => f.exitCode !== 0).map(([k]) => k);
  const complete = failure === undefined && !interrupted && crashed.length === 0 && results.length === KINDS.length;
  const met = complete && results.every(([, f]) => f.rssGrowthPct < TARGETS.rssGrowthPctMax && f.tensorsFlat);
  if (results.length > 0) console.log(formatTable(results));
  for (const [kind, f] of results) {
    if (f.rssGrowthPct >= TARGETS.rssGrowthPctMax) say(`soak: ${kind}-worker RSS grew ${f.rssGrowthPct}% (target < ${TARGETS.rssGrowthPctMax}%)`);
    if (!f.tensorsFlat) say(`soak: ${kind}-worker live tensors varied after the warm-up (${f.tensorsStart} -> ${f.tensorsEnd})`);
  }
  if (crashed.length > 0) say(`soak: crashed: ${crashed.join(', ')}`);
  if (badStops.length > 0) say(`soak: graceful stop not clean (exit code != 0): ${badStops.join(', ')}`);
  if (met && !values['keep-logs']) {
    await rm(dir, { recursive: true, force: true });
  } else {
    await rm(join(dir, 'stack'), { recursive: true, force: true });
    say(`soak: worker logs kept in ${dir}`);
  }
  console.log(
    JSON.stringify({
      minutes,
      warmupMinutes: round(warmupMinutes, 2),
      frameRate,
      assets,
      load: summary
        ? { frames: summary.frames, framesPerSecond: round(summary.framesPerSecond), chunks: summary.readings, chunksPerSecond: round(summary.readingsPerSecond) }
        : null,
      samples: workers.length === 0 ? 0 : Math.min(...workers.map((w) => w.samples.length)),
      workers: Object.fromEntries(results),
      targets: TARGETS,
      complete,
      ...(failure === undefined ? {} : { failure }),
      met,
    }),
  );
  if (interrupted) return 130;
  return met ? 0 : 1;
}

runMain('soak', main);
