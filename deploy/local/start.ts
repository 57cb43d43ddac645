/**
 * `npm start`: the fleet on one machine. Brings up (or reuses) the local stack, starts the
 * console, the actions worker, the vision worker, the sensor worker and the gateway simulator as
 * child processes, prints the console's address, and prints two live lines every few seconds,
 * read by its own read_committed consumer (what an MES sees): frames/s, defects and p50/p99 from
 * capture to committed inspection; readings/s (samples), windows/s scored and the alerts open
 * now. The actions worker delivers defects and alerts to the console's own andon route
 * (`POST /api/andon`), so the demo needs no outside endpoint. Ctrl-C stops the simulator, then
 * the workers (gracefully: in-flight batches commit), the actions worker, the console, then the
 * stack if this command started it; a second Ctrl-C kills the children at once. Exits 1 if a
 * child dies on its own.
 *
 * Environment: as `npm run stack:up` (KAFKA_BROKERS / REDIS_URL to use existing services),
 * START_FRAME_RATE (default 24 frames/s over 2 lines x 3 cameras), START_ASSETS (default 12
 * pumps, each sending a 10-sample chunk per second, in real time), START_INTERVAL_S (default 5),
 * CONSOLE_PORT (default 8080), CONSOLE_HOST (default 127.0.0.1 here; the console's own default is 0.0.0.0), VISION_METRICS_PORT / SENSOR_METRICS_PORT / ACTIONS_METRICS_PORT
 * (default 9464 / 9465 / 9466), ACTIONS_ROUTES or ACTIONS_ROUTES_FILE (default: one route,
 * `andon`, to the console), and every worker variable (README's configuration tables).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { decodeAlertEvent, decodeAnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { decodeInspection } from '../../shared/src/contracts/inspection.js';
import { decodeSensorMessage } from '../../shared/src/contracts/sensor.js';
import { createTopicCatalog } from '../../shared/src/contracts/topics.js';
import { createKafka } from '../../shared/src/kafka/client.js';
import { handleShutdownSignals } from '../../shared/src/lifecycle/signals.js';
import { AbortWait, waitFor } from './processes.js';
import { REPO_ROOT, StackError, stackOptionsFromEnv, stackUp } from './stack.js';

const log = (line: string) => console.log(line);
const frameRate = Number(process.env.START_FRAME_RATE ?? 24);
const assets = Number(process.env.START_ASSETS ?? 12);
/** Samples per chunk at the simulator's 100 ms period: one chunk per asset per second. */
const CHUNK = 10;
const intervalS = Number(process.env.START_INTERVAL_S ?? 5);
const consolePort = Number(process.env.CONSOLE_PORT ?? 8080);
const ports = {
  vision: process.env.VISION_METRICS_PORT ?? '9464',
  sensor: process.env.SENSOR_METRICS_PORT ?? '9465',
  actions: process.env.ACTIONS_METRICS_PORT ?? '9466',
};

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

function startChild(name: string, entry: string, args: string[], env: NodeJS.ProcessEnv): Child {
  // Own process group: a terminal's Ctrl-C reaches this launcher only, which then sends each
  // child exactly one SIGTERM (a second signal would make a child exit without draining).
  const proc = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  // Children log JSON to stderr/stdout; only warnings and errors reach this terminal.
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      if (!line.trim()) continue;
      const level = /"level":(\d+)/.exec(line)?.[1];
      if (level === undefined || Number(level) >= 40) process.stderr.write(`[${name}] ${line}\n`);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { name, proc, exited };
}

async function stopChild(c: Child, timeoutMs: number): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), timeoutMs);
  const code = await c.exited;
  clearTimeout(timer);
  log(`${c.name}: stopped (exit ${code})`);
}

async function main(): Promise<number> {
  const stack = await stackUp({ ...stackOptionsFromEnv(process.env), log: (l) => log(`stack: ${l}`) });
  const env = { ...process.env, KAFKA_BROKERS: stack.kafkaBrokers.join(','), REDIS_URL: stack.redisUrl, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' };
  const catalog = createTopicCatalog();
  const children: Child[] = [];
  let stopping = false;
  let exitCode = 0;

  // The monitor: its own group, from the end, read_committed (what an MES sees).
  const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: `npm-start-monitor-${hostname()}` });
  const monitor = kafka.consumer({ groupId: `npm-start-monitor-${process.pid}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const window = { frames: 0, defects: 0, latencies: [] as number[], samples: 0, windows: 0 };
  const totals = { frames: 0, defects: 0 };
  const openAlerts = new Set<string>();
  await monitor.connect();
  for (const topic of [catalog.inspections.name, catalog.readings.name, catalog.anomalyScores.name, catalog.alerts.name]) await monitor.subscribe({ topic, fromBeginning: false });
  await monitor.run({
    // A group of its own per start, reading from the end: committed offsets would serve nothing,
    // and kafkajs's eachMessage would commit after every message, delaying its next fetch (and
    // the p99 this monitor prints) by the commits' round trips.
    autoCommit: false,
    eachMessage: async ({ topic, message }) => {
      if (topic === catalog.readings.name) {
        const m = decodeSensorMessage(message);
        if (m.ok) window.samples += m.value.kind === 'chunk' ? m.value.samples.length : 1;
        return;
      }
      if (topic === catalog.anomalyScores.name) {
        if (decodeAnomalyScore(message).ok) window.windows += 1;
        return;
      }
      if (topic === catalog.alerts.name) {
        const a = decodeAlertEvent(message);
        if (a.ok && a.value.state === 'raised') openAlerts.add(a.value.alertId);
        if (a.ok && a.value.state === 'cleared') openAlerts.delete(a.value.alertId);
        return;
      }
      const r = decodeInspection(message);
      if (r.ok) {
        window.frames += 1;
        totals.frames += 1;
        if (r.value.verdict === 'defect') {
          window.defects += 1;
          totals.defects += 1;
        }
        window.latencies.push(Date.now() - r.value.capturedAt);
      }
      return Promise.resolve();
    },
  });

  // The console first: the actions worker delivers to its andon route. It scrapes the workers'
  // ops ports (each worker its own: /metrics, /healthz, /readyz).
  const consoleUrl = `http://127.0.0.1:${consolePort}/`;
  const consoleChild = startChild('console', 'services/console/src/main.ts', [], {
    ...env,
    CONSOLE_PORT: String(consolePort),
    // One machine: the page stays on loopback unless CONSOLE_HOST says otherwise (it has no login).
    CONSOLE_HOST: process.env.CONSOLE_HOST ?? '127.0.0.1',
    CONSOLE_WORKERS: process.env.CONSOLE_WORKERS ?? `vision=http://127.0.0.1:${ports.vision},sensor=http://127.0.0.1:${ports.sensor},actions=http://127.0.0.1:${ports.actions}`,
  });
  children.push(consoleChild);
  await waitFor(
    async () => {
      if (consoleChild.proc.exitCode !== null) throw new AbortWait(`the console exited (code ${consoleChild.proc.exitCode}); is port ${consolePort} free? Set CONSOLE_PORT`);
      const r = await fetch(`${consoleUrl}healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      return r?.ok === true;
    },
    { what: `the console answering on ${consoleUrl}`, timeoutMs: 30_000, intervalMs: 200 },
  ).catch(async (err: unknown) => {
    for (const c of children) await stopChild(c, 5_000);
    await monitor.disconnect().catch(() => undefined);
    await stack.stopStarted();
    throw err;
  });
  const routes =
    process.env.ACTIONS_ROUTES !== undefined || process.env.ACTIONS_ROUTES_FILE !== undefined
      ? {}
      : { ACTIONS_ROUTES: JSON.stringify([{ name: 'andon', url: `${consoleUrl}api/andon`, events: ['defect', 'alert'], attempts: 5 }]) };
  children.push(startChild('actions-worker', 'services/actions-worker/src/main.ts', [], { ...env, ...routes, METRICS_PORT: ports.actions }));
  children.push(startChild('vision-worker', 'services/vision-worker/src/main.ts', [], { ...env, METRICS_PORT: ports.vision }));
  children.push(startChild('sensor-worker', 'services/sensor-worker/src/main.ts', [], { ...env, METRICS_PORT: ports.sensor }));
  const sensorArgs = ['--assets', String(assets), '--sensor-format', 'chunk', '--chunk-size', String(CHUNK), '--reading-rate', String(assets), '--anomaly-rate', '0.05'];
  children.push(
    startChild('gateway-sim', 'services/gateway-sim/src/main.ts', ['--frame-rate', String(frameRate), '--lines', '2', '--cameras', '3', ...sensorArgs, '--duration', '24h'], env),
  );
  log(`fleet: console, actions-worker, vision-worker, sensor-worker and gateway-sim (${frameRate} frames/s, ${assets} pumps at ${assets * CHUNK} samples/s) running against kafka ${stack.kafkaBrokers.join(',')}; Ctrl-C stops everything`);
  log(`console: ${consoleUrl}  (live page; JSON at ${consoleUrl}api/snapshot)`);

  const ticker = setInterval(() => {
    const l = [...window.latencies].sort((a, b) => a - b);
    const p = (q: number) => (l.length === 0 ? '-' : `${l[Math.min(l.length - 1, Math.floor(q * l.length))]} ms`);
    const at = new Date().toISOString().slice(11, 19);
    log(`${at}  vision  frames/s ${(window.frames / intervalS).toFixed(1)}  defects ${window.defects} (total ${totals.defects} of ${totals.frames})  latency p50 ${p(0.5)} p99 ${p(0.99)}`);
    log(`${at}  sensor  readings/s ${(window.samples / intervalS).toFixed(1)}  windows/s ${(window.windows / intervalS).toFixed(1)}  open alerts ${openAlerts.size}`);
    Object.assign(window, { frames: 0, defects: 0, latencies: [], samples: 0, windows: 0 });
  }, intervalS * 1000);

  const shutdown = async () => {
    stopping = true;
    clearInterval(ticker);
    // Reverse start order: the simulator first, the console (which the actions worker delivers to) last.
    for (const c of [...children].reverse()) await stopChild(c, 35_000);
    await monitor.disconnect().catch(() => undefined);
    if (stack.startedKafka || stack.startedRedis) log('stack: stopping what npm start started');
    await stack.stopStarted();
  };

  const finished = new Promise<void>((resolve) => {
    handleShutdownSignals({
      onStop: () => {
        log('stopping (Ctrl-C again to kill at once) ...');
        void shutdown().then(resolve);
      },
      onForce: () => {
        for (const c of children) c.proc.kill('SIGKILL');
        process.exit(130);
      },
    });
    for (const c of children) {
      void c.exited.then((code) => {
        if (stopping) return;
        log(`${c.name} exited on its own (exit ${code}); stopping the rest`);
        exitCode = 1;
        void shutdown().then(resolve);
      });
    }
  });
  await finished;
  return exitCode;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof StackError ? `npm start: ${err.message}` : err);
    process.exitCode = 1;
  },
);
