import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { contributionsByChannel, normalise, scoreWindow, topChannels } from '../../shared/src/anomaly/score.js';

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
