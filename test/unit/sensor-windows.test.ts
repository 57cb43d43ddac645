import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SampleBlock, SampleRow } from '../../services/sensor-worker/src/stages/samples.js';
import { createWindower, type SensorWindow, type WindowerOptions } from '../../services/sensor-worker/src/stages/windows.js';
import { SnapshotError } from '../../shared/src/anomaly/snapshot.js';

const T0 = 1_764_000_000_000;
const P = 100;
/** Sample at grid index i; channel 0 holds i, channel 1 a tag telling copies apart. */
const row = (i: number, tag = 0, jitter = 0): SampleRow => ({ ts: T0 + i * P + jitter, values: Float64Array.of(i, tag) });
const make = (o: Partial<WindowerOptions> = {}) =>
  createWindower({ assetId: 'pump-7', channels: 2, size: 4, hop: 4, periodMs: P, allowedLatenessMs: 0, maxGapMs: 300, ...o });
const startOf = (w: SensorWindow) => (w.windowStart - T0) / P;
/** Channel 0 of each row of a window. */
const col0 = (w: SensorWindow) => [...w.values].filter((_, i) => i % 2 === 0);
function feed(w: ReturnType<typeof make>, idx: number[]): SensorWindow[] {
  return idx.flatMap((i) => w.push(row(i)).windows);
}

describe('sensor windows: the grid and the hop', () => {
  test('hop = size tiles the stream; each window is emitted by the sample that completes it', () => {
    const w = make();
    const out: [number, number[]][] = [];
    for (let i = 0; i < 12; i++) for (const win of w.push(row(i)).windows) out.push([i, col0(win)]);
    assert.deepEqual(out, [[3, [0, 1, 2, 3]], [7, [4, 5, 6, 7]], [11, [8, 9, 10, 11]]]);
  });

  test('ids, bounds and flags follow the AnomalyScore contract', () => {
    const [first] = feed(make(), [0, 1, 2, 3]);
    assert.ok(first);
    assert.equal(first.windowId, `pump-7@${T0}`);
    assert.equal(first.windowStart, T0);
    assert.equal(first.windowEnd, T0 + 4 * P, 'exclusive: just after the last sample');
    assert.equal(first.afterGap, false);
    assert.equal(first.filled, 0);
    assert.deepEqual([...first.values], [0, 0, 1, 0, 2, 0, 3, 0], 'row-major, size x channels');
  });

  test('hop < size overlaps: a window every hop samples once the first is full', () => {
    const ws = feed(make({ size: 4, hop: 2 }), [...Array(10).keys()]);
    assert.deepEqual(ws.map(startOf), [0, 2, 4, 6]);
    assert.deepEqual(ws.map(col0)[1], [2, 3, 4, 5]);
  });

  test('hop 1 slides by one sample; hop > size skips samples between windows', () => {
    assert.deepEqual(feed(make({ size: 3, hop: 1 }), [0, 1, 2, 3, 4]).map(startOf), [0, 1, 2]);
    assert.deepEqual(feed(make({ size: 2, hop: 3 }), [...Array(9).keys()]).map(startOf), [0, 3, 6]);
  });

  test('jittered timestamps snap to the grid anchored at the first sample', () => {
    const w = make();
    const ws = [0, 1, 2, 3].flatMap((i) => w.push(row(i, 0, i === 0 ? 0 : [0, 49, -49, 30][i]!)).windows);
    assert.equal(ws.length, 1);
    assert.equal(ws[0]!.windowStart, T0);
    assert.equal(ws[0]!.windowEnd, T0 + 400);
  });

  test('with gridOriginMs the grid is fixed, whatever the first sample', () => {
    const w = make({ gridOriginMs: 0 });
    const ws = [0, 1, 2, 3].flatMap((i) => w.push(row(i, 0, i === 0 ? 45 : -45)).windows);
    assert.deepEqual(ws.map((x) => x.windowStart), [T0]);
    assert.throws(() => make({ gridOriginMs: 0.5 }), /gridOriginMs/);
  });

  test('a chunk spanning several windows gives them all, in order', () => {
    const w = make({ size: 8, hop: 4 });
    const r = w.pushAll(Array.from({ length: 20 }, (_, i) => row(i)));
    assert.deepEqual(r.windows.map(startOf), [0, 4, 8, 12]);
    assert.deepEqual([r.late.length, r.duplicates], [0, 0]);
    const again = w.pushAll([row(20), row(3), row(21), row(21, 1)]);
    assert.deepEqual(again.late.map((l) => [l.index, l.violation.reason]), [[1, 'late']]);
    assert.equal(again.duplicates, 1);
  });
});

describe('sensor windows: lateness and duplicates', () => {
  test('out of order within the lateness gives the same windows as in order, in event-time order', () => {
    const inOrder = feed(make({ allowedLatenessMs: 300, size: 4, hop: 2 }), [...Array(12).keys()]);
    const shuffled = feed(make({ allowedLatenessMs: 300, size: 4, hop: 2 }), [1, 0, 3, 2, 5, 6, 4, 8, 9, 10, 7, 11]);
    assert.deepEqual(shuffled, inOrder);
  });

  test('a missing sample holds its windows back until it arrives, then they all come out', () => {
    const w = make({ allowedLatenessMs: 500, maxGapMs: 1000 });
    assert.deepEqual(feed(w, [0, 1, 2, 4, 5, 6, 7]), []);
    assert.deepEqual(feed(w, [3]).map(startOf), [0, 4]);
  });

  test('a sample older than watermark - lateness is late, with a violation to dead-letter it', () => {
    const w = make({ allowedLatenessMs: 200 });
    feed(w, [0, 1, 2, 3, 4, 5, 6, 7, 9, 10]);
    assert.equal(w.push(row(8)).status, 'accepted', 'exactly at the lateness bound');
    const r = w.push(row(7, 1));
    assert.equal(r.status, 'late');
    assert.ok(r.status === 'late');
    assert.deepEqual([r.violation.reason, r.violation.field], ['late', 'ts']);
    assert.equal(w.stats().late, 1);
  });

  test('a sample that never arrives is held over once it is past the lateness', () => {
    const w = make({ allowedLatenessMs: 200, maxGapMs: 1000 });
    feed(w, [0, 1, 3, 4]);
    const [win] = feed(w, [5]); // watermark 5: index 2 can no longer arrive
    assert.ok(win);
    assert.deepEqual(col0(win), [0, 1, 1, 3]);
    assert.equal(win.filled, 1);
    assert.equal(w.push(row(2)).status, 'late');
  });

  test('duplicate timestamps keep the first sample, pending or already windowed', () => {
    const w = make({ allowedLatenessMs: 1000 });
    assert.equal(w.push(row(0, 1)).status, 'accepted');
    assert.equal(w.push(row(0, 2)).status, 'duplicate');
    assert.equal(w.push(row(1, 1, 20)).status, 'accepted');
    assert.equal(w.push(row(1, 2, -20)).status, 'duplicate', 'snaps onto the same grid point');
    // The first window waits for the lateness: a sample before the first one may still come.
    assert.deepEqual(feed(w, [2, 3, 4, 5, 6, 7, 8, 9]), []);
    const [win] = feed(w, [10]);
    assert.ok(win);
    assert.deepEqual([...win.values].filter((_, i) => i % 2 === 1), [1, 1, 0, 0]);
    assert.equal(w.push(row(2, 9)).status, 'duplicate', 'already in a window, still within lateness');
    assert.equal(w.stats().duplicates, 3);
  });
});

describe('sensor windows: gaps', () => {
  test('a gap up to maxGapMs is bridged by holding the last value', () => {
    const [win] = feed(make({ maxGapMs: 300 }), [0, 1, 4]); // 1 -> 4 is 300 ms
    assert.ok(win);
    assert.deepEqual(col0(win), [0, 1, 1, 1]);
    assert.deepEqual([win.filled, win.afterGap], [2, false]);
  });

  test('a longer gap resets the window; the first window after it is flagged afterGap', () => {
    const w = make({ maxGapMs: 300 });
    const ws = feed(w, [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17]); // 5 -> 10 is 500 ms
    assert.deepEqual(ws.map(startOf), [0, 10, 14]);
    assert.deepEqual(ws.map((x) => x.afterGap), [false, true, false]);
    assert.equal(w.stats().gaps, 1);
  });

  test('a gap is seen once the watermark is past it, even before the next sample comes', () => {
    const w = make({ maxGapMs: 300, allowedLatenessMs: 200 });
    feed(w, [0, 1, 2]);
    assert.deepEqual(feed(w, [7]), []);
    // Watermark 7 - 200 ms: 3..4 are empty for good, but a sample at 5 would still be 300 ms after 2.
    assert.equal(w.stats().gaps, 0);
    assert.deepEqual(feed(w, [8]), []);
    // Watermark 8: the next sample can be at 6 at the earliest, 400 ms after 2.
    assert.equal(w.stats().gaps, 1);
    // The new segment starts at the first sample after the gap, 7.
    const ws = feed(w, [9, 10]);
    assert.deepEqual(ws.map(startOf), [7]);
    assert.equal(ws[0]!.afterGap, true);
  });

  test('memory stays within size + (lateness + maxGap) / period samples', () => {
    const o = { size: 8, hop: 2, allowedLatenessMs: 500, maxGapMs: 700 };
    const w = make(o);
    const rand = mulberry32(7);
    let i = 0;
    let most = 0;
    for (let n = 0; n < 3000; n++) {
      i += rand() < 0.1 ? 1 + Math.floor(rand() * 12) : 1;
      w.push(row(i - Math.floor(rand() * 5)));
      most = Math.max(most, w.buffered());
    }
    assert.ok(most <= 8 + 5 + 7, `buffered up to ${most}`);
  });
});

describe('sensor windows: options and snapshots', () => {
  test('bad options fail fast with the option named', () => {
    assert.throws(() => make({ maxGapMs: 50 }), /maxGapMs/);
    assert.throws(() => make({ periodMs: 0.5 }), /periodMs/);
    assert.throws(() => make({ hop: 0 }), /hop/);
    assert.throws(() => make({ allowedLatenessMs: -1 }), /allowedLatenessMs/);
  });

  test('a snapshot is plain JSON and survives a round trip', () => {
    const w = make({ allowedLatenessMs: 300, size: 4, hop: 2 });
    feed(w, [0, 2, 1, 5, 3]);
    const snap = w.snapshot();
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
    const again = make({ allowedLatenessMs: 300, size: 4, hop: 2 });
    again.restore(JSON.parse(JSON.stringify(snap)));
    assert.deepEqual(again.snapshot(), snap);
  });

  test('a snapshot of another asset, other settings or another shape is refused', () => {
    const snap = make().snapshot();
    assert.throws(() => make({ size: 8 }).restore(snap), SnapshotError);
    assert.throws(() => make({ gridOriginMs: 0 }).restore(snap), SnapshotError);
    assert.throws(() => make().restore(make({ gridOriginMs: 0 }).snapshot()), SnapshotError);
    assert.throws(() => createWindower({ assetId: 'pump-8', channels: 2, size: 4, periodMs: P, maxGapMs: 300, allowedLatenessMs: 0 }).restore(snap), SnapshotError);
    assert.throws(() => make().restore({ ...snap, tail: [[1]] }), SnapshotError);
    assert.throws(() => make().restore({ ...snap, version: 2 }), SnapshotError);
    assert.throws(() => make().restore('{}'), SnapshotError);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests: random streams (out of order within and beyond the lateness, duplicates, short
// holes, long gaps, jitter) against a reference model, and restore at every cut point.

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case { seed: number; size: number; hop: number; lag: number; maxGap: number; events: number }

/** Delivery order of a random stream, then a flush past a long gap that settles everything before it. */
function randomInput(c: Case): { rows: SampleRow[]; flushAt: number } {
  const rand = mulberry32(c.seed);
  // `at` orders delivery: each sample is delayed by up to the lateness (now and then a little more);
  // re-sends and too-late samples are delivered when the stream has moved on to `i`.
  const events: { k: number; tag: number; at: number }[] = [];
  let i = 0;
  let tag = 0;
  for (let n = 0; n < c.events; n++) {
    const r = rand();
    if (r < 0.04) i += c.maxGap + 1 + Math.floor(rand() * 4); // long gap
    else if (r < 0.12) i += 2 + Math.floor(rand() * c.maxGap); // hole, bridged
    else i += 1;
    events.push({ k: i, tag: ++tag, at: i + rand() * (c.lag + (rand() < 0.05 ? 2 : 0)) });
    if (rand() < 0.06) events.push({ k: i - Math.floor(rand() * (c.lag + 1)), tag: ++tag, at: i + 0.5 }); // re-send
    if (rand() < 0.04) events.push({ k: i - c.lag - 1 - Math.floor(rand() * 4), tag: ++tag, at: i + 0.5 }); // too late
  }
  const delivered = events
    .map((e, n) => ({ e, n }))
    .sort((a, b) => a.e.at - b.e.at || a.n - b.n)
    .map((x) => x.e);
  const flushAt = i + c.maxGap + 1;
  for (let k = flushAt; k <= flushAt + c.lag + c.size; k++) delivered.push({ k, tag: ++tag, at: k });
  // Jitter of up to +-20 ms: relative to any anchor, within half a period of the grid point.
  return { rows: delivered.map((e) => row(e.k, e.tag, Math.round((rand() - 0.5) * 40))), flushAt };
}

/** The windows the accepted samples (first per grid point) must give: segments, holds, hops. */
function reference(accepted: Map<number, Float64Array>, c: Case): { start: number; afterGap: boolean; rows: number[][]; filled: number }[] {
  const ks = [...accepted.keys()].sort((a, b) => a - b);
  const out: { start: number; afterGap: boolean; rows: number[][]; filled: number }[] = [];
  let seg: { k: number; v: number[]; filled: boolean }[] = [];
  let afterGap = false;
  const place = (k: number, v: number[], filled: boolean) => {
    seg.push({ k, v, filled });
    if (seg.length >= c.size && (seg.length - c.size) % c.hop === 0) {
      const win = seg.slice(-c.size);
      out.push({ start: win[0]!.k, afterGap, rows: win.map((x) => x.v), filled: win.filter((x) => x.filled).length });
      afterGap = false;
    }
  };
  ks.forEach((k, n) => {
    const prev = ks[n - 1];
    if (prev !== undefined && k - prev > c.maxGap) {
      seg = [];
      afterGap = true;
    } else if (prev !== undefined) {
      for (let j = prev + 1; j < k; j++) place(j, seg[seg.length - 1]!.v, true);
    }
    place(k, [...accepted.get(k)!], false);
  });
  return out;
}

const CASES: Case[] = [
  { seed: 1, size: 4, hop: 2, lag: 3, maxGap: 3, events: 160 },
  { seed: 2, size: 5, hop: 5, lag: 0, maxGap: 2, events: 160 },
  { seed: 3, size: 3, hop: 1, lag: 6, maxGap: 4, events: 140 },
  { seed: 4, size: 6, hop: 4, lag: 2, maxGap: 1, events: 160 },
  { seed: 5, size: 2, hop: 3, lag: 4, maxGap: 5, events: 140 },
];

describe('sensor windows: properties over random streams', () => {
  for (const c of CASES) {
    const opts = { size: c.size, hop: c.hop, allowedLatenessMs: c.lag * P, maxGapMs: c.maxGap * P };
    const { rows, flushAt } = randomInput(c);
    const label = `seed ${c.seed}: size ${c.size}, hop ${c.hop}, lateness ${c.lag}, max gap ${c.maxGap}`;

    // The uninterrupted run: windows per pushed sample.
    const w = make(opts);
    const results = rows.map((r) => w.push(r));
    const after = (from: number) => results.slice(from).flatMap((r) => r.windows);

    test(`${label}: late and duplicate decisions, and windows equal to the reference model`, () => {
      let wm: number | null = null;
      const accepted = new Map<number, Float64Array>();
      rows.forEach((r, n) => {
        const k = Math.round((r.ts - rows[0]!.ts) / P);
        const want = wm !== null && k < wm - c.lag ? 'late' : accepted.has(k) ? 'duplicate' : 'accepted';
        assert.equal(results[n]!.status, want, `sample ${n} at grid ${k}`);
        if (want === 'accepted') {
          accepted.set(k, r.values);
          wm = Math.max(wm ?? k, k);
        }
      });
      // Grid indices relative to the anchor, the first sample delivered (jitter included).
      const base = Math.round((rows[0]!.ts - T0) / P);
      const rel = (x: SensorWindow) => (x.windowStart - rows[0]!.ts) / P;
      const before = new Map([...accepted].filter(([k]) => k + base < flushAt));
      const got = after(0).filter((x) => rel(x) + base < flushAt);
      const want = reference(before, c);
      assert.deepEqual(
        got.map((x) => ({ start: rel(x), afterGap: x.afterGap, rows: chunkRows(x.values), filled: x.filled })),
        want,
      );
      assert.ok(got.length > 10, `only ${got.length} windows`);
      const count = (st: string) => results.filter((r) => r.status === st).length;
      assert.ok(count('late') > 0 && count('duplicate') > 0, `late ${count('late')}, duplicates ${count('duplicate')}`);
      assert.ok(got.some((x) => x.afterGap), 'the stream has gaps');
      if (c.maxGap > 1) assert.ok(got.some((x) => x.filled > 0), 'the stream has bridged holes');
    });

    test(`${label}: restore at every cut point carries on with exactly the uninterrupted windows`, () => {
      for (let cut = 0; cut <= rows.length; cut++) {
        const a = make(opts);
        rows.slice(0, cut).forEach((r) => a.push(r));
        const b = make(opts);
        b.restore(JSON.parse(JSON.stringify(a.snapshot())));
        const rest = rows.slice(cut).map((r) => b.push(r));
        assert.deepEqual(rest.flatMap((r) => r.windows), after(cut), `cut at ${cut}`);
        assert.deepEqual(rest.map((r) => r.status), results.slice(cut).map((r) => r.status), `statuses after cut ${cut}`);
      }
    });

    test(`${label}: replaying input from before the checkpoint emits nothing twice`, () => {
      for (let cut = 0; cut <= rows.length; cut += 3) {
        const a = make(opts);
        rows.slice(0, cut).forEach((r) => a.push(r));
        const snap = JSON.stringify(a.snapshot());
        const from = Math.max(0, cut - 12);
        const b = make(opts);
        b.restore(JSON.parse(snap));
        const replayed = rows.slice(from, cut).map((r) => b.push(r));
        assert.ok(replayed.every((r) => r.status !== 'accepted' && r.windows.length === 0), `replay before cut ${cut}`);
        assert.deepEqual(rows.slice(cut).flatMap((r) => b.push(r).windows), after(cut), `cut at ${cut}`);
      }
    });

    test(`${label}: a replay of the same input emits the same windows`, () => {
      const again = make(opts);
      assert.deepEqual(rows.flatMap((r) => again.push(r).windows), after(0));
    });
  }
});

describe('sensor windows: blocks', () => {
  /** Random chunks: mostly in order, sometimes re-sent, overlapping, late, after a hole or a long gap, off the grid. */
  function randomBlocks(seed: number, n: number): SampleBlock[] {
    const rand = mulberry32(seed);
    const blocks: SampleBlock[] = [];
    let next = 0;
    let tag = 0;
    for (let b = 0; b < n; b++) {
      const r = rand();
      let start = next;
      if (r < 0.05) start = next + 4 + Math.floor(rand() * 6); // long gap
      else if (r < 0.15) start = next + 1 + Math.floor(rand() * 2); // hole, bridged or not
      else if (r < 0.25) start = next - 1 - Math.floor(rand() * 10); // overlap: duplicates, or late
      const rows = 1 + Math.floor(rand() * 7);
      const values = new Float64Array(rows * 2);
      for (let i = 0; i < rows; i++) values.set([start + i, ++tag], i * 2);
      // Now and then off the grid by up to 20 ms: snapped to the nearest point.
      const jitter = rand() < 0.1 ? Math.round((rand() - 0.5) * 40) : 0;
      blocks.push({ t0: T0 + start * P + jitter, periodMs: P, rows, values });
      next = Math.max(next, start + rows);
    }
    return blocks;
  }
  const rowsOf = (b: SampleBlock): SampleRow[] =>
    Array.from({ length: b.rows }, (_, i) => ({ ts: b.t0 + i * b.periodMs, values: b.values.slice(i * 2, i * 2 + 2) }));

  for (const c of CASES) {
    test(`seed ${c.seed}: pushBlock does exactly what pushAll of the block's rows does`, () => {
      const opts = { size: c.size, hop: c.hop, allowedLatenessMs: c.lag * P, maxGapMs: c.maxGap * P };
      const byBlock = make(opts);
      const byRows = make(opts);
      const blocks = randomBlocks(c.seed, 300);
      let windows = 0;
      let late = 0;
      let duplicates = 0;
      blocks.forEach((b, n) => {
        const got = byBlock.pushBlock(b);
        const want = byRows.pushAll(rowsOf(b));
        const view = (x: typeof got) => ({ ...x, late: x.late.map((l) => ({ index: l.index, ts: l.row.ts, values: [...l.row.values], message: l.violation.message })) });
        assert.deepEqual(view(got), view(want), `block ${n}`);
        assert.deepEqual(byBlock.snapshot(), byRows.snapshot(), `state after block ${n}`);
        windows += got.windows.length;
        late += got.late.length;
        duplicates += got.duplicates;
      });
      // The streams hit every branch: windows, late rows, duplicates, holes bridged and gaps.
      const st = byBlock.stats();
      assert.ok(windows > 20 && late > 0 && duplicates > 0 && st.gaps > 0, JSON.stringify({ pushed: { windows, late, duplicates }, stats: st }));
      if (c.maxGap > 1) assert.ok(st.filled > 0, 'holes bridged');
    });
  }

  test('the block is only read: the windower copies what it keeps', () => {
    const w = make({ allowedLatenessMs: 2 * P });
    const values = Float64Array.of(0, 1, 1, 1, 2, 1, 3, 1, 5, 1);
    // Rows 0-3 go straight into the window, row 4 (after a hole) waits in pending.
    const block: SampleBlock = { t0: T0, periodMs: P, rows: 4, values: values.subarray(0, 8) };
    const [win] = w.pushBlock(block).windows;
    w.pushBlock({ t0: T0 + 5 * P, periodMs: P, rows: 1, values: values.subarray(8) });
    values.fill(-1);
    assert.deepEqual(col0(win!), [0, 1, 2, 3]);
    assert.deepEqual(w.snapshot().pending, [[5, [5, 1]]]);
  });

  test('windows of several assets keep their own values (their memory is shared slabs)', () => {
    const assets = ['pump-1', 'pump-2', 'pump-3'].map((assetId) => createWindower({ assetId, channels: 2, size: 4, hop: 4, periodMs: P, allowedLatenessMs: 0, maxGapMs: 300 }));
    const windows: { asset: number; w: SensorWindow }[] = [];
    // 3 assets x 20 windows: more than one slab, handed out in turns.
    for (let i = 0; i < 80; i++) {
      assets.forEach((a, n) => {
        for (const w of a.push({ ts: T0 + i * P, values: Float64Array.of(i, n) }).windows) windows.push({ asset: n, w });
      });
    }
    assert.equal(windows.length, 60);
    for (const { asset, w } of windows) {
      const start = startOf(w);
      assert.deepEqual(chunkRows(w.values), [0, 1, 2, 3].map((r) => [start + r, asset]), `${w.windowId}`);
    }
  });

  test('a block whose values do not fill its rows is refused', () => {
    assert.throws(() => make().pushBlock({ t0: T0, periodMs: P, rows: 2, values: new Float64Array(3) }), RangeError);
  });
});

function chunkRows(values: Float64Array): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < values.length; i += 2) out.push([values[i]!, values[i + 1]!]);
  return out;
}
