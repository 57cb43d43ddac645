import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { createTestStackDir, distinctFreePorts } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `npm start` as a newcomer runs it, on a stack of its own (free ports, its own state folder):
 * it prints the console's address and live lines, the console shows data from every worker and
 * the andon deliveries of the actions worker, and Ctrl-C (SIGINT to the terminal's process group)
 * stops everything it started, the broker and Redis included: it exits 0, every port it used is
 * free again and no process of its state folder is left.
 */
const repoRoot = new URL('../../', import.meta.url).pathname;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1' }, () => s.close(() => resolve(true)));
  });
}

function processesMentioning(text: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', text], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim() && !l.includes('pgrep'));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

interface Snapshot {
  counters: { inspections: number; scores: number };
  fleet: { name: string; state: string; consumed: number }[];
  andon: { received: number };
}

test('npm start: the fleet and the console come up with live data, Ctrl-C stops every process and frees every port', { timeout: 240_000 }, async () => {
  const dir = await createTestStackDir();
  const ports = await distinctFreePorts(7);
  const [kafka, controller, redis, consolePort, vision, sensor, actions] = ports as [number, number, number, number, number, number, number];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_BROKERS: '',
    REDIS_URL: '',
    STACK_DIR: `${dir}/stack`,
    KAFKA_PORT: String(kafka),
    KAFKA_CONTROLLER_PORT: String(controller),
    REDIS_PORT: String(redis),
    CONSOLE_PORT: String(consolePort),
    VISION_METRICS_PORT: String(vision),
    SENSOR_METRICS_PORT: String(sensor),
    ACTIONS_METRICS_PORT: String(actions),
    START_INTERVAL_S: '2',
  };
  // Its own process group, as in a terminal: Ctrl-C is SIGINT to the whole group.
  const child = spawn('npm', ['start'], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? String(code))));
  try {
    const url = await waitFor(() => /console: (http:\/\/\S+\/)/.exec(out)?.[1], { what: "npm start to print the console's address", timeoutMs: 120_000, intervalMs: 200 });
    assert.equal(url, `http://127.0.0.1:${consolePort}/`);
    // Live lines with frames and windows flowing.
    await waitFor(() => /vision {2}frames\/s [1-9]/.test(out) && /windows\/s [1-9]/.test(out), { what: 'live lines with frames/s and windows/s above 0', timeoutMs: 90_000, intervalMs: 200 });
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const snap = await waitFor(
      async () => {
        const s = (await (await fetch(`${url}api/snapshot`)).json()) as Snapshot;
        const running = new Set(s.fleet.filter((w) => w.state === 'running' && w.consumed > 0).map((w) => w.name));
        return s.counters.inspections > 0 && s.counters.scores > 0 && ['vision', 'sensor', 'actions'].every((n) => running.has(n)) && s.andon.received > 0 && s;
      },
      { what: 'the console to show inspections, scores, three running workers and andon deliveries', timeoutMs: 90_000, intervalMs: 500 },
    );
    assert.ok(snap.counters.inspections > 0);
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT');
  }
  // npm itself may end on the SIGINT (as in a terminal) while the launcher, which handles it,
  // goes on stopping what it started: wait for that, and then for nothing to be left.
  const how = await exited;
  assert.ok(['0', '130', 'SIGINT'].includes(how), `npm start ended with ${how}\n${out.slice(-3000)}`);
  await waitFor(() => /stack: kafka: stopped/.test(out), { what: 'npm start to stop the broker it started', timeoutMs: 90_000, intervalMs: 200 });
  await waitFor(async () => processesMentioning(`${dir}/stack`).length === 0 && (await Promise.all(ports.map(portFree))).every(Boolean), {
    what: 'every process gone and every port free',
    timeoutMs: 30_000,
    intervalMs: 200,
  }).catch((err: unknown) => {
    process.kill(-child.pid!, 'SIGKILL');
    throw err;
  });
  assert.match(out, /console: stopped \(exit 0\)/);
  for (const name of ['gateway-sim', 'vision-worker', 'sensor-worker', 'actions-worker']) assert.match(out, new RegExp(`${name}: stopped \\(exit 0\\)`));
  await rm(dir, { recursive: true, force: true });
});
