import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Fleet } from '../faults/fleet.js';
import { SCENARIO_NAMES, formatTable, runScenario, type ScenarioReport } from '../faults/scenarios.js';
import { createTestStackDir } from '../helpers/stack.js';

/**
 * The fault suite, reduced (`npm run test:faults` is the full one, with more input): its own
 * broker and Redis, two vision and two sensor worker processes, and every scenario (SIGKILL and
 * restart, SIGTERM under load, Redis down 10 s, broker restarted, a re-send storm, poison mixed
 * in). After each, a read_committed reader finds every valid input's result exactly once, every
 * poison record dead-lettered exactly once, no worker crashed, every graceful stop exited 0
 * through draining, and readiness followed the outages.
 */
const SIZE = { frames: 80, cameras: 4, assets: 4, chunksPerAsset: 8 };
let dir: string;
let logDir: string;
let fleet: Fleet;
const reports: ScenarioReport[] = [];

before(async () => {
  dir = await createTestStackDir();
  logDir = await mkdtemp(join(tmpdir(), 'fleet-faults-logs-'));
  fleet = new Fleet({ dir, logDir, visionWorkers: 2, sensorWorkers: 2, log: (line) => console.error(`[faults] ${line}`) });
  await fleet.start();
});

after(async () => {
  await fleet.close();
  console.error(formatTable(reports));
  await rm(dir, { recursive: true, force: true });
  // Worker logs stay for a failed run (the path is in the assertion message).
  if (reports.length === SCENARIO_NAMES.length && reports.every(clean)) await rm(logDir, { recursive: true, force: true });
});

function clean(r: ScenarioReport): boolean {
  return r.lost + r.duplicated + r.misrouted + r.crashes + r.badStops + r.readinessMisses === 0;
}

for (const scenario of SCENARIO_NAMES) {
  test(`fault: ${scenario} loses, doubles and misroutes nothing`, async () => {
    const r = await runScenario(fleet, scenario, SIZE);
    reports.push(r);
    assert.deepEqual(
      { lost: r.lost, duplicated: r.duplicated, misrouted: r.misrouted, crashes: r.crashes, badStops: r.badStops, readinessMisses: r.readinessMisses },
      { lost: 0, duplicated: 0, misrouted: 0, crashes: 0, badStops: 0, readinessMisses: 0 },
      `${scenario}: ${r.notes.join('; ')} (worker logs in ${logDir})`,
    );
    // The tally is not vacuous: every valid input produced a result and poison was dead-lettered.
    assert.ok(r.results > 0 && r.vision.results > 0 && r.sensor.results > 0);
    if (scenario === 'poison') assert.ok(r.vision.deadLettered >= 10 && r.sensor.deadLettered >= 10, `poison dead-lettered: ${r.deadLettered}`);
  });
}
