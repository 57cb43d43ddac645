import { ContractViolation, accept, reject, type Decoded } from '../../../../shared/src/contracts/errors.js';
import type { SensorInput } from '../../../../shared/src/contracts/sensor.js';

/** One sample: an event time and one value per model channel, in the model's input order. */
export interface SampleRow {
  /** Event time, epoch ms. */
  ts: number;
  /** `values[i]` is channel `channels[i]` of the asset model. */
  values: Float64Array;
}

/** Evenly spaced samples in the model's channel order: a chunk's, or a reading's one. */
export interface SampleBlock {
  /** Event time of row 0, epoch ms; row `i` is at `t0 + i * periodMs`. */
  t0: number;
  periodMs: number;
  rows: number;
  /** `rows x channels` values, row-major: `values[i * channels + c]` is model channel `c` of row `i`. */
  values: Float64Array;
}

export interface SampleOptions {
  /**
   * How far ahead of the worker clock an event time may be. Gateway clocks drift; a sample far
   * in the future would push the window watermark ahead and make every honest sample late.
   * @defaultValue 5000 (5 s)
   */
  maxFutureSkewMs: number;
  /**
   * How far behind the worker clock an event time may be. Older data is replay or a broken
   * gateway clock, and would open windows nobody waits for any more.
   * @defaultValue 86_400_000 (24 h, the lag a consumer may fall behind and still catch up)
   */
  maxPastSkewMs: number;
  /**
   * The sample period the asset model was trained at; a chunk with another `periodMs` is refused
   * (`schema`, field `periodMs`) because its samples would not sit on the window grid. Unset: any
   * period is accepted.
   * @defaultValue undefined
   */
  periodMs?: number;
}

export const DEFAULT_SAMPLE_OPTIONS: Readonly<SampleOptions> = { maxFutureSkewMs: 5000, maxPastSkewMs: 86_400_000 };

/**
 * Column of each message channel in the model's input order. A model channel the message lacks
 * is `schema` (`values.<channel>` / `channels`), a message channel the model lacks is
 * `unknown-channel`. Both checks name the first offending channel in model / message order.
 */
function columnMap(names: readonly string[], channels: readonly string[], field: (c: string) => string, missingField: (c: string) => string): Int32Array {
  const index = new Map<string, number>();
  channels.forEach((c, i) => index.set(c, i));
  const col = new Int32Array(names.length);
  const seen = new Uint8Array(channels.length);
  for (let j = 0; j < names.length; j++) {
    const i = index.get(names[j]!);
    if (i === undefined) {
      throw new ContractViolation('unknown-channel', field(names[j]!), 'must be a channel of the asset model', `"${names[j]}" is not one of ${channels.join(', ')}`);
    }
    if (seen[i]) throw new ContractViolation('schema', field(names[j]!), 'channel names must be unique');
    seen[i] = 1;
    col[j] = i;
  }
  if (names.length !== channels.length) {
    const present = new Set(names);
    const missing = channels.find((c) => !present.has(c));
    throw new ContractViolation('schema', missingField(missing ?? '?'), 'every channel of the asset model is required', `"${missing}" is missing`);
  }
  return col;
}

function checkSkew(first: number, last: number, now: number, o: SampleOptions, field: string): void {
  if (last > now + o.maxFutureSkewMs) {
    throw new ContractViolation('clock-skew', field, `at most ${o.maxFutureSkewMs} ms ahead of the worker clock`, `${last - now} ms ahead`);
  }
  if (first < now - o.maxPastSkewMs) {
    throw new ContractViolation('clock-skew', field, `at most ${o.maxPastSkewMs} ms behind the worker clock`, `${now - first} ms behind`);
  }
}

function checkFinite(v: number, field: string): number {
  // The decoder already refuses non-finite numbers; this guards callers that build messages by hand.
  if (!Number.isFinite(v)) throw new ContractViolation('schema', field, 'must be a finite number');
  return v;
}

/**
 * Turns a decoded reading or chunk into a block of samples in the model's channel order, for an
 * asset model whose input channels are `channels`. A reading must hold exactly the model's
 * channels; chunk columns are matched by name under the same rule. Event times are checked
 * against `now` (the worker clock, epoch ms): the reading's `ts`, or the chunk's first and last
 * sample, reported as field `ts` / `t0`. Chunk sample `i` is at `t0 + i * periodMs`.
 *
 * A chunk whose columns already are in the model's order is passed on without a copy: the block
 * shares (and the windower reads) the chunk's matrix, which nothing changes afterwards.
 *
 * Never throws on bad input: returns the violation to dead-letter instead.
 */
export function toSampleBlock(message: SensorInput, channels: readonly string[], now: number, options: Partial<SampleOptions> = {}): Decoded<SampleBlock> {
  const o: SampleOptions = { ...DEFAULT_SAMPLE_OPTIONS, ...options };
  try {
    if (message.kind === 'reading') {
      const names = Object.keys(message.values);
      const col = columnMap(names, channels, (c) => `values.${c}`, (c) => `values.${c}`);
      checkSkew(message.ts, message.ts, now, o, 'ts');
      const values = new Float64Array(channels.length);
      names.forEach((c, j) => (values[col[j]!] = checkFinite(message.values[c]!, `values.${c}`)));
      return accept({ t0: message.ts, periodMs: 0, rows: 1, values });
    }
    if (o.periodMs !== undefined && message.periodMs !== o.periodMs) {
      throw new ContractViolation('schema', 'periodMs', `must be ${o.periodMs}, the sample period of the asset model`, `got ${message.periodMs}`);
    }
    const col = columnMap(message.channels, channels, (c) => `channels.${message.channels.indexOf(c)}`, () => 'channels');
    const n = message.rows;
    checkSkew(message.t0, message.t0 + (n - 1) * message.periodMs, now, o, 't0');
    const src = message.values;
    const width = channels.length;
    if (src.length !== n * width) throw new RangeError(`a chunk of ${n} rows x ${width} channels holds ${src.length} values`);
    // The decoder already refuses non-finite numbers; this guards callers that build chunks by
    // hand. Any NaN or infinity makes the sum NaN (x * 0 is NaN for both).
    let sum = 0;
    for (let i = 0; i < src.length; i++) sum += src[i]! * 0;
    if (sum !== 0) {
      const at = src.findIndex((v) => !Number.isFinite(v));
      checkFinite(src[at]!, `samples.${Math.floor(at / width)}.${at % width}`);
    }
    if (col.every((c, j) => c === j)) return accept({ t0: message.t0, periodMs: message.periodMs, rows: n, values: src });
    const values = new Float64Array(src.length);
    for (let i = 0; i < n; i++) {
      const at = i * width;
      for (let j = 0; j < width; j++) values[at + col[j]!] = src[at + j]!;
    }
    return accept({ t0: message.t0, periodMs: message.periodMs, rows: n, values });
  } catch (err) {
    if (err instanceof ContractViolation) return reject(err);
    throw err;
  }
}
