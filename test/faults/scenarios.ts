/**
 * The fault scenarios. Each one: fresh topics and groups, the fleet's workers started and in
 * their groups, the first half of a known input produced, and once the workers are part way
 * through it, the fault, during or after which the rest is produced. Then the workers must catch
 * up by themselves, and a read_committed consumer tallies every result and dead letter against
 * the input (see fleet.ts).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Message } from 'kafkajs';
import { waitFor } from '../../deploy/local/processes.js';
import { interleave, scenarioInputs, type Fleet, type InputSize, type ScenarioRun, type Tally, type WorkerExit } from './fleet.js';

export const SCENARIO_NAMES = ['sigkill', 'sigterm', 'redis-outage', 'broker-restart', 'resend-storm', 'poison'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** How long Redis and the broker stay down in their scenarios. */
export const OUTAGE_MS = 10_000;

export interface ScenarioReport {
  scenario: ScenarioName;
  inputs: number;
  results: number;
  deadLettered: number;
  lost: number;
  duplicated: number;
  /** Poison records without exactly one dead letter, plus dead letters of valid records. */
  misrouted: number;
  /** Workers that exited without being told to (each one restarted, as an orchestrator would). */
  crashes: number;
  /** Graceful stops (SIGTERM) that did not exit 0, or lacked a lifecycle state. */
  badStops: number;
  /** From the end of the fault until the groups had committed every input record. */
  recoverMs: number;
  /** Outage scenarios: workers that did not report not-ready during the outage, or ready again after it. */
  readinessMisses: number;
  vision: Tally;
  sensor: Tally;
  notes: string[];
}

interface Ctx {
  fleet: Fleet;
  run: ScenarioRun;
  /** Produces the second half of the input. */
  produceRest: () => Promise<void>;
  inputs: { frames: Message[]; readings: Message[] };
  notes: string[];
  badStops: number;
  readinessMisses: number;
}

/** During an outage every worker must say it is not ready (and stay alive); after it, ready again. */
async function checkNotReady(c: Ctx, what: string): Promise<void> {
  const took = await c.run.waitReadiness(false, OUTAGE_MS - 2000);
  if (took === undefined) c.readinessMisses += 1;
  c.notes.push(took === undefined ? `some worker still reported ready ${(OUTAGE_MS - 2000) / 1000} s into the ${what} outage` : `every worker reported not ready ${(took / 1000).toFixed(1)} s into the ${what} outage`);
}

/** What each scenario does once the workers are part way through the first half. Resolves when the fault is over. */
const INJECT: Record<ScenarioName, (c: Ctx) => Promise<void>> = {
  async sigkill(c) {
    await c.produceRest();
    for (const kind of ['vision', 'sensor'] as const) {
      const w = c.run.workersOf(kind)[0]!;
      await w.signal('SIGKILL');
      w.start();
    }
    await c.run.waitMembers();
  },
  async sigterm(c) {
    await c.produceRest();
    const stopped = await Promise.all((['vision', 'sensor'] as const).map((kind) => c.run.workersOf(kind)[0]!).map(async (w) => ({ w, exit: await w.signal('SIGTERM') })));
    for (const { w, exit } of stopped) {
      const states = await lifecycleStates(c.fleet.options.logDir, w.name);
      const want = ['starting -> running', 'running -> draining', 'draining -> stopped'];
      const ok = exit.code === 0 && want.every((s) => states.includes(s));
      if (!ok) c.badStops += 1;
      c.notes.push(`${w.name}: exit ${exit.code ?? exit.signal}, states ${states.join(', ')}`);
      // A rolling restart: the replacement takes its partitions back.
      w.start();
    }
    await c.run.waitMembers();
  },
  async 'redis-outage'(c) {
    await c.fleet.stopRedis();
    const down = Date.now();
    await c.produceRest();
    await checkNotReady(c, 'Redis');
    await delay(Math.max(0, OUTAGE_MS - (Date.now() - down)));
    const alive = c.run.workers.filter((w) => w.alive).length;
    c.notes.push(`${alive}/${c.run.workers.length} workers alive after ${OUTAGE_MS / 1000} s without Redis`);
    await c.fleet.startRedis();
  },
  async 'broker-restart'(c) {
    await c.fleet.stopKafka();
    const down = Date.now();
    await checkNotReady(c, 'broker');
    await delay(Math.max(0, OUTAGE_MS - (Date.now() - down)));
    const alive = c.run.workers.filter((w) => w.alive).length;
    c.notes.push(`${alive}/${c.run.workers.length} workers alive after ${OUTAGE_MS / 1000} s without the broker`);
    await c.fleet.startKafka();
    await c.produceRest();
  },
  async 'resend-storm'(c) {
    await c.produceRest();
    await c.run.waitCaughtUp(180_000);
    // Every valid record again, three times over, at new offsets: all of them must be dropped.
    for (let i = 0; i < 3; i++) {
      await c.run.produce(c.run.vision.frames, c.inputs.frames);
      await c.run.produce(c.run.sensor.readings, c.inputs.readings);
    }
    c.notes.push(`re-sent ${3 * (c.inputs.frames.length + c.inputs.readings.length)} records`);
  },
  async poison(c) {
    await c.produceRest();
  },
};

/** The `state a -> b` transitions a worker logged (pino JSON lines with `from` and `to`). */
async function lifecycleStates(dir: string, worker: string): Promise<string[]> {
  const text = await readFile(join(dir, `${worker}.log`), 'utf8').catch(() => '');
  const states: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { from?: string; to?: string };
      if (typeof o.from === 'string' && typeof o.to === 'string') states.push(`${o.from} -> ${o.to}`);
    } catch {
      // a line that is not JSON (tsx or node warnings)
    }
  }
  return states;
}

export async function runScenario(fleet: Fleet, scenario: ScenarioName, size: InputSize): Promise<ScenarioReport> {
  const log = fleet.options.log;
  const run = await fleet.newRun(scenario);
  try {
    const inputs = await scenarioInputs(run.id, size, scenario === 'poison');
    const frames = interleave(inputs.frames, inputs.poisonFrames);
    const readings = interleave(inputs.readings, inputs.poisonReadings);
    const half = <T>(xs: T[]) => [xs.slice(0, Math.ceil(xs.length / 2)), xs.slice(Math.ceil(xs.length / 2))] as const;
    const [frames1, frames2] = half(frames);
    const [readings1, readings2] = half(readings);
    log(`${scenario}: ${run.workers.length} workers up; producing ${frames.length} frames and ${readings.length} sensor chunks`);
    await run.produce(run.vision.frames, frames1);
    await run.produce(run.sensor.readings, readings1);
    // The fault lands while the workers are part way through the stream.
    const firstHalf = frames1.length + readings1.length;
    await waitFor(async () => (await run.committed()) >= firstHalf / 4, { what: 'a quarter of the first half committed', timeoutMs: 180_000, intervalMs: 100 });
    const ctx: Ctx = {
      fleet,
      run,
      produceRest: async () => {
        await run.produce(run.vision.frames, frames2);
        await run.produce(run.sensor.readings, readings2);
      },
      inputs: { frames: inputs.frames, readings: inputs.readings },
      notes: [],
      badStops: 0,
      readinessMisses: 0,
    };
    log(`${scenario}: injecting the fault`);
    await INJECT[scenario](ctx);
    const faultEnd = Date.now();
    await run.waitCaughtUp(240_000);
    const recoverMs = Date.now() - faultEnd;
    if (scenario === 'redis-outage' || scenario === 'broker-restart') {
      const took = await run.waitReadiness(true, 30_000);
      if (took === undefined) ctx.readinessMisses += 1;
      ctx.notes.push(took === undefined ? 'some worker did not report ready again within 30 s of catching up' : 'every worker ready again');
    }
    log(`${scenario}: caught up ${(recoverMs / 1000).toFixed(1)} s after the fault; stopping the workers`);
    const exits: WorkerExit[] = await run.stopAll();
    const badExits = exits.filter((e) => e.code !== 0);
    for (const e of badExits) ctx.notes.push(`${e.name}: final stop exited ${e.code ?? e.signal}`);
    const { vision, sensor } = await run.tally(inputs);
    return {
      scenario,
      inputs: vision.inputs + sensor.inputs,
      results: vision.results + sensor.results,
      deadLettered: vision.deadLettered + sensor.deadLettered,
      lost: vision.lost + sensor.lost,
      duplicated: vision.duplicated + sensor.duplicated,
      misrouted: vision.poisonMisses + sensor.poisonMisses + vision.wrongDeadLetters + sensor.wrongDeadLetters,
      crashes: run.unexpectedExits.length,
      badStops: ctx.badStops + badExits.length,
      recoverMs,
      readinessMisses: ctx.readinessMisses,
      vision,
      sensor,
      notes: ctx.notes,
    };
  } catch (err) {
    run.killAll();
    throw err;
  }
}

/** The suite's table: one row per scenario. */
export function formatTable(reports: ScenarioReport[]): string {
  const head = ['scenario', 'inputs', 'results', 'dead-lettered', 'lost', 'duplicated', 'misrouted', 'crashes', 'bad stops', 'readiness misses', 'recover s'];
  const rows = reports.map((r) => [
    r.scenario,
    String(r.inputs),
    String(r.results),
    String(r.deadLettered),
    String(r.lost),
    String(r.duplicated),
    String(r.misrouted),
    String(r.crashes),
    String(r.badStops),
    String(r.readinessMisses),
    (r.recoverMs / 1000).toFixed(1),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
