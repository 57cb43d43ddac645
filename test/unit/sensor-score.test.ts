import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { channelStatistics, channelTerms, contributionsByChannel, normalise, scoreWindow, topChannels, type WindowScoring } from '../../shared/src/anomaly/score.js';
import { STILL_CAP, windowScoringSchema } from '../../shared/src/inference/manifest.js';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

describe('sensor scoring: normalisation', () => {
  test('per channel: (x * scale - mean[c]) / std[c], row-major', () => {
    const out = normalise([10, 100, 20, 200], { scale: 0.5, mean: [1, 10], std: [2, 20] }, 2, new Float64Array(4));
    assert.deepEqual([...out], [(5 - 1) / 2, (50 - 10) / 20, (10 - 1) / 2, (100 - 10) / 20]);
  });

  test('scalar mean and std apply to every channel; the default output is Float32Array', () => {
    const out = normalise([1, 2, 3], { scale: 1, mean: 1, std: 2 }, 3);
    assert.ok(out instanceof Float32Array);
    assert.deepEqual([...out], [0, 0.5, 1]);
  });

  test('a per-channel array of the wrong length, or values not in whole rows, throw', () => {
    assert.throws(() => normalise([1, 2], { scale: 1, mean: [0, 0, 0], std: 1 }, 2), /mean has 3 values/);
    assert.throws(() => normalise([1, 2], { scale: 1, mean: 0, std: [1] }, 2), /std has 1 values/);
    assert.throws(() => normalise([1, 2, 3], { scale: 1, mean: 0, std: 1 }, 2), /rows of 2 channels/);
  });
});

describe('sensor scoring: reconstruction error', () => {
  // 3 time steps x 2 channels; errors: channel 0 = 1, 0, 1; channel 1 = 2, 2, 0.
  const x = [1, 2, 0, 2, 1, 0];
  const y = [0, 0, 0, 0, 0, 0];

  test('score is the mean squared error over all cells', () => {
    const { score } = scoreWindow(x, y, 3, 2);
    close(score, (1 + 4 + 0 + 4 + 1 + 0) / 6);
  });

  test('contributions: each channel squared error over time / (size * channels); they sum to the score', () => {
    const { score, contributions } = scoreWindow(x, y, 3, 2);
    close(contributions[0]!, 2 / 6);
    close(contributions[1]!, 8 / 6);
    assert.equal(contributions[0]! + contributions[1]!, score);
  });

  test('a perfect reconstruction scores 0 with all contributions 0', () => {
    const r = scoreWindow(x, x, 3, 2);
    assert.equal(r.score, 0);
    assert.deepEqual([...r.contributions], [0, 0]);
  });

  test('sums stay exact on random windows', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 4 - 2;
    for (let n = 0; n < 50; n++) {
      const a = Float32Array.from({ length: 64 * 5 }, rand);
      const b = Float32Array.from({ length: 64 * 5 }, rand);
      const r = scoreWindow(a, b, 64, 5);
      let mse = 0;
      for (let i = 0; i < a.length; i++) mse += (a[i]! - b[i]!) ** 2;
      close(r.score, mse / a.length, 1e-9);
      assert.equal(r.contributions.reduce((s, v) => s + v, 0), r.score);
    }
  });

  test('shape mismatches and a non-finite reconstruction throw', () => {
    assert.throws(() => scoreWindow(x, [0, 0], 3, 2), /expected 6 values/);
    assert.throws(() => scoreWindow(x, [0, 0, Number.NaN, 0, 0, 0], 3, 2), /row 1, channel 0/);
    assert.throws(() => scoreWindow(x, y, 0, 2), /positive integers/);
  });
});

describe('sensor scoring: channels', () => {
  test('contributions are keyed by the model labels, in input order', () => {
    assert.deepEqual(contributionsByChannel([0.1, 0.2], ['temp', 'vib']), { temp: 0.1, vib: 0.2 });
    assert.throws(() => contributionsByChannel([0.1], ['temp', 'vib']));
  });

  test('topChannels lists the k largest, largest first, ties by name', () => {
    const c = { temp: 0.1, vib: 0.5, rpm: 0.3, flow: 0.3, amps: 0 };
    assert.deepEqual(topChannels(c, 3), [
      { channel: 'vib', contribution: 0.5 },
      { channel: 'flow', contribution: 0.3 },
      { channel: 'rpm', contribution: 0.3 },
    ]);
    assert.equal(topChannels(c, 10).length, 5);
    assert.deepEqual(topChannels(c, 0), []);
  });

  test('topChannels k is limited by the AlertEvent schema (16)', () => {
    assert.throws(() => topChannels({}, 17), /0\.\.16/);
    assert.throws(() => topChannels({}, -1));
  });
});

describe('sensor scoring: channel-terms (manifest scoring)', () => {
  const SIZE = 64;
  const CH = 4;
  /** A deterministic noise source, so the windows are the same on every run. */
  const lcg = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  /** A normal window: slow sines per channel plus noise in `x`; `y` is the noiseless curve (a good reconstruction). */
  function normalWindow(seed: number): { x: Float64Array; y: Float64Array } {
    const rand = lcg(seed);
    const x = new Float64Array(SIZE * CH);
    const y = new Float64Array(SIZE * CH);
    for (let t = 0; t < SIZE; t++) {
      for (let c = 0; c < CH; c++) {
        const v = Math.sin((t + seed * 7) / (8 + 3 * c));
        y[t * CH + c] = v;
        x[t * CH + c] = v + 0.1 * rand();
      }
    }
    return { x, y };
  }
  /** References as the trainer draws them: per channel, the largest statistic over normal windows; stillRef half the least movement. */
  function calibrated(power: number): WindowScoring {
    const errorRef = new Array<number>(CH).fill(0);
    const stepRef = new Array<number>(CH).fill(0);
    const stillRef = new Array<number>(CH).fill(Infinity);
    for (let s = 1; s <= 20; s++) {
      const { x, y } = normalWindow(s);
      const st = channelStatistics(x, y, SIZE, CH);
      for (let c = 0; c < CH; c++) {
        errorRef[c] = Math.max(errorRef[c]!, st.error[c]!);
        stepRef[c] = Math.max(stepRef[c]!, st.step[c]!);
        stillRef[c] = Math.min(stillRef[c]!, st.still[c]! / 2);
      }
    }
    return { method: 'channel-terms', power, errorRef, stepRef, stillRef };
  }
  const scoring = calibrated(4);
  const normalMax = Math.max(...Array.from({ length: 20 }, (_, i) => scoreWindow(normalWindow(i + 100).x, normalWindow(i + 100).y, SIZE, CH, scoring).score));

  test('the manifest schema accepts it, and absent or `mse` scoring is the plain mean squared error', () => {
    assert.deepEqual(windowScoringSchema.parse(scoring), scoring);
    assert.throws(() => windowScoringSchema.parse({ method: 'channel-terms', power: 0.5, errorRef: [1] }));
    assert.throws(() => windowScoringSchema.parse({ method: 'channel-terms', power: 2, errorRef: [0] }));
    assert.throws(() => windowScoringSchema.parse({ method: 'max' }));
    const { x, y } = normalWindow(1);
    assert.deepEqual(scoreWindow(x, y, SIZE, CH, { method: 'mse' }), scoreWindow(x, y, SIZE, CH));
  });

  test('contributions are >= 0 and sum to the score exactly, for any power', () => {
    for (const power of [1, 2, 4, 16, 64]) {
      const s = { ...calibrated(power) };
      for (let seed = 1; seed < 30; seed++) {
        const { x } = normalWindow(seed);
        const rand = lcg(seed * 31);
        const y = x.map((v) => v + 0.5 * rand());
        const r = scoreWindow(x, y, SIZE, CH, s);
        assert.ok(r.contributions.every((v) => v >= 0));
        assert.equal(r.contributions.reduce((a, b) => a + b, 0), r.score);
        assert.ok(Number.isFinite(r.score) && r.score > 0);
      }
    }
  });

  test('the score is the power-norm of the per-channel terms: power 1 sums them, a large power approaches their maximum', () => {
    const { x, y } = normalWindow(3);
    const terms = channelTerms(channelStatistics(x, y, SIZE, CH), calibrated(1) as Extract<WindowScoring, { method: 'channel-terms' }>);
    close(scoreWindow(x, y, SIZE, CH, calibrated(1)).score, terms.reduce((a, b) => a + b, 0), 1e-9);
    const max = Math.max(...terms);
    const high = scoreWindow(x, y, SIZE, CH, calibrated(64)).score;
    assert.ok(high >= max && high <= max * CH ** (1 / 64) * (1 + 1e-9), `${high} vs max ${max}`);
    assert.ok(normalMax < 1.5, `normal windows score about 1 at most (${normalMax})`);
  });

  test('a one-sample spike on one channel is flagged, and that channel drives the score; plain MSE moves far less', () => {
    const { x, y } = normalWindow(7);
    x[40 * CH + 2]! += 1.5;
    const r = scoreWindow(x, y, SIZE, CH, scoring);
    assert.ok(r.score > 3 * normalMax, `spike scores ${r.score}, normal windows up to ${normalMax}`);
    assert.equal(r.contributions.indexOf(Math.max(...r.contributions)), 2);
    const normalMseMax = Math.max(...Array.from({ length: 20 }, (_, i) => scoreWindow(normalWindow(i + 100).x, normalWindow(i + 100).y, SIZE, CH).score));
    const mse = scoreWindow(x, y, SIZE, CH).score;
    assert.ok(mse / normalMseMax < (r.score / normalMax) / 3, `MSE ${mse} vs normal ${normalMseMax}: diluted over ${SIZE * CH} cells`);
  });

  test('a stuck channel (the same value repeated) is flagged by the still term, although it reconstructs as well as normal', () => {
    const { x, y } = normalWindow(9);
    for (let t = 0; t < SIZE; t++) x[t * CH + 1] = y[t * CH + 1] = 0.42;
    const r = scoreWindow(x, y, SIZE, CH, scoring);
    const stats = channelStatistics(x, y, SIZE, CH);
    assert.equal(stats.still[1], 0);
    assert.equal(stats.error[1], 0);
    assert.ok(r.score >= STILL_CAP, `stuck channel scores ${r.score}`);
    assert.equal(r.contributions.indexOf(Math.max(...r.contributions)), 1);
    assert.ok(scoreWindow(x, y, SIZE, CH).score <= scoreWindow(...Object.values(normalWindow(9)) as [Float64Array, Float64Array], SIZE, CH).score, 'plain MSE does not rise');
  });

  test('a level shift on one channel (drift, overheat) is flagged by the error term', () => {
    const { x, y } = normalWindow(11);
    for (let t = 0; t < SIZE; t++) x[t * CH + 3]! += 0.6;
    const r = scoreWindow(x, y, SIZE, CH, scoring);
    assert.ok(r.score > 3 * normalMax);
    assert.equal(r.contributions.indexOf(Math.max(...r.contributions)), 3);
  });

  test('a level excursion the autoencoder reconstructs faithfully is flagged only by the level term', () => {
    const { x, y } = normalWindow(13);
    for (let t = 0; t < SIZE; t++) {
      x[t * CH] = x[t * CH]! - 3;
      y[t * CH] = y[t * CH]! - 3;
    }
    const stats = channelStatistics(x, y, SIZE, CH);
    let levelRef = 0;
    for (let s = 1; s <= 20; s++) levelRef = Math.max(levelRef, channelStatistics(normalWindow(s).x, normalWindow(s).y, SIZE, CH).level[0]!);
    assert.ok(stats.level[0]! > 4 * levelRef);
    assert.ok(scoreWindow(x, y, SIZE, CH, scoring).score < 1.5 * normalMax, 'error, step and still terms see nothing');
    const withLevel: WindowScoring = { ...scoring, levelRef: [levelRef, 1, 1, 1] } as WindowScoring;
    const r = scoreWindow(x, y, SIZE, CH, withLevel);
    assert.ok(r.score > 4, `level term: ${r.score}`);
    assert.equal(r.contributions.indexOf(Math.max(...r.contributions)), 0);
  });

  test('huge terms do not overflow; reference arrays of the wrong length throw', () => {
    const { x, y } = normalWindow(5);
    const tiny: WindowScoring = { method: 'channel-terms', power: 64, errorRef: [1e-300, 1e-300, 1, 1] };
    const r = scoreWindow(x, y, SIZE, CH, tiny);
    assert.ok(Number.isFinite(r.score) && r.score > 1e200);
    assert.equal(r.contributions.reduce((a, b) => a + b, 0), r.score);
    assert.throws(() => scoreWindow(x, y, SIZE, CH, { method: 'channel-terms', power: 2, errorRef: [1, 1] }), /errorRef has 2 values/);
    assert.throws(() => scoreWindow(x, y, SIZE, CH, { ...scoring, stillRef: [1] } as WindowScoring), /stillRef has 1 values/);
  });

  test('a perfect, moving reconstruction scores 0 with every contribution 0', () => {
    const { x } = normalWindow(2);
    const r = scoreWindow(x, x, SIZE, CH, { method: 'channel-terms', power: 4, errorRef: [1, 1, 1, 1], stepRef: [1, 1, 1, 1] });
    assert.equal(r.score, 0);
    assert.deepEqual([...r.contributions], [0, 0, 0, 0]);
  });
});

describe('sensor scoring: scoreWindow reuses its intermediates', () => {
  // The scoring as first written, one new array per step: scoreWindow now computes into reused
  // scratch arrays and must give the same numbers, bit for bit.
  type Terms = Extract<WindowScoring, { method: 'channel-terms' }>;
  function previousScoreWindow(x: ArrayLike<number>, y: ArrayLike<number>, size: number, channels: number, scoring?: WindowScoring): { score: number; contributions: Float64Array } {
    let contributions: Float64Array;
    if (scoring === undefined || scoring.method === 'mse') {
      const cells = size * channels;
      const sums = new Float64Array(channels);
      for (let i = 0; i < cells; i++) {
        const d = x[i]! - y[i]!;
        sums[i % channels]! += d * d;
      }
      contributions = sums.map((v) => v / cells);
    } else {
      const r = new Float64Array(channels);
      for (let c = 0; c < channels; c++) {
        let sum = 0, sq = 0, maxStep = 0, moves = 0, prevE = 0, prevX = 0;
        for (let t = 0; t < size; t++) {
          const xi = x[t * channels + c]!;
          const e = xi - y[t * channels + c]!;
          sq += e * e;
          sum += xi;
          if (t > 0) {
            const de = e - prevE;
            if (de * de > maxStep) maxStep = de * de;
            const dx = xi - prevX;
            moves += dx * dx;
          }
          prevE = e;
          prevX = xi;
        }
        const s: Terms = scoring;
        let v = sq / size / s.errorRef[c]!;
        if (s.stepRef) v = Math.max(v, maxStep / s.stepRef[c]!);
        const still = size > 1 ? moves / (size - 1) : 0;
        if (s.stillRef) v = Math.max(v, still * STILL_CAP <= s.stillRef[c]! ? STILL_CAP : s.stillRef[c]! / still);
        if (s.levelRef) v = Math.max(v, (sum / size) ** 2 / s.levelRef[c]!);
        r[c] = v;
      }
      let max = 0;
      for (const v of r) if (v > max) max = v;
      contributions = new Float64Array(channels);
      if (max > 0) {
        const w = r.map((v) => (v / max) ** scoring.power);
        const sum = w.reduce((a, b) => a + b, 0);
        const norm = max * sum ** (1 / scoring.power);
        contributions = w.map((v) => (norm * v) / sum);
      }
    }
    return { score: contributions.reduce((a, b) => a + b, 0), contributions };
  }
  let seed = 5;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const refs = (channels: number, scale: number) => Array.from({ length: channels }, () => scale * (0.01 + rand()));
  /** A random window, its reconstruction, and a channel-terms scoring with a random set of the optional references. */
  function randomCase(size: number, channels: number) {
    const x = Float32Array.from({ length: size * channels }, () => rand() * 4 - 2);
    const y = x.map((v) => v + (rand() - 0.5) * (rand() < 0.2 ? 3 : 0.4));
    // A stuck channel now and then, so the still term hits its cap.
    if (rand() < 0.3) for (let t = 0; t < size; t++) x[t * channels] = 0.5;
    const scoring: Terms = { method: 'channel-terms', power: [1, 2, 4, 16][Math.floor(rand() * 4)]!, errorRef: refs(channels, 1) };
    if (rand() < 0.7) scoring.stepRef = refs(channels, 1);
    if (rand() < 0.7) scoring.stillRef = refs(channels, 0.01);
    if (rand() < 0.5) scoring.levelRef = refs(channels, 1);
    return { x, y, scoring };
  }
  const same = (a: { score: number; contributions: Float64Array }, b: { score: number; contributions: Float64Array }, what: string) => {
    assert.ok(Object.is(a.score, b.score), `${what}: score ${a.score} vs ${b.score}`);
    assert.equal(a.contributions.length, b.contributions.length, what);
    a.contributions.forEach((v, c) => assert.ok(Object.is(v, b.contributions[c]), `${what}: channel ${c}: ${v} vs ${b.contributions[c]}`));
  };

  test('bit-identical to the previous implementation, both methods, channel counts up and down', () => {
    // 8, then fewer, then 8 again, window after window: stale scratch values past the channel
    // count must not be read, and a larger count must not find the scratch too short.
    for (let n = 0; n < 20; n++) {
      for (const size of [1, 2, 64]) {
        for (const channels of [8, 3, 8, 1, 13, 2, 8, 5, 8]) {
          const { x, y, scoring } = randomCase(size, channels);
          const what = `${channels} channels x ${size}, case ${n}`;
          same(scoreWindow(x, y, size, channels, scoring), previousScoreWindow(x, y, size, channels, scoring), `channel-terms, ${what}`);
          same(scoreWindow(x, y, size, channels), previousScoreWindow(x, y, size, channels), `mse, ${what}`);
          same(scoreWindow(Array.from(x), Array.from(y), size, channels, scoring), previousScoreWindow(x, y, size, channels, scoring), `plain arrays, ${what}`);
          // A perfect reconstruction after scored windows: every contribution 0, nothing left over.
          if (size === 64) same(scoreWindow(x, x, size, channels, { method: 'channel-terms', power: 2, errorRef: refs(channels, 1) }), { score: 0, contributions: new Float64Array(channels) }, `perfect, ${what}`);
        }
      }
    }
  });

  test('the returned contributions are the window\'s own: later calls do not change them', () => {
    for (const method of ['channel-terms', 'mse'] as const) {
      const a = randomCase(64, 8);
      const first = scoreWindow(a.x, a.y, 64, 8, method === 'mse' ? undefined : a.scoring);
      const kept = { score: first.score, contributions: Float64Array.from(first.contributions) };
      const stats = channelStatistics(a.x, a.y, 64, 8);
      const statsKept = structuredClone(stats);
      for (const channels of [8, 3, 12]) {
        const b = randomCase(64, channels);
        const later = scoreWindow(b.x, b.y, 64, channels, method === 'mse' ? undefined : b.scoring);
        assert.notEqual(later.contributions, first.contributions);
        assert.notEqual(later.contributions.buffer, first.contributions.buffer);
      }
      same(first, kept, method);
      // channelStatistics still hands out arrays of its own too.
      assert.deepEqual(stats, statsKept);
    }
  });
});
