/**
 * `npm run bench:engines`: every inference engine x every shipped model x batch sizes x pool sizes,
 * on the inference pool the workers use (worker threads, transferred buffers), beside the machine's
 * float32 matrix-product rate measured in the same run (this machine is shared and noisy: only
 * ratios within one run mean anything). No broker, no Redis.
 *
 * Cells: engine (tfjs-cpu, tfjs-wasm, onnxruntime) x model (the newest models/<name>/<version>) x batch
 * (1, 8, 32, 128, 512) x pool (1 and 2 threads; onnxruntime with 1 intra-op thread per pool
 * thread, and for pool 1 also with 2). Each cell: one warm-up batch per thread, then repeats of
 * `k` back-to-back batches on each of threads + 1 loops at once, so a batch always waits for the
 * next free thread (k sized so a repeat lasts about a fifth of the cell's budget; a repeat that
 * alone overruns the budget is the only one); items/s is the median over repeats. GFLOP/s = items/s x the manifest's `flopsPerItem` (counted from the layer shapes
 * when a manifest lacks it). A cell whose batch is predicted (fixed + per-item cost fitted to the
 * two previous batch sizes) to take longer than `--max-batch-ms` is skipped and marked so in the
 * table: the pure-JS cpu backend on large batches would otherwise take minutes.
 *
 * Peak: a 1024 x 1024 x 1024 float32 MatMul graph (built with the repository's ONNX encoder) on
 * ONNX Runtime with 2 intra-op threads, 2 n^3 FLOP per product, median of repeats; measured before
 * and after the cells, the higher median counts (the conservative denominator).
 *
 * Last line, JSON: `matmulGflops`, `cnnOrtFractionOfPeak` (mnist-cnn on onnxruntime, best GFLOP/s
 * at batch >= 128 / matmulGflops; target >= 0.6), `lstmOrtOverWasm` (sim-asset-lstm-ae, best
 * onnxruntime items/s / best tfjs-wasm items/s; target >= 15), each model's best per engine.
 *
 * Flags: --models a,b (default every model of models/, newest version), --engines tfjs-cpu,tfjs-wasm,onnxruntime,
 * --batches 1,8,32,128,512, --cell-ms N (measuring budget per cell, default 1000),
 * --max-batch-ms N (default 2500).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ascending, percentile, round, runBench } from '../../../shared/src/bench/harness.js';
import type { EngineName } from '../../../shared/src/inference/engine.js';
import { ONNX_MODEL_FILE, itemSize, modelKey } from '../../../shared/src/inference/engine.js';
import { readModelManifest, type ModelManifest } from '../../../shared/src/inference/manifest.js';
import { encodeModel, floatTensor, node, valueInfo } from '../../../shared/src/inference/onnx/proto.js';
import { loadOnnxRuntime } from '../../../shared/src/inference/ort-engine.js';
import { createInferencePool, type InferencePool } from '../../../shared/src/inference/pool.js';
import { createLogger } from '../../../shared/src/log/logger.js';
import { registryVersions } from '../../../shared/src/models/versions.js';
import { countSequenceFlops } from '../src/sensor-architectures.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const ENGINES = ['tfjs-cpu', 'tfjs-wasm', 'onnxruntime'] as const satisfies readonly EngineName[];
type BenchEngine = (typeof ENGINES)[number];

const { values: flags } = parseArgs({
  options: {
    'models': { type: 'string' },
    'engines': { type: 'string', default: ENGINES.join(',') },
    'batches': { type: 'string', default: '1,8,32,128,512' },
    'cell-ms': { type: 'string', default: '1000' },
    'max-batch-ms': { type: 'string', default: '2500' },
  },
});

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const positive = (name: string, s: string) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(s)}`);
  return n;
};

/** Repeats per cell: at least this many, unless one repeat alone overruns the budget. */
const MIN_REPEATS = 3;
const MAX_REPEATS = 25;
/** A repeat aims at this share of the cell budget. */
const REPEATS_PER_BUDGET = 5;

/**
 * FLOPs of one item's forward pass from the TF.js layers topology (multiply-add = 2): Conv2D,
 * Dense (also inside TimeDistributed) and LSTM/GRU; pooling, reshaping and elementwise layers count
 * 0, as the manifests' counts do. LSTM layers cost what `countSequenceFlops` counts per step.
 * Layers are walked in the topology's order with one running shape, which holds for the shipped
 * models (sequential, or one side branch that rejoins by an elementwise merge). Throws on a layer
 * it does not know, rather than under-count.
 */
function countLayerFlops(topology: unknown): number {
  const t = topology as { model_config?: { config?: unknown }; config?: unknown };
  const config = (t.model_config?.config ?? t.config) as { layers?: { class_name: string; config: Record<string, unknown> }[] } | undefined;
  const layers = config?.layers ?? [];
  let shape: number[] = [];
  let flops = 0;
  const pair = (v: unknown, fallback: number): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : v === undefined || v === null ? [fallback, fallback] : [Number(v), Number(v)]);
  const dense = (units: number) => {
    const inputs = shape[shape.length - 1] ?? 0;
    flops += 2 * inputs * units * itemSize(shape.slice(0, -1));
    shape = [...shape.slice(0, -1), units];
  };
  const recurrent = (units: number, gates: number, returnSequences: boolean) => {
    const [steps = 0, inputs = 0] = shape;
    // Per step, every gate is (inputs + units) x units, as in countSequenceFlops.
    flops += steps * 2 * gates * (inputs + units) * units;
    shape = returnSequences ? [steps, units] : [units];
  };
  layers.forEach((layer, i) => {
    const c = layer.config;
    const bis = c.batch_input_shape ?? c.batchInputShape;
    if (i === 0 || layer.class_name === 'InputLayer') if (Array.isArray(bis)) shape = (bis as (number | null)[]).slice(1).map(Number);
    switch (layer.class_name) {
      case 'InputLayer':
      case 'Dropout':
      case 'Activation':
      case 'BatchNormalization':
      case 'LayerNormalization':
        return;
      case 'Conv2D': {
        const [h = 0, w = 0, ch = 0] = shape;
        const [kh, kw] = pair(c.kernel_size, 1);
        const [sh, sw] = pair(c.strides, 1);
        const same = c.padding === 'same';
        const oh = same ? Math.ceil(h / sh) : Math.floor((h - kh) / sh) + 1;
        const ow = same ? Math.ceil(w / sw) : Math.floor((w - kw) / sw) + 1;
        const filters = Number(c.filters);
        flops += 2 * oh * ow * filters * kh * kw * ch;
        shape = [oh, ow, filters];
        return;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const [h = 0, w = 0, ch = 0] = shape;
        const [ph, pw] = pair(c.pool_size, 2);
        const [sh, sw] = c.strides === null || c.strides === undefined ? [ph, pw] : pair(c.strides, ph);
        const same = c.padding === 'same';
        shape = [same ? Math.ceil(h / sh) : Math.floor((h - ph) / sh) + 1, same ? Math.ceil(w / sw) : Math.floor((w - pw) / sw) + 1, ch];
        return;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
        shape = [shape[2] ?? 0];
        return;
      case 'Flatten':
        shape = [itemSize(shape)];
        return;
      case 'Reshape':
        shape = (c.target_shape as number[]).map(Number);
        return;
      case 'UpSampling2D': {
        const [h = 0, w = 0, ch = 0] = shape;
        const [uh, uw] = pair(c.size, 2);
        shape = [h * uh, w * uw, ch];
        return;
      }
      // Merges: layers come in topological order and these keep the shape of their inputs (a
      // side branch that rejoins here was walked just before), elementwise, counted as 0.
      case 'Add':
      case 'Subtract':
      case 'Multiply':
      case 'Average':
        return;
      case 'Dense':
        return dense(Number(c.units));
      case 'TimeDistributed': {
        const inner = c.layer as { class_name: string; config: Record<string, unknown> } | undefined;
        if (inner?.class_name !== 'Dense') throw new Error(`TimeDistributed(${inner?.class_name}) is not counted`);
        return dense(Number(inner.config.units));
      }
      case 'RepeatVector':
        shape = [Number(c.n), ...shape];
        return;
      case 'LSTM':
        return recurrent(Number(c.units), 4, c.return_sequences === true);
      case 'GRU':
        return recurrent(Number(c.units), 3, c.return_sequences === true);
      default:
        throw new Error(`layer ${layer.class_name} is not counted`);
    }
  });
  return flops;
}

/**
 * The trainer's count for its LSTM autoencoder (`countSequenceFlops`), when the model is one:
 * a sequence autoencoder whose first recurrent layer is an LSTM of `units`.
 */
function sequenceFlops(manifest: ModelManifest, topology: unknown): number | undefined {
  const [window, channels] = manifest.inputShape;
  if (manifest.task !== 'sequence-autoencoder' || window === undefined || channels === undefined) return undefined;
  const t = topology as { model_config?: { config?: unknown }; config?: unknown };
  const config = (t.model_config?.config ?? t.config) as { layers?: { class_name: string; config: Record<string, unknown> }[] } | undefined;
  const lstm = config?.layers?.find((l) => l.class_name === 'LSTM');
  return lstm ? countSequenceFlops(window, channels, Number(lstm.config.units)) : undefined;
}

interface ModelUnderTest {
  name: string;
  dir: string;
  manifest: ModelManifest;
  key: string;
  flopsPerItem: number;
  flopsSource: 'manifest' | 'layers';
  hasOnnx: boolean;
}

interface Config {
  engine: BenchEngine;
  pool: number;
  ortThreads: number;
}

interface Cell extends Config {
  model: string;
  batch: number;
  itemsPerSec?: number;
  gflops?: number;
  msPerBatch?: number;
  repeats?: number;
  skipped?: string;
}

const configLabel = (c: Config) => (c.engine === 'onnxruntime' ? `${c.pool} x ${c.ortThreads}` : `${c.pool}`);

async function loadModels(names: string[] | undefined): Promise<ModelUnderTest[]> {
  const registry = join(repoRoot, 'models');
  // Every model of the registry (a folder with at least one version), unless named.
  const all = names ?? (await Promise.all((await readdir(registry)).map(async (n) => ((await registryVersions(registry, n)).length > 0 ? [n] : [])))).flat().sort();
  return Promise.all(
    all.map(async (name) => {
      // The newest version: the one the workers serve by default.
      const version = (await registryVersions(registry, name)).at(-1);
      if (version === undefined) throw new Error(`no version of ${name} in ${registry}`);
      const dir = join(registry, name, version);
      const manifest = await readModelManifest(dir);
      let flopsPerItem = manifest.flopsPerItem;
      let flopsSource: ModelUnderTest['flopsSource'] = 'manifest';
      if (flopsPerItem === undefined) {
        const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as { modelTopology?: unknown };
        flopsPerItem = sequenceFlops(manifest, json.modelTopology) ?? countLayerFlops(json.modelTopology);
        flopsSource = 'layers';
      }
      return { name, dir, manifest, key: modelKey(manifest), flopsPerItem, flopsSource, hasOnnx: existsSync(join(dir, ONNX_MODEL_FILE)) };
    }),
  );
}

/** Pseudo-random model input in [0, 1): one template per cell, copied per batch (each run() takes its buffer). */
function template(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32;
  }
  return a;
}

/**
 * `k` back-to-back batches on each of `loops` loops at once; returns the wall time in ms. One loop
 * more than the pool's threads keeps a batch waiting in the pool, as the workers' micro-batchers do
 * (`maxInFlight: threads + 1`), so no thread idles for the round trip between two batches.
 */
async function burst(pool: InferencePool, key: string, input: Float32Array, batch: number, loops: number, k: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: loops }, async () => {
      for (let i = 0; i < k; i++) await pool.run(key, input.slice(), batch);
    }),
  );
  return performance.now() - t0;
}

async function measureCell(pool: InferencePool, m: ModelUnderTest, c: Config, batch: number, cellMs: number): Promise<Omit<Cell, keyof Config | 'model' | 'batch'>> {
  const input = template(batch * itemSize(m.manifest.inputShape), batch);
  const warm = await burst(pool, m.key, input, batch, c.pool, 1);
  const loops = c.pool + 1;
  const k = Math.max(1, Math.round(cellMs / REPEATS_PER_BUDGET / Math.max((warm * loops) / c.pool, 0.05)));
  const rates: number[] = [];
  const batchMs: number[] = [];
  const t0 = performance.now();
  while (rates.length < MAX_REPEATS && (rates.length < MIN_REPEATS || performance.now() - t0 < cellMs)) {
    const ms = await burst(pool, m.key, input, batch, loops, k);
    rates.push((loops * k * batch) / (ms / 1000));
    // Time of one batch on one thread: `loops * k` batches shared by `c.pool` threads.
    batchMs.push((ms * c.pool) / (loops * k));
    // One repeat already spent the budget (a slow engine on a big batch): more would only repeat it.
    if (performance.now() - t0 >= cellMs && ms >= cellMs) break;
  }
  const itemsPerSec = percentile(ascending(rates), 50);
  return { itemsPerSec: round(itemsPerSec, 0), gflops: round((itemsPerSec * m.flopsPerItem) / 1e9, 2), msPerBatch: round(percentile(ascending(batchMs), 50), 2), repeats: rates.length };
}

/** Median GFLOP/s of a 1024^3 float32 MatMul on ONNX Runtime with `threads` intra-op threads. */
async function matmulGflops(threads: number): Promise<{ gflops: number; ms: number }> {
  const n = 1024;
  const ort = await loadOnnxRuntime();
  const bytes = encodeModel({
    graph: {
      name: 'matmul',
      inputs: [valueInfo('a', 'float32', [n, n])],
      outputs: [valueInfo('c', 'float32', [n, n])],
      initializers: [floatTensor('b', [n, n], template(n * n, 7))],
      nodes: [node('MatMul', ['a', 'b'], ['c'])],
    },
  });
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const a = new ort.Tensor('float32', template(n * n, 3), [n, n]);
    for (let i = 0; i < 5; i++) await session.run({ a });
    const times: number[] = [];
    const t0 = performance.now();
    while (times.length < 15 || (times.length < 60 && performance.now() - t0 < 1500)) {
      const t = performance.now();
      await session.run({ a });
      times.push(performance.now() - t);
    }
    const ms = percentile(ascending(times), 50);
    return { gflops: round((2 * n ** 3) / (ms / 1000) / 1e9, 1), ms: round(ms, 2) };
  } finally {
    await session.release();
  }
}

function cellText(c: Cell | undefined): string {
  if (!c) return '';
  if (c.skipped) return `skipped (${c.skipped})`;
  return `${(c.itemsPerSec ?? 0).toLocaleString('en-US')}/s, ${c.gflops} GF`;
}

async function main(): Promise<void> {
  const engines = list(flags.engines) as BenchEngine[];
  for (const e of engines) if (!ENGINES.includes(e)) throw new Error(`--engines: unknown engine ${e} (${ENGINES.join(', ')})`);
  const batches = list(flags.batches).map((b) => positive('batches', b));
  const cellMs = positive('cell-ms', flags['cell-ms']);
  const maxBatchMs = positive('max-batch-ms', flags['max-batch-ms']);
  const models = await loadModels(flags.models === undefined ? undefined : list(flags.models));
  const cores = availableParallelism();
  const started = performance.now();
  console.log(`# bench:engines on ${cores} cores (${cpus()[0]?.model ?? 'unknown cpu'}), node ${process.version}`);

  const peakBefore = await matmulGflops(2);
  console.log(`# float32 MatMul 1024^3 on onnxruntime, 2 threads: ${peakBefore.gflops} GFLOP/s (${peakBefore.ms} ms)`);

  const configs: Config[] = [];
  for (const engine of engines) {
    if (engine === 'onnxruntime') configs.push({ engine, pool: 1, ortThreads: 1 }, { engine, pool: 1, ortThreads: 2 }, { engine, pool: 2, ortThreads: 1 });
    else configs.push({ engine, pool: 1, ortThreads: 1 }, { engine, pool: 2, ortThreads: 1 });
  }

  const cells: Cell[] = [];
  const log = createLogger({ service: 'bench-engines', level: 'silent' });
  for (const m of models) {
    for (const c of configs) {
      const row = (batch: number, rest: Omit<Cell, keyof Config | 'model' | 'batch'>) => cells.push({ ...c, model: m.name, batch, ...rest });
      if (c.engine === 'onnxruntime' && !m.hasOnnx) {
        for (const b of batches) row(b, { skipped: `no ${ONNX_MODEL_FILE}: npm run export:onnx -- --model ${m.name}` });
        continue;
      }
      const t0 = performance.now();
      const pool = createInferencePool({ models: [m.dir], engine: c.engine, threads: c.pool, ortThreads: c.ortThreads, warmUpBatch: 1, maxQueuedBatches: 4 * c.pool, log });
      try {
        await pool.start();
        // Batch time as fixed cost + per-item cost, fitted to the last two batch sizes measured
        // (a single point would charge TF.js's per-step LSTM overhead to every item).
        const seen: { batch: number; ms: number }[] = [];
        for (const batch of batches) {
          const [p, q] = seen.slice(-2);
          const predicted = p && q ? q.ms + (Math.max(0, q.ms - p.ms) / (q.batch - p.batch)) * (batch - q.batch) : 0;
          if (predicted > maxBatchMs) {
            row(batch, { skipped: `~${round(predicted / 1000, 1)} s per batch predicted` });
            continue;
          }
          const r = await measureCell(pool, m, c, batch, cellMs);
          seen.push({ batch, ms: r.msPerBatch ?? 0 });
          row(batch, r);
        }
      } finally {
        await pool.close();
      }
      console.log(`# ${m.name} ${c.engine} pool ${configLabel(c)}: ${round((performance.now() - t0) / 1000, 1)} s`);
    }
  }

  const peakAfter = await matmulGflops(2);
  console.log(`# float32 MatMul 1024^3 again after the cells: ${peakAfter.gflops} GFLOP/s (${peakAfter.ms} ms)`);
  const peak = Math.max(peakBefore.gflops, peakAfter.gflops);

  // The table: one row per model x engine x pool, one column per batch size.
  console.log('');
  console.log(`| model | MFLOP/item | engine | pool threads${engines.includes('onnxruntime') ? ' (x ORT intra-op)' : ''} | ${batches.map((b) => `batch ${b}`).join(' | ')} |`);
  console.log(`| --- | --- | --- | --- | ${batches.map(() => '---').join(' | ')} |`);
  for (const m of models) {
    for (const c of configs) {
      const mine = cells.filter((x) => x.model === m.name && x.engine === c.engine && x.pool === c.pool && x.ortThreads === c.ortThreads);
      const flops = `${round(m.flopsPerItem / 1e6, 3)}${m.flopsSource === 'layers' ? ' (layers)' : ''}`;
      console.log(`| ${m.name} | ${flops} | ${c.engine} | ${configLabel(c)} | ${batches.map((b) => cellText(mine.find((x) => x.batch === b))).join(' | ')} |`);
    }
  }
  console.log(`\nfloat32 MatMul 1024^3 (ONNX Runtime, 2 intra-op threads): ${peakBefore.gflops} GFLOP/s before the cells, ${peakAfter.gflops} after; ${peak} counts.`);

  const measured = cells.filter((c): c is Cell & { itemsPerSec: number; gflops: number } => c.itemsPerSec !== undefined && c.gflops !== undefined);
  const best = (model: string, engine: BenchEngine, minBatch = 0) =>
    measured.filter((c) => c.model === model && c.engine === engine && c.batch >= minBatch).reduce<(typeof measured)[number] | undefined>((a, c) => (!a || c.itemsPerSec > a.itemsPerSec ? c : a), undefined);
  const cnnOrt = best('mnist-cnn', 'onnxruntime', 128);
  const lstmOrt = best('sim-asset-lstm-ae', 'onnxruntime');
  const lstmWasm = best('sim-asset-lstm-ae', 'tfjs-wasm');
  const cnnOrtFractionOfPeak = cnnOrt ? round(cnnOrt.gflops / peak, 3) : null;
  const lstmOrtOverWasm = lstmOrt && lstmWasm ? round(lstmOrt.itemsPerSec / lstmWasm.itemsPerSec, 1) : null;
  const bests = Object.fromEntries(
    models.map((m) => [
      m.name,
      Object.fromEntries(
        engines.map((e) => {
          const b = best(m.name, e);
          return [e, b ? { itemsPerSec: b.itemsPerSec, gflops: b.gflops, batch: b.batch, pool: b.pool, ...(e === 'onnxruntime' ? { ortThreads: b.ortThreads } : {}) } : null];
        }),
      ),
    ]),
  );
  const skipped = cells.filter((c) => c.skipped).map((c) => `${c.model}/${c.engine}/pool ${configLabel(c)}/batch ${c.batch}: ${c.skipped}`);
  if (skipped.length > 0) console.log(`\nSkipped cells: ${skipped.length} (listed in the JSON).`);
  const result = {
    cores,
    matmulGflops: peak,
    matmulGflopsBefore: peakBefore.gflops,
    matmulGflopsAfter: peakAfter.gflops,
    cnnOrtFractionOfPeak,
    cnnOrtBest: cnnOrt ? { itemsPerSec: cnnOrt.itemsPerSec, gflops: cnnOrt.gflops, batch: cnnOrt.batch, pool: cnnOrt.pool, ortThreads: cnnOrt.ortThreads } : null,
    cnnTargetMet: cnnOrtFractionOfPeak !== null && cnnOrtFractionOfPeak >= 0.6,
    lstmOrtOverWasm,
    lstmTargetMet: lstmOrtOverWasm !== null && lstmOrtOverWasm >= 15,
    best: bests,
    skipped,
    cellMs,
    seconds: round((performance.now() - started) / 1000, 1),
  };
  console.log(JSON.stringify(result));
}

runBench('bench:engines', main);
