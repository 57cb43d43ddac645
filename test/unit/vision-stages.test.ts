import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyFrame } from '../../services/vision-worker/src/stages/classify.js';
import { ConfigError, loadConfig } from '../../services/vision-worker/src/config.js';
import { tileBoxes, tileToInput } from '../../shared/src/vision/tiles.js';

describe('tiling', () => {
  test('a 256x192 frame in 64-pixel tiles is 4 x 3 boxes covering it exactly', () => {
    const boxes = tileBoxes(256, 192, 64, 64);
    assert.equal(boxes.length, 12);
    assert.deepEqual(boxes[0], { x: 0, y: 0, width: 64, height: 64 });
    assert.deepEqual(boxes[11], { x: 192, y: 128, width: 64, height: 64 });
  });

  test('where the grid falls short of an edge, one more tile is aligned to it', () => {
    const boxes = tileBoxes(100, 64, 64, 64);
    assert.deepEqual(boxes.map((b) => b.x), [0, 36]);
    const overlapping = tileBoxes(128, 64, 64, 32);
    assert.deepEqual(overlapping.map((b) => b.x), [0, 32, 64]);
  });

  test('a frame no larger than a tile, or an infinite tile, is one box: the whole frame', () => {
    assert.deepEqual(tileBoxes(28, 28, 64, 64), [{ x: 0, y: 0, width: 28, height: 28 }]);
    assert.deepEqual(tileBoxes(256, 192, Infinity, Infinity), [{ x: 0, y: 0, width: 256, height: 192 }]);
  });

  test('tileToInput averages 2x2 blocks into a half-size input, rounds to gray levels and normalises', () => {
    const w = 4;
    const pixels = Uint8Array.from([0, 255, 10, 10, 255, 0, 10, 10, 100, 100, 0, 0, 100, 100, 0, 0]);
    const out = new Float32Array(4 + 1);
    tileToInput(pixels, w, { x: 0, y: 0, width: 4, height: 4 }, 2, 2, { scale: 1 / 255, mean: 0.5, std: 0.5 }, out, 1);
    const expect = [128, 10, 100, 0].map((v) => (v / 255 - 0.5) / 0.5);
    [...out.subarray(1)].forEach((v, i) => assert.ok(Math.abs(v - expect[i]!) < 1e-6, `pixel ${i}: ${v} vs ${expect[i]}`));
    assert.equal(out[0], 0, 'writes only at its offset');
  });
});

describe('frame verdict', () => {
  const labels = ['ok', 'scratch', 'pit'];
  const boxes = [
    { x: 0, y: 0, width: 64, height: 64 },
    { x: 64, y: 0, width: 64, height: 64 },
  ];
  const p = (...v: number[]) => Float32Array.from(v);

  test('any defective tile makes the frame a defect, labelled by its most confident defective tile', () => {
    const v = classifyFrame(boxes, [p(0.2, 0.7, 0.1), p(0.05, 0.05, 0.9)], { labels, okLabel: 'ok', minConfidence: 0.5 });
    assert.equal(v.verdict, 'defect');
    assert.equal(v.label, 'pit');
    assert.ok(Math.abs(v.confidence - 0.9) < 1e-6);
    assert.deepEqual(v.tiles.map((t) => [t.label, t.defective]), [['scratch', true], ['pit', true]]);
  });

  test('a defect below minConfidence does not count; an ok frame reports its least sure tile', () => {
    const v = classifyFrame(boxes, [p(0.3, 0.45, 0.25), p(0.9, 0.05, 0.05)], { labels, okLabel: 'ok', minConfidence: 0.5 });
    assert.equal(v.verdict, 'ok');
    assert.equal(v.label, 'ok');
    assert.ok(Math.abs(v.confidence - 0.3) < 1e-6);
    assert.equal(v.tiles[0]!.defective, false);
  });

  test('without okLabel a model is a plain classifier: never a defect, top class reported', () => {
    const v = classifyFrame([boxes[0]!], [p(0.1, 0.8, 0.1)], { labels, minConfidence: 0.5 });
    assert.deepEqual([v.verdict, v.label], ['ok', 'scratch']);
  });
});

describe('vision worker configuration', () => {
  test('defaults when the environment is empty', () => {
    const c = loadConfig({}, '/repo');
    assert.deepEqual(c.kafkaBrokers, ['127.0.0.1:9092']);
    assert.equal(c.topics.frames, 'factory.camera.frames.v1');
    assert.equal(c.modelDir, '/repo/models/surface-defect-cnn/1.0.0');
    assert.equal(c.inferenceThreads, 1);
    assert.equal(c.engine, 'auto');
  });

  test('every bad value is reported at once, each naming its variable', () => {
    try {
      loadConfig(
        { KAFKA_BROKERS: 'nohost', REDIS_URL: 'http://x:1', INFERENCE_ENGINE: 'gpu', VISION_MAX_BATCH_SIZE: '0', VISION_TILE_SIZE: '32', VISION_TILE_STRIDE: '64', KAFKA_SESSION_TIMEOUT_MS: '100' },
        '/repo',
      );
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const vars = err.problems.map((p) => p.split(':')[0]);
      assert.deepEqual(vars.sort(), ['INFERENCE_ENGINE', 'KAFKA_BROKERS', 'KAFKA_SESSION_TIMEOUT_MS', 'REDIS_URL', 'VISION_MAX_BATCH_SIZE', 'VISION_TILE_STRIDE (64) must not exceed VISION_TILE_SIZE (32)'].sort());
    }
  });

  test('a password in REDIS_URL never appears in a configuration error', () => {
    assert.throws(() => loadConfig({ REDIS_URL: 'ftp://user:s3cret@host:1' }, '/repo'), (e: ConfigError) => !e.message.includes('s3cret'));
  });
});
