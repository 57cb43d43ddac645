import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createAlertMachine, type AlertTransition, type ScoredWindow } from '../../shared/src/anomaly/alerts.js';
import { SnapshotError } from '../../shared/src/anomaly/snapshot.js';

const T0 = 1_764_000_000_000;
const W = 6400;
/** Window n of asset pump-7: anomalous when the flag is 1. */
const win = (n: number, anomalous: boolean | number): ScoredWindow => ({
  windowId: `pump-7@${T0 + n * W}`,
  windowStart: T0 + n * W,
  windowEnd: T0 + (n + 1) * W,
  anomalous: Boolean(anomalous),
});
const make = (o = {}) => createAlertMachine({ assetId: 'pump-7', raiseAfter: 3, raiseWindows: 5, clearAfter: 2, ...o });
/** Applies flags as windows 0, 1, ...; returns [window index, transition] pairs. */
function run(m: ReturnType<typeof make>, flags: number[], first = 0): [number, AlertTransition][] {
  const out: [number, AlertTransition][] = [];
  flags.forEach((f, i) => {
    const r = m.apply(win(first + i, f));
    if (r.applied && r.transition) out.push([first + i, r.transition]);
  });
  return out;
}

describe('sensor alerts: k of n raise, m clear', () => {
  test('raises on the window that makes 3 of the last 5 anomalous, with its id', () => {
    const m = make();
    const t = run(m, [0, 1, 0, 0, 1, 1]);
    assert.deepEqual(t, [[5, { state: 'raised', alertId: `pump-7@${T0 + 5 * W}`, windowId: `pump-7@${T0 + 5 * W}`, at: T0 + 6 * W }]]);
    assert.equal(m.raised(), `pump-7@${T0 + 5 * W}`);
  });

  test('anomalies spread wider than n windows never raise', () => {
    assert.deepEqual(run(make(), [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]), []);
  });

  test('clears after m consecutive normal windows, with the raise id; an anomaly restarts the count', () => {
    const m = make();
    const t = run(m, [1, 1, 1, 0, 1, 0, 0, 0]);
    assert.deepEqual(t.map(([i, x]) => [i, x.state, x.alertId]), [
      [2, 'raised', `pump-7@${T0 + 2 * W}`],
      [6, 'cleared', `pump-7@${T0 + 2 * W}`],
    ]);
    assert.equal(t[1]![1].at, T0 + 7 * W);
    assert.equal(m.raised(), null);
  });

  test('after a clear, a new alert needs k fresh anomalous windows', () => {
    const t = run(make(), [1, 1, 1, 0, 0, 1, 1, 1]);
    assert.deepEqual(t.map(([i, x]) => [i, x.state]), [[2, 'raised'], [4, 'cleared'], [7, 'raised']]);
    assert.equal(t[2]![1].alertId, `pump-7@${T0 + 7 * W}`);
  });

  test('k = n = m = 1 follows every window', () => {
    const t = run(make({ raiseAfter: 1, raiseWindows: 1, clearAfter: 1 }), [1, 0, 1, 1, 0]);
    assert.deepEqual(t.map(([i, x]) => [i, x.state]), [[0, 'raised'], [1, 'cleared'], [2, 'raised'], [4, 'cleared']]);
  });

  test('bad settings fail fast', () => {
    assert.throws(() => make({ raiseAfter: 6 }), /raiseAfter \(6\) must be at most raiseWindows/);
    assert.throws(() => make({ clearAfter: 0 }), /clearAfter/);
    assert.throws(() => make({ raiseWindows: 1.5 }), /raiseWindows/);
  });
});

describe('sensor alerts: idempotence and snapshots', () => {
  test('a window at or before the last applied one is ignored', () => {
    const m = make();
    run(m, [1, 1]);
    assert.deepEqual(m.apply(win(1, 1)), { applied: false });
    assert.deepEqual(m.apply(win(0, 1)), { applied: false });
    assert.equal(m.raised(), null, 'the replayed anomalies did not count');
    assert.equal(run(m, [1], 2).length, 1);
  });

  test('the snapshot is plain JSON and a restore carries on exactly', () => {
    const m = make();
    run(m, [1, 0, 1]);
    const snap = JSON.parse(JSON.stringify(m.snapshot())) as unknown;
    assert.deepEqual(snap, m.snapshot());
    const b = make();
    b.restore(snap);
    assert.deepEqual(run(b, [1, 0, 0], 3), run(m, [1, 0, 0], 3));
  });

  test('restore at any point, then a replay from any earlier window, emits each transition once (seeded random)', () => {
    let seed = 99;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let round = 0; round < 20; round++) {
      const flags = Array.from({ length: 80 }, () => (rand() < 0.35 ? 1 : 0));
      const whole = run(make(), flags);
      assert.ok(whole.length >= 2, 'the stream raises and clears');
      for (let cut = 0; cut <= flags.length; cut++) {
        const a = make();
        const head = run(a, flags.slice(0, cut));
        const b = make();
        b.restore(JSON.parse(JSON.stringify(a.snapshot())));
        const from = Math.floor(rand() * (cut + 1)); // the consumer resumes from an older offset
        const tail = run(b, flags.slice(from), from);
        assert.deepEqual([...head, ...tail], whole, `cut ${cut}, replay from ${from}`);
      }
    }
  });

  test('a snapshot for another asset, other settings or a broken one is refused', () => {
    const snap = make().snapshot();
    assert.throws(() => make({ clearAfter: 3 }).restore(snap), SnapshotError);
    assert.throws(() => createAlertMachine({ assetId: 'pump-8', raiseAfter: 3, raiseWindows: 5, clearAfter: 2 }).restore(snap), SnapshotError);
    assert.throws(() => make().restore({ ...snap, recent: [1, 1, 1, 1, 1, 1] }), SnapshotError);
    assert.throws(() => make().restore({ ...snap, alertId: 'pump-8@1' }), SnapshotError);
    assert.throws(() => make().restore(null), SnapshotError);
  });
});
