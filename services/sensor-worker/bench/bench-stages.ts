/**
 * `npm run bench:sensor-stages`: what the sensor worker's own JavaScript costs per sample, stage by
 * stage, on one core and without Kafka: decoding a chunk record (`decodeSensorInput`: the chunk
 * scanner plus the schema's check of the head), turning it into a block of samples in the
 * model's channel order, and windowing (64-sample windows every 32). The input is the
 * simulator's: 48 pumps x 100 chunks of 64 samples. `jsonParse` is JSON.parse alone, which
 * decoding took before the scanner (`decodeGeneral`, `decodeSensorMessage`, is that path whole).
 * Prints one JSON line: microseconds per sample, the median of 5 rounds of 3 passes each.
 */
import { decodeSensorInput, decodeSensorMessage } from '../../../shared/src/contracts/sensor.js';
import type { InboundRecord } from '../../../shared/src/contracts/record.js';
import { createSensorPlan, SENSOR_CHANNELS } from '../../gateway-sim/src/index.js';
import { toSampleBlock, type SampleBlock } from '../src/stages/samples.js';
import { createWindower, type Windower } from '../src/stages/windows.js';

const plan = createSensorPlan({ seed: 1, runId: 'bench-stages', start: Date.now() - 3_600_000, assets: 48, format: 'chunk', chunkSize: 64, anomalyRate: 0 });
const records: InboundRecord[] = plan.takeSync(48 * 100).map((m) => m.record as InboundRecord);
const samples = records.length * 64;
const decoded = records.map((r) => {
  const d = decodeSensorInput(r);
  if (!d.ok) throw new Error(`the simulator's chunk did not decode: ${d.error.message}`);
  return d.value;
});
const now = Date.now();
const blocksOf = (): SampleBlock[] =>
  decoded.map((m) => {
    const r = toSampleBlock(m, SENSOR_CHANNELS, now, { periodMs: 100 });
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  });

let windows = 0;
function windowAll(blocks: SampleBlock[]): void {
  const byAsset = new Map<string, Windower>();
  windows = 0;
  decoded.forEach((m, i) => {
    let w = byAsset.get(m.assetId);
    if (!w) byAsset.set(m.assetId, (w = createWindower({ assetId: m.assetId, channels: SENSOR_CHANNELS.length, size: 64, hop: 32, periodMs: 100, allowedLatenessMs: 1000, maxGapMs: 5000 })));
    windows += w.pushBlock(blocks[i]!).windows.length;
  });
}

/** Microseconds per sample of `f` over 3 passes (after one warm-up pass); `setup` runs outside the timing. */
function usPerSample<T>(setup: () => T, f: (input: T) => unknown): number {
  f(setup());
  let ms = 0;
  for (let i = 0; i < 3; i++) {
    const input = setup();
    const t = performance.now();
    f(input);
    ms += performance.now() - t;
  }
  return (ms * 1000) / (3 * samples);
}

const rounds: Record<string, number[]> = { jsonParse: [], decodeGeneral: [], decode: [], blocks: [], windows: [] };
for (let r = 0; r < 5; r++) {
  rounds.jsonParse!.push(usPerSample(() => records, (rs) => rs.forEach((x) => JSON.parse(x.value!.toString("utf8")) as unknown)));
  rounds.decodeGeneral!.push(usPerSample(() => records, (rs) => rs.forEach((x) => decodeSensorMessage(x))));
  rounds.decode!.push(usPerSample(() => records, (rs) => rs.forEach((x) => decodeSensorInput(x))));
  rounds.blocks!.push(usPerSample(() => decoded, (ds) => ds.forEach((m) => toSampleBlock(m, SENSOR_CHANNELS, now, { periodMs: 100 }))));
  rounds.windows!.push(usPerSample(blocksOf, windowAll));
}
const median = (a: number[]) => Math.round([...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]! * 1000) / 1000;
console.log(JSON.stringify({ samples, windows, usPerSample: Object.fromEntries(Object.entries(rounds).map(([k, v]) => [k, median(v)])) }));
