/**
 * `npm run test:faults [-- --scenarios a,b --frames N --assets N --chunks N --vision-workers N --sensor-workers N]`
 *
 * The full fault suite: its own broker and Redis on free ports, two vision and two sensor worker
 * processes per scenario, every scenario of scenarios.ts in turn. Prints a table (scenario,
 * inputs, results, dead-lettered, lost, duplicated, misrouted poison, crashes, bad graceful stops,
 * time to recover) and, as its last line, one JSON object with the totals. Exit code 1 when any
 * scenario lost, doubled or misrouted a record, or a worker crashed or stopped badly.
 * (`npm test` runs a reduced version: test/integration/faults.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain } from '../../shared/src/lifecycle/run-main.js';
import { createTestStackDir } from '../helpers/stack.js';
import { Fleet } from './fleet.js';
import { SCENARIO_NAMES, formatTable, runScenario, type ScenarioName, type ScenarioReport } from './scenarios.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string', default: SCENARIO_NAMES.join(',') },
      frames: { type: 'string', default: '400' },
      cameras: { type: 'string', default: '4' },
      assets: { type: 'string', default: '8' },
      chunks: { type: 'string', default: '24' },
      'vision-workers': { type: 'string', default: '2' },
      'sensor-workers': { type: 'string', default: '2' },
      'keep-logs': { type: 'boolean', default: false },
    },
  });
  const scenarios = values.scenarios.split(',').map((s) => s.trim());
  const unknown = scenarios.filter((s) => !(SCENARIO_NAMES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    console.error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIO_NAMES.join(', ')}`);
    return 2;
  }
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
  const size = { frames: int('frames', values.frames), cameras: int('cameras', values.cameras), assets: int('assets', values.assets), chunksPerAsset: int('chunks', values.chunks) };
  const dir = await createTestStackDir();
  const logDir = await mkdtemp(join(tmpdir(), 'fleet-faults-logs-'));
  const log = (line: string) => console.error(line);
  log(`fault suite: worker logs in ${logDir}`);
  const fleet = new Fleet({ dir, logDir, visionWorkers: int('vision-workers', values['vision-workers']), sensorWorkers: int('sensor-workers', values['sensor-workers']), log });
  const reports: ScenarioReport[] = [];
  let failed = false;
  try {
    await fleet.start();
    for (const s of scenarios as ScenarioName[]) {
      const r = await runScenario(fleet, s, size);
      reports.push(r);
      for (const note of r.notes) log(`  ${s}: ${note}`);
      log(`  ${s}: vision dead letters by reason ${JSON.stringify(r.vision.reasons)}, sensor ${JSON.stringify(r.sensor.reasons)}`);
    }
  } catch (err) {
    failed = true;
    log(`fault suite failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await fleet.close();
  }
  console.log(formatTable(reports));
  const sum = (f: (r: ScenarioReport) => number) => reports.reduce((a, r) => a + f(r), 0);
  const totals = {
    scenarios: reports.length,
    inputs: sum((r) => r.inputs),
    lost: sum((r) => r.lost),
    duplicated: sum((r) => r.duplicated),
    misrouted: sum((r) => r.misrouted),
    crashes: sum((r) => r.crashes),
    badStops: sum((r) => r.badStops),
    readinessMisses: sum((r) => r.readinessMisses),
    recoverMsMax: Math.max(0, ...reports.map((r) => r.recoverMs)),
    complete: !failed && reports.length === scenarios.length,
  };
  const ok = totals.complete && totals.lost === 0 && totals.duplicated === 0 && totals.misrouted === 0 && totals.crashes === 0 && totals.badStops === 0 && totals.readinessMisses === 0;
  await rm(dir, { recursive: true, force: true });
  if (ok && !values['keep-logs']) await rm(logDir, { recursive: true, force: true });
  else log(`worker logs kept in ${logDir}`);
  console.log(JSON.stringify(totals));
  return ok ? 0 : 1;
}

runMain('test:faults', main);
