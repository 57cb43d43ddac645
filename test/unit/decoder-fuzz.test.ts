/**
 * Decoder fuzzing (issue 6, item 4).
 *
 * What it proves, for tens of thousands of seeded random and mutated inputs:
 *
 * - Frames: the chain the vision worker applies to a consumed record before inference
 *   (`decodeFrame`: byte limit, headers, content type, PNG IHDR / JPEG SOF probe; then
 *   `decodePixels`: the gray8 pass-through or the real sharp/libvips decode of PNG and JPEG) ends
 *   every input in decoded pixels or a ContractViolation (the typed error of both stages), never
 *   in another exception. Every rejected record can be dead-lettered. Decoded pixels never exceed
 *   maxWidth x maxHeight x 1 channel of the configured FrameLimits, a decompression bomb (a tiny
 *   PNG or JPEG declaring a huge image) is refused by the probe before any decoder runs, and the
 *   decoder never has to refuse an image for its pixel count (which would mean the probe and the
 *   decoder read different dimensions).
 * - Sensor readings: `decodeSensorMessage` ends every input (single readings, chunks, random
 *   bytes, JSON soup, messages near the 1 MiB default limit made of one item in bulk) in a value
 *   or a ContractViolation, and whatever it accepts keeps the contract's promises (finite
 *   numbers, epoch-ms times, unique channels, rows as wide as the channel list, counts within
 *   the configured limits). `decodeSensorInput` (the worker's decoder, with its chunk scanner)
 *   gives the same outcome for every input: the same value, or the same violation.
 * - Memory: the process' RSS and external memory grow by less than 256 MiB over each run.
 *
 * Inputs are built like the gateway simulator builds them (its frame and sensor plans), then
 * mutated: bit flips, byte changes, truncation, insertion, deletion, splices, header deletion,
 * duplication and garbage, huge declared dimensions, NaN/Infinity/1e308/-0, deep nesting, long
 * strings, unknown channels, far past and future times, wrong types. Every input has its own
 * stream `createRng(seed, stream, index)`, so a failure is reproduced by its seed and index:
 * `FUZZ_SEED=<seed> npx tsx test/run.ts test/unit/decoder-fuzz.test.ts`. Outcome counts per
 * reason are printed, and both accepted and rejected outcomes must occur, so a broken generator
 * fails the test instead of passing it vacuously. No timing assertions.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import type { IHeaders } from 'kafkajs';
import sharp from 'sharp';
import { createFramePlan, createRng, createSensorPlan, type Rng } from '../../services/gateway-sim/src/index.js';
import { decodePixels } from '../../services/vision-worker/src/stages/decode-pixels.js';
import { DLQ_HEADERS, encodeDeadLetter } from '../../shared/src/contracts/dead-letter.js';
import { ContractViolation, REJECT_REASONS } from '../../shared/src/contracts/errors.js';
import { DEFAULT_FRAME_LIMITS, decodeFrame, type FrameContentType, type FrameLimits } from '../../shared/src/contracts/frame.js';
import { ID_PATTERN } from '../../shared/src/contracts/headers.js';
import type { InboundRecord } from '../../shared/src/contracts/record.js';
import { CHANNEL_PATTERN } from '../../shared/src/contracts/schema-parts.js';
import { DEFAULT_SENSOR_LIMITS, chunkMatrix, decodeSensorInput, decodeSensorMessage, sensorEventId, type SensorLimits, type SensorMessage } from '../../shared/src/contracts/sensor.js';

const SEED = process.env.FUZZ_SEED ?? '20250604';
const FRAME_INPUTS = 10_000;
const SENSOR_INPUTS = 20_000;
/** Allowed growth of RSS and of external (Buffer) memory over one run. */
const MEMORY_BUDGET = 256 * 1024 * 1024;
const START = 1_764_000_000_000;
const MAX_EPOCH_MS = 8_640_000_000_000_000;

/** Tighter than the defaults, so that limits are hit often and decodes stay small and quick. */
const FRAME_LIMITS: FrameLimits = { maxBytes: 96 * 1024, maxWidth: 128, maxHeight: 128 };
const SENSOR_LIMITS: SensorLimits = { maxBytes: 32 * 1024, maxChannels: 16, maxSamples: 64 };

// ---------------------------------------------------------------------------------------------
// Shared helpers: outcome bookkeeping, byte mutations

/** A header value as kafkajs may deliver it: bytes, repeated bytes, or null (valueless header). */
type HeaderValue = Buffer | string | (Buffer | string)[] | null;
type Headers = Record<string, HeaderValue>;

interface Failure {
  index: number;
  generator: string;
  steps: string[];
  problem: string;
  input: string;
}

class Tally {
  readonly counts = new Map<string, number>();
  readonly generators = new Map<string, number>();
  readonly failures: Failure[] = [];
  failureCount = 0;

  add(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }

  generated(generator: string): void {
    this.generators.set(generator, (this.generators.get(generator) ?? 0) + 1);
  }

  fail(f: Failure): void {
    this.failureCount++;
    if (this.failures.length < 8) this.failures.push(f);
  }

  total(prefix: string): number {
    let n = 0;
    for (const [k, v] of this.counts) if (k.startsWith(prefix)) n += v;
    return n;
  }

  print(title: string): void {
    const table = (m: Map<string, number>) =>
      [...m]
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([k, v]) => `  ${k.padEnd(44)} ${String(v).padStart(6)}`)
        .join('\n');
    console.log(`${title} (seed ${SEED})\ninputs per generator:\n${table(this.generators)}\noutcomes:\n${table(this.counts)}`);
  }

  assertNoFailures(what: string): void {
    const detail = this.failures
      .map((f) => `  #${f.index} [${f.generator}: ${f.steps.join(', ')}] ${f.problem}\n    input: ${f.input}`)
      .join('\n');
    assert.equal(this.failureCount, 0, `${what}: ${this.failureCount} inputs broke the decoder promise (seed ${SEED}; reproduce with FUZZ_SEED=${SEED})\n${detail}`);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}: ${err.message.slice(0, 300)}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return `non-error thrown: ${String(err)}`;
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.uint32() & 0xff;
  return b;
}

/** A violation must be a real ContractViolation with a documented reason and a non-empty field and rule. */
function checkViolation(err: ContractViolation): string | undefined {
  if (!(err.reason in REJECT_REASONS)) return `undocumented reason ${err.reason}`;
  if (err.field.length === 0 || err.rule.length === 0) return 'violation without field or rule';
  return undefined;
}

/** What a worker does with a rejected record: it must always be able to dead-letter it. */
function checkDeadLetter(record: InboundRecord, error: ContractViolation): string | undefined {
  const dl = encodeDeadLetter({ record, source: { topic: 'fuzz', partition: 0, offset: '0' }, error, worker: 'fuzz', at: START });
  const message = dl.headers[DLQ_HEADERS.message];
  if (dl.headers[DLQ_HEADERS.reason] !== error.reason) return 'dead letter lost its reason';
  if (typeof message !== 'string' || message.length > 1024) return 'dead-letter message missing or longer than 1024';
  if (dl.value !== record.value) return 'dead letter changed the value';
  return undefined;
}

/**
 * One to `max` random byte-level mutations, each named in `steps`. `donors` are other valid
 * inputs to splice from.
 */
function mutateBytes(rng: Rng, input: Buffer, steps: string[], donors: readonly Buffer[], max = 4): Buffer {
  let b = Buffer.from(input);
  const n = rng.int(1, max);
  for (let k = 0; k < n; k++) {
    const at = b.length === 0 ? 0 : rng.int(0, b.length - 1);
    switch (rng.int(0, 9)) {
      case 0: {
        const flips = rng.int(1, 8);
        for (let f = 0; f < flips && b.length > 0; f++) {
          const p = rng.int(0, b.length - 1);
          b[p] = (b[p] ?? 0) ^ (1 << rng.int(0, 7));
        }
        steps.push(`flip ${flips} bits`);
        break;
      }
      case 1:
        if (b.length > 0) b[at] = rng.pick([0x00, 0xff, 0x7f, 0x80, rng.uint32() & 0xff]);
        steps.push(`set byte ${at}`);
        break;
      case 2: {
        const len = rng.chance(0.5) ? rng.int(0, Math.min(b.length, 64)) : rng.int(0, b.length);
        b = b.subarray(0, len);
        steps.push(`truncate to ${len}`);
        break;
      }
      case 3: {
        const ins = randomBytes(rng, rng.int(1, rng.chance(0.8) ? 16 : 2048));
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        steps.push(`insert ${ins.length} at ${at}`);
        break;
      }
      case 4: {
        const len = rng.int(1, rng.chance(0.8) ? 16 : 4096);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        steps.push(`delete ${len} at ${at}`);
        break;
      }
      case 5: {
        const len = rng.int(1, 512);
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        steps.push(`duplicate ${len} at ${at}`);
        break;
      }
      case 6: {
        const donor = rng.pick(donors);
        const from = donor.length === 0 ? 0 : rng.int(0, donor.length - 1);
        b = Buffer.concat([b.subarray(0, at), donor.subarray(from, from + rng.int(1, 4096))]);
        steps.push(`splice donor at ${at}`);
        break;
      }
      case 7: {
        const junk = randomBytes(rng, rng.int(1, 256));
        b = Buffer.concat([b, junk]);
        steps.push(`append ${junk.length}`);
        break;
      }
      case 8: {
        const len = rng.int(1, 64);
        randomBytes(rng, len).copy(b, at);
        steps.push(`overwrite ${len} at ${at}`);
        break;
      }
      default: {
        const len = Math.min(rng.int(1, 32), b.length - at);
        if (len > 0) b.fill(rng.pick([0x00, 0xff]), at, at + len);
        steps.push(`fill ${len} at ${at}`);
      }
    }
  }
  return b;
}

function memoryNow(): { rss: number; external: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, external: m.external + m.arrayBuffers };
}

function assertMemoryBounded(what: string, before: { rss: number; external: number }, peak: { rss: number; external: number }): void {
  const after = memoryNow();
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`${what}: RSS ${mib(before.rss)} -> peak ${mib(peak.rss)} -> ${mib(after.rss)}; external ${mib(before.external)} -> peak ${mib(peak.external)} -> ${mib(after.external)}`);
  for (const [name, b, p] of [['RSS', before.rss, Math.max(peak.rss, after.rss)], ['external memory', before.external, Math.max(peak.external, after.external)]] as const) {
    assert.ok(p - b < MEMORY_BUDGET, `${what}: ${name} grew by ${mib(p - b)}, budget ${mib(MEMORY_BUDGET)} (seed ${SEED})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Frames: image crafting

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/** A ~60-byte 8-bit gray PNG whose IHDR declares width x height (a decompression bomb's header). */
function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (gray), no interlace
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(2048))), pngChunk('IEND', Buffer.alloc(0))]);
}

/** The PNG with other IHDR dimensions; the chunk CRC is fixed unless `fixCrc` is false. */
function withPngDims(png: Buffer, width: number, height: number, fixCrc: boolean): Buffer {
  const b = Buffer.from(png);
  if (b.length < 33) return b;
  b.writeUInt32BE(width >>> 0, 16);
  b.writeUInt32BE(height >>> 0, 20);
  if (fixCrc) b.writeUInt32BE(crc32(b.subarray(12, 29)) >>> 0, 29);
  return b;
}

/** Offset of the first JPEG start-of-frame marker, walking segments as the probe does. */
function jpegSofOffset(jpeg: Buffer): number | undefined {
  let i = 2;
  while (i + 3 < jpeg.length && jpeg[i] === 0xff) {
    const m = jpeg[i + 1] ?? 0;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return i;
    if (m === 0xda || m === 0xd9) return undefined;
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  return undefined;
}

/** The JPEG with other start-of-frame dimensions (16 bits each). */
function withJpegDims(jpeg: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(jpeg);
  const sof = jpegSofOffset(b);
  if (sof === undefined || sof + 9 > b.length) return b;
  b.writeUInt16BE(height & 0xffff, sof + 5);
  b.writeUInt16BE(width & 0xffff, sof + 7);
  return b;
}

/** Offsets of a JPEG's marker segments before the scan (SOI excluded), as a segment walker sees them. */
function jpegSegments(jpeg: Buffer): number[] {
  const out: number[] = [];
  let i = 2;
  while (i + 3 < jpeg.length && jpeg[i] === 0xff && jpeg[i + 1] !== 0xda) {
    out.push(i);
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  return out;
}

/**
 * One change to the container structure that the image probe walks (JPEG marker segments, PNG
 * chunks before the image data), where plain byte noise rarely lands.
 */
function mutateStructure(rng: Rng, base: FrameBase, steps: string[]): Buffer {
  const b = Buffer.from(base.value);
  if (base.contentType === 'image/jpeg') {
    const segments = jpegSegments(b);
    const at = rng.pick(segments.length > 0 ? segments : [2]);
    const length = at + 3 < b.length ? b.readUInt16BE(at + 2) : 0;
    switch (rng.int(0, 5)) {
      case 0: {
        const marker = rng.pick([0x00, 0x01, 0xd0, 0xd8, 0xd9, 0xda, 0xc0, 0xc2, 0xc4, 0xc8, 0xcc, 0xdc, 0xf0, 0xfe, 0xff, rng.uint32() & 0xff]);
        if (at + 1 < b.length) b[at + 1] = marker;
        steps.push(`JPEG marker at ${at} -> ${marker.toString(16)}`);
        return b;
      }
      case 1: {
        const v = rng.pick([0, 1, 2, 3, length - 1, length + 1, length + 2, 0xffff, rng.int(0, 0xffff)]) & 0xffff;
        if (at + 3 < b.length) b.writeUInt16BE(v, at + 2);
        steps.push(`JPEG segment length at ${at} -> ${v}`);
        return b;
      }
      case 2: {
        const ins = rng.pick([Buffer.alloc(rng.int(1, 4), 0xff), Buffer.from([0xff, 0x00]), Buffer.from([0xff, 0x00, 0x00, rng.int(2, 40)]), randomBytes(rng, rng.int(1, 8)), Buffer.from([0xff, 0x01]), Buffer.from([0xff, 0xd0])]);
        steps.push(`JPEG insert ${ins.toString('hex')} at ${at}`);
        return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
      }
      case 3: {
        // A second start-of-frame, maybe declaring something else.
        const sof = jpegSofOffset(b);
        if (sof === undefined) return b;
        const seg = Buffer.from(b.subarray(sof, sof + 2 + b.readUInt16BE(sof + 2)));
        if (seg.length >= 9 && rng.chance(0.7)) {
          seg.writeUInt16BE(rng.pick([1, 60_000, 65_535, rng.int(1, 300)]), 5);
          seg.writeUInt16BE(rng.pick([1, 60_000, 65_535, rng.int(1, 300)]), 7);
        }
        const where = rng.pick(segments.length > 0 ? segments : [2]);
        steps.push(`JPEG extra SOF ${seg.length >= 9 ? `${seg.readUInt16BE(7)}x${seg.readUInt16BE(5)}` : ''} at ${where}`);
        return Buffer.concat([b.subarray(0, where), seg, b.subarray(where)]);
      }
      case 4:
        steps.push(`JPEG drop segment at ${at}`);
        return Buffer.concat([b.subarray(0, at), b.subarray(at + 2 + length)]);
      default: {
        const seg = b.subarray(at, at + 2 + length);
        const where = rng.pick(segments.length > 0 ? segments : [2]);
        steps.push(`JPEG copy segment ${at} to ${where}`);
        return Buffer.concat([b.subarray(0, where), seg, b.subarray(where)]);
      }
    }
  }
  // PNG: IHDR is bytes 8..33 (length, type, 13 bytes of data, CRC).
  switch (rng.int(0, 4)) {
    case 0: {
      const v = rng.pick([0, 12, 14, 0xffffffff, rng.uint32()]);
      b.writeUInt32BE(v >>> 0, 8);
      steps.push(`PNG IHDR length -> ${v}`);
      return b;
    }
    case 1: {
      // Bit depth, colour type, compression, filter, interlace: the combinations libpng refuses too.
      const field = rng.int(24, 28);
      b[field] = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 255]);
      b.writeUInt32BE(crc32(b.subarray(12, 29)) >>> 0, 29);
      steps.push(`PNG IHDR byte ${field} -> ${b[field]}`);
      return b;
    }
    case 2: {
      const chunk = pngChunk(rng.pick(['tEXt', 'IHDR', 'IDAT', 'IEND', 'acTL', 'zzZz']), randomBytes(rng, rng.int(0, 13)));
      steps.push(`PNG chunk ${chunk.toString('latin1', 4, 8)} before IHDR`);
      return Buffer.concat([b.subarray(0, 8), chunk, b.subarray(8)]);
    }
    case 3: {
      const ihdr = Buffer.from(b.subarray(8, 33));
      ihdr.writeUInt32BE(rng.pick([1, 60_000, rng.int(1, 300)]), 8);
      ihdr.writeUInt32BE(crc32(ihdr.subarray(4, 21)) >>> 0, 21);
      steps.push('PNG second IHDR after the first');
      return Buffer.concat([b.subarray(0, 33), ihdr, b.subarray(33)]);
    }
    default: {
      const idat = b.indexOf('IDAT', 33, 'latin1');
      steps.push('PNG drop everything between IHDR and IDAT');
      return idat > 37 ? Buffer.concat([b.subarray(0, 33), b.subarray(idat - 4)]) : b;
    }
  }
}

/**
 * A JPEG whose header walk differs between a naive segment walker and libjpeg: `FF 00` is no
 * marker (libjpeg skips it as garbage and scans on), but read as a segment with a length it
 * leads into an APP1 payload holding a fake 32x32 start-of-frame, while the decoder reads the
 * real SOF, here set to `width` x `height`.
 */
function probeConfusionJpeg(jpeg: Buffer, width: number, height: number): Buffer {
  const real = withJpegDims(jpeg, width, height);
  const fakeSof = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x20, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00]);
  const payload = Buffer.concat([Buffer.alloc(4, 0x41), fakeSof, Buffer.alloc(4, 0x41)]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0x00, payload.length + 2]), payload]);
  // `FF 00 00 0A`: read as a segment of length 10 it ends exactly at the fake SOF inside APP1.
  return Buffer.concat([real.subarray(0, 2), Buffer.from([0xff, 0x00, 0x00, 0x0a]), app1, real.subarray(2)]);
}

// ---------------------------------------------------------------------------------------------
// Frames: the corpus, built like the simulator builds frames

interface FrameBase {
  name: string;
  contentType: FrameContentType;
  width: number;
  height: number;
  /** As produced (strings); records get them as Buffers, as kafkajs delivers them. */
  headers: Record<string, string>;
  value: Buffer;
}

const frameHeaders = (id: string, contentType: FrameContentType, width: number, height: number, extra: Record<string, string> = {}) => ({
  ...extra,
  'frame-id': `fuzz/line-1/cam-1/${id}`,
  'camera-id': 'line-1/cam-1',
  'line-id': 'line-1',
  'captured-at': String(START),
  'content-type': contentType,
  'width': String(width),
  'height': String(height),
});

async function buildFrameCorpus(): Promise<{ valid: FrameBase[]; overLimit: FrameBase[] }> {
  const rng = createRng(SEED, 'frame-corpus');
  const sizes: [number, number][] = [[32, 32], [48, 40], [64, 64], [96, 72], [128, 96], [128, 128], [40, 128]];
  const valid: FrameBase[] = [];
  const overLimit: FrameBase[] = [];
  let n = 0;
  const add = (list: FrameBase[], name: string, contentType: FrameContentType, width: number, height: number, value: Buffer, extra: Record<string, string> = {}) => {
    list.push({ name, contentType, width, height, value, headers: frameHeaders(String(n++), contentType, width, height, extra) });
  };
  for (const [w, h] of [...sizes, [160, 120], [129, 64]] as [number, number][]) {
    const list = w <= FRAME_LIMITS.maxWidth && h <= FRAME_LIMITS.maxHeight ? valid : overLimit;
    // The simulator's own records (gray8 and PNG), truth header included.
    for (const imageFormat of ['gray8', 'png'] as const) {
      const plan = createFramePlan({ seed: SEED, runId: 'fuzz', start: START, width: w, height: h, imageFormat, defectRate: 0.5 });
      const planned = await plan.at(rng.int(0, 50));
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(planned.record.headers)) headers[k] = v;
      list.push({ name: `sim-${imageFormat}-${w}x${h}`, contentType: planned.frame.contentType, width: w, height: h, value: planned.record.value, headers });
    }
    // Other encodings of a simulator frame's pixels: what other cameras and gateways send.
    const pixels = createFramePlan({ seed: SEED, runId: 'fuzz', start: START, width: w, height: h }).render(rng.int(0, 50)).pixels;
    const raw = () => sharp(pixels, { raw: { width: w, height: h, channels: 1 } });
    const variants: [string, FrameContentType, Promise<Buffer>][] = [
      ['jpeg-gray', 'image/jpeg', raw().toColourspace('b-w').jpeg({ quality: rng.int(30, 95) }).toBuffer()],
      ['jpeg-rgb', 'image/jpeg', raw().toColourspace('srgb').jpeg({ quality: rng.int(30, 95), chromaSubsampling: '4:2:0' }).toBuffer()],
      ['jpeg-progressive', 'image/jpeg', raw().jpeg({ progressive: true, quality: 80 }).toBuffer()],
      ['png-interlaced', 'image/png', raw().toColourspace('b-w').png({ progressive: true }).toBuffer()],
      ['png-rgba', 'image/png', raw().toColourspace('srgb').ensureAlpha().png().toBuffer()],
      ['png-palette', 'image/png', raw().toColourspace('srgb').png({ palette: true, colours: 16 }).toBuffer()],
      ['png-16bit', 'image/png', raw().toColourspace('grey16').png().toBuffer()],
    ];
    for (const [name, contentType, image] of variants) add(list, `${name}-${w}x${h}`, contentType, w, h, await image);
  }
  return { valid, overLimit };
}

const frameCorpus = await buildFrameCorpus();
const frameDonors = frameCorpus.valid.map((b) => b.value);
const jpegBases = frameCorpus.valid.filter((b) => b.contentType === 'image/jpeg');
const pngBases = frameCorpus.valid.filter((b) => b.contentType === 'image/png');

// ---------------------------------------------------------------------------------------------
// Frames: input generation

const NUMBER_GARBAGE = [
  '', '-1', '0', '1.5', '1e3', ' 12', '12 ', '+12', '0x10', '12\n', '99999999999999999', '9007199254740993', '\u0663', 'NaN', 'Infinity',
  '8640000000000000', '8640000000000001', '00000000000000000064', '0000000000000064', '-0', '4096', '4097', '65535', '4294967296',
];
const ID_GARBAGE = ['', ' ', 'line 1', '-x', '.hidden', 'ä', 'a'.repeat(129), 'a'.repeat(70_000), 'a\u0000b', '../../etc', 'ok\n', '\uffff'];
const CONTENT_TYPE_GARBAGE = ['IMAGE/PNG', ' image/jpeg ', 'image/png; q=1', 'image/gif', 'image/x-gray16', 'text/plain', '', 'image/', 'image/x-gray8\u0000'];
const FRAME_HEADER_NAMES = ['frame-id', 'camera-id', 'line-id', 'captured-at', 'content-type', 'width', 'height'];

function garbageHeaderValue(rng: Rng, name: string): HeaderValue {
  switch (rng.int(0, 7)) {
    case 0:
      return null;
    case 1:
      return [];
    case 2:
      return randomBytes(rng, rng.int(0, 64));
    case 3:
      return 'x'.repeat(rng.int(1, 100_000));
    case 4:
      return rng.pick(NUMBER_GARBAGE);
    case 5:
      return rng.pick(ID_GARBAGE);
    case 6:
      return rng.pick(CONTENT_TYPE_GARBAGE);
    default:
      return name === 'content-type' ? rng.pick(['image/png', 'image/jpeg', 'image/x-gray8']) : String(rng.int(0, 5000));
  }
}

function mutateHeaders(rng: Rng, headers: Headers, steps: string[]): void {
  const names = [...FRAME_HEADER_NAMES, 'x-sim-truth', 'unknown-header'];
  const name = rng.pick(names);
  const current = headers[name];
  switch (rng.int(0, 9)) {
    case 0:
      delete headers[name];
      steps.push(`delete ${name}`);
      break;
    case 1:
      headers[name] = current === undefined || current === null ? ['a', 'b'] : Array.isArray(current) ? [...current, ...current] : [current, current];
      steps.push(`duplicate ${name}`);
      break;
    case 2:
      // As kafkajs delivers a header sent once in an array (valid), or a header without a value.
      headers[name] = typeof current === 'string' || Buffer.isBuffer(current) ? [current] : null;
      steps.push(typeof current === 'string' || Buffer.isBuffer(current) ? `${name} as one-element array` : `${name} without a value`);
      break;
    case 3:
      headers[name] = rng.pick(NUMBER_GARBAGE);
      steps.push(`${name} = number garbage`);
      break;
    case 4:
      headers['captured-at'] = rng.pick(['0', '1', String(MAX_EPOCH_MS), String(MAX_EPOCH_MS + 1), '253402300799999', String(START * 1000), '-1']);
      steps.push('captured-at far away');
      break;
    case 5: {
      const dim = rng.pick(['width', 'height']);
      headers[dim] = String(rng.pick([0, 1, 4097, 60_000, 65_535, 2 ** 31, 2 ** 32 + 64, rng.int(1, 200)]));
      steps.push(`${dim} huge or off`);
      break;
    }
    case 6:
      headers['content-type'] = rng.pick([...CONTENT_TYPE_GARBAGE, 'image/png', 'image/jpeg', 'image/x-gray8']);
      steps.push('content-type swapped');
      break;
    case 7:
      headers[name] = typeof current === 'string' ? Buffer.from(current, 'latin1') : randomBytes(rng, rng.int(0, 32));
      steps.push(`${name} as raw bytes`);
      break;
    default:
      headers[name] = garbageHeaderValue(rng, name);
      steps.push(`${name} = garbage`);
  }
}

/** kafkajs delivers header values as Buffers (an array when a key repeats, null when valueless). */
function toKafkaHeaders(headers: Headers, asBuffers: boolean): IHeaders {
  const out: Headers = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = !asBuffers || v === null ? v : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)) : typeof v === 'string' ? Buffer.from(v) : v;
  }
  // IHeaders has no null, but kafkajs does deliver null for a header without a value.
  return out as unknown as IHeaders;
}

interface FrameCase {
  generator: string;
  steps: string[];
  record: InboundRecord;
}

function frameCase(index: number): FrameCase {
  const rng = createRng(SEED, 'frames', index);
  const steps: string[] = [];
  let base = rng.pick(frameCorpus.valid);
  let headers: Headers = { ...base.headers };
  let value: Buffer | null = base.value;
  let generator: string;
  const roll = rng.next();
  if (roll < 0.1) {
    generator = 'valid';
    // Harmless variations the contract allows.
    if (base.contentType !== 'image/x-gray8' && rng.chance(0.5)) {
      delete headers.width;
      delete headers.height;
      steps.push('no width/height');
    }
    if (rng.chance(0.2)) {
      headers['content-type'] = ` ${base.contentType.toUpperCase()} `;
      steps.push('content-type case and spaces');
    }
    if (rng.chance(0.2)) {
      headers['frame-id'] = [`f-${index}`];
      steps.push('frame-id as one-element array');
    }
  } else if (roll < 0.36) {
    generator = 'value-mutation';
    value = mutateBytes(rng, base.value, steps, frameDonors);
    if (rng.chance(0.2)) mutateHeaders(rng, headers, steps);
  } else if (roll < 0.42) {
    generator = 'container-structure';
    base = rng.pick(rng.chance(0.6) ? jpegBases : pngBases);
    headers = { ...base.headers };
    if (rng.chance(0.7)) {
      delete headers.width;
      delete headers.height;
    }
    value = mutateStructure(rng, base, steps);
  } else if (roll < 0.6) {
    generator = 'header-mutation';
    for (let k = rng.int(1, 3); k > 0; k--) mutateHeaders(rng, headers, steps);
  } else if (roll < 0.7) {
    generator = 'dimension-bomb';
    const huge = rng.chance(0.7);
    const w = huge ? rng.pick([FRAME_LIMITS.maxWidth + 1, 4097, 60_000, 65_535, rng.int(1, 65_535)]) : rng.int(0, FRAME_LIMITS.maxWidth);
    const h = huge ? rng.pick([FRAME_LIMITS.maxHeight + 1, 4097, 60_000, 65_535, rng.int(1, 65_535)]) : rng.int(0, FRAME_LIMITS.maxHeight);
    if (rng.chance(0.5)) {
      base = rng.pick(pngBases);
      const bigW = rng.chance(0.3) ? rng.pick([2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) : w;
      value = rng.chance(0.3) ? bombPng(bigW, h) : withPngDims(base.value, bigW, h, rng.chance(0.8));
      steps.push(`PNG IHDR ${bigW}x${h}`);
    } else {
      base = rng.pick(jpegBases);
      value = withJpegDims(base.value, w, h);
      steps.push(`JPEG SOF ${w}x${h}`);
    }
    headers = { ...base.headers };
    const dimHeaders = rng.pick(['none', 'as declared', 'the real ones'] as const);
    if (dimHeaders === 'none') {
      delete headers.width;
      delete headers.height;
    } else if (dimHeaders === 'as declared') {
      headers.width = String(w);
      headers.height = String(h);
    }
  } else if (roll < 0.74) {
    generator = 'probe-confusion';
    base = rng.pick(jpegBases);
    headers = { ...base.headers };
    delete headers.width;
    delete headers.height;
    const [w, h] = rng.pick([[60_000, 60_000], [65_535, 1], [base.width * 2, base.height], [base.width, base.height], [16, 64]] as const);
    value = rng.chance(0.7) ? probeConfusionJpeg(base.value, w, h) : mutateBytes(rng, probeConfusionJpeg(base.value, w, h), steps, frameDonors, 2);
    steps.push(`FF 00 bait, real SOF ${w}x${h}`);
  } else if (roll < 0.78) {
    generator = 'over-limit-image';
    base = rng.pick(frameCorpus.overLimit);
    headers = { ...base.headers };
    value = base.value;
    steps.push(base.name);
  } else if (roll < 0.83) {
    generator = 'type-confusion';
    const other = rng.pick(frameCorpus.valid);
    value = other.value;
    steps.push(`${base.name} headers, ${other.name} bytes`);
  } else if (roll < 0.86) {
    generator = 'size';
    const kind = rng.int(0, 3);
    value = kind === 0 ? null : kind === 1 ? Buffer.alloc(0) : randomBytes(rng, FRAME_LIMITS.maxBytes + rng.int(1, 2048));
    steps.push(kind === 0 ? 'null value' : kind === 1 ? 'empty value' : 'over maxBytes');
    if (kind >= 2 && rng.chance(0.5)) {
      const side = Math.ceil(Math.sqrt(value?.length ?? 0));
      headers = frameHeaders(`s${index}`, 'image/x-gray8', side, side);
    }
  } else {
    generator = 'random';
    const kind = rng.int(0, 3);
    if (kind === 0) {
      value = randomBytes(rng, rng.int(0, 4096));
      steps.push('random bytes');
    } else if (kind === 1) {
      // A real image header, then noise: gets past the probe and into the decoder.
      value = Buffer.concat([base.value.subarray(0, rng.int(8, 400)), randomBytes(rng, rng.int(0, 4096))]);
      steps.push(`${base.name} header + noise`);
    } else if (kind === 2) {
      const w = rng.int(1, 160);
      const h = rng.int(1, 160);
      value = randomBytes(rng, w * h + (rng.chance(0.7) ? 0 : rng.int(-5, 5)));
      headers = frameHeaders(`r${index}`, 'image/x-gray8', w, h);
      steps.push(`random gray8 ${w}x${h}`);
    } else {
      value = randomBytes(rng, rng.int(1, 512));
      headers = {};
      for (let k = rng.int(0, 9); k > 0; k--) {
        const name = rng.chance(0.8) ? rng.pick(FRAME_HEADER_NAMES) : randomBytes(rng, 4).toString('hex');
        headers[name] = garbageHeaderValue(rng, name);
      }
      steps.push('random bytes and headers');
    }
  }
  return { generator, steps, record: { key: 'line-1/cam-1', value, headers: toKafkaHeaders(headers, rng.chance(0.85)) } };
}

function frameInputText(record: InboundRecord): string {
  const headers = Object.entries(record.headers ?? {}).map(([k, v]) => {
    const show = (x: unknown) => (Buffer.isBuffer(x) ? x.toString('latin1') : String(x)).slice(0, 40);
    return `${k}=${Array.isArray(v) ? `[${v.map(show).join('|')}]` : show(v)}`;
  });
  return `headers {${headers.join(', ')}} value ${record.value === null ? 'null' : `${record.value.length} bytes ${record.value.subarray(0, 48).toString('hex')}`}`;
}

/** Why sharp refused a frame the contract had accepted. */
function decodeFailureKind(err: ContractViolation): string {
  if (/pixel limit/i.test(err.message)) return 'pixel-limit';
  if (/decoded size must match/.test(err.rule)) return 'size-mismatch';
  return 'unreadable';
}

/** The vision worker's chain for one record: contract, then pixels. */
async function runFrame(index: number, tally: Tally): Promise<void> {
  let c: FrameCase | undefined;
  try {
    c = frameCase(index);
    tally.generated(c.generator);
    const fail = (problem: string) => tally.fail({ index, generator: c?.generator ?? '?', steps: c?.steps ?? [], problem, input: c ? frameInputText(c.record) : '?' });
    const r = decodeFrame(c.record, FRAME_LIMITS);
    if (!r.ok) {
      const bad = (r.error instanceof ContractViolation ? undefined : 'rejected with something else than a ContractViolation') ?? checkViolation(r.error) ?? checkDeadLetter(c.record, r.error);
      if (bad) return fail(bad);
      tally.add(`contract rejected: ${r.error.reason}`);
      return;
    }
    const frame = r.value;
    if (frame.width < 1 || frame.height < 1 || frame.width > FRAME_LIMITS.maxWidth || frame.height > FRAME_LIMITS.maxHeight) {
      return fail(`accepted a ${frame.width}x${frame.height} frame beyond the limits`);
    }
    let image;
    try {
      image = await decodePixels(frame);
    } catch (err) {
      if (!(err instanceof ContractViolation)) return fail(`decodePixels threw ${describeError(err)}`);
      const bad = checkViolation(err) ?? checkDeadLetter(c.record, err);
      if (bad) return fail(bad);
      const kind = decodeFailureKind(err);
      // The probe enforces the limits; the decoder refusing a pixel count means they disagree.
      if (kind === 'pixel-limit') return fail(`the probe read ${frame.width}x${frame.height} but the decoder refused the pixel count: ${err.message}`);
      tally.add(`decode rejected: ${err.reason} (${kind})`);
      return;
    }
    const limit = FRAME_LIMITS.maxWidth * FRAME_LIMITS.maxHeight * 1; // one 8-bit gray channel
    if (image.pixels.length > limit) return fail(`decoded ${image.pixels.length} bytes, limit ${limit}`);
    if (image.pixels.length !== image.width * image.height || image.width !== frame.width || image.height !== frame.height) {
      return fail(`decoded ${image.width}x${image.height} in ${image.pixels.length} bytes for a ${frame.width}x${frame.height} frame`);
    }
    tally.add(`decoded: ${frame.contentType}`);
  } catch (err) {
    tally.fail({ index, generator: c?.generator ?? '?', steps: c?.steps ?? [], problem: `threw ${describeError(err)}`, input: c ? frameInputText(c.record) : '?' });
  }
}

// ---------------------------------------------------------------------------------------------
// Sensor readings: corpus and input generation

/** A token written into the JSON text as it is: NaN, Infinity, 1e999, deep nesting. */
class Raw {
  constructor(readonly text: string) {}
}
type Json = null | boolean | number | string | Raw | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function serialize(v: Json): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(serialize).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${serialize(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const isObject = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw);

function clone(v: Json): Json {
  if (Array.isArray(v)) return v.map(clone);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
  return v;
}

/** Every path in a JSON tree (root excluded), at most `max` of them. */
function paths(v: Json, max = 2000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (x: Json, p: (string | number)[]) => {
    if (out.length >= max) return;
    if (p.length > 0) out.push(p);
    if (Array.isArray(x)) x.forEach((y, i) => walk(y, [...p, i]));
    else if (isObject(x)) for (const [k, y] of Object.entries(x)) walk(y, [...p, k]);
  };
  walk(v, []);
  return out;
}

function setAt(root: Json, path: (string | number)[], value: Json | undefined): void {
  let parent: Json = root;
  for (const key of path.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(parent) ? parent[Number(key)] : isObject(parent) ? parent[String(key)] : undefined;
    if (next === undefined) return;
    parent = next;
  }
  const last = path[path.length - 1];
  if (last === undefined) return;
  if (Array.isArray(parent)) {
    if (value === undefined) parent.splice(Number(last), 1);
    else parent[Number(last)] = value;
  } else if (isObject(parent)) {
    if (value === undefined) delete parent[String(last)];
    else parent[String(last)] = value;
  }
}

const SPECIAL_NUMBERS = ['NaN', 'Infinity', '-Infinity', '1e308', '-1e308', '1e999', '-1e999', '-0', '5e-324', '0.1e-400', '9007199254740993', '1.7976931348623157e308', '00', '1.', '.5', '+1', '0x10'];
const FAR_TIMES = [0, 1, -1, -0, 0.5, MAX_EPOCH_MS, MAX_EPOCH_MS + 1, 253_402_300_799_999, 1e20, START * 1000, START - 10 * 365 * 86_400_000, Number.MAX_SAFE_INTEGER];

function weirdValue(rng: Rng, maxDepth: number): Json {
  switch (rng.int(0, 12)) {
    case 0:
      return new Raw(rng.pick(SPECIAL_NUMBERS));
    case 1:
      return rng.pick([null, true, false]);
    case 2:
      return rng.pick(['', '1.5', 'NaN', '0', 'pump-1', 'ä', '\u0000']);
    case 3:
      return rng.pick<Json>([[], {}, [[]], [{}], { a: 1 }]);
    case 4: {
      // Deep nesting, as text (a JS tree that deep would overflow the serialiser).
      const d = rng.int(1, maxDepth);
      return rng.chance(0.5) ? new Raw('['.repeat(d) + ']'.repeat(d)) : new Raw('{"a":'.repeat(d) + '1' + '}'.repeat(d));
    }
    case 5:
      return 'x'.repeat(rng.int(100, 40_000));
    case 6:
      return rng.pick([1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -1, 0, 0.1, 2 ** 53]);
    case 7:
      return rng.pick(FAR_TIMES);
    case 8:
      return Array.from({ length: rng.int(1, 300) }, () => rng.normal());
    case 9:
      return { toString: 1, constructor: 2, valueOf: 'x' };
    case 10:
      return new Raw(`"${'\\u'.concat('d800')}"`); // a lone surrogate escape
    case 11:
      return rng.normal() * 10 ** rng.int(-10, 10);
    default:
      return rng.uint32();
  }
}

const CHANNEL_GARBAGE = ['', '1abc', '_x', 'a b', 'ä', 'a'.repeat(65), '__proto__', 'constructor', 'hasOwnProperty', 'a\u0000'];

function mutateSensor(rng: Rng, msg: JsonObject, steps: string[], maxDepth: number): Json {
  let root: Json = msg;
  const isChunk = 'samples' in msg || 'chunkId' in msg;
  const channels = Array.isArray(msg.channels) ? msg.channels : undefined;
  const samples = Array.isArray(msg.samples) ? msg.samples : undefined;
  const values = isObject(msg.values) ? msg.values : undefined;
  const rows = (samples ?? []).filter((r): r is Json[] => Array.isArray(r));
  switch (rng.int(0, 11)) {
    case 0: {
      const p = rng.pick([...paths(msg), ['ts']]);
      setAt(msg, p, weirdValue(rng, maxDepth));
      steps.push(`${p.join('.')} = weird`);
      break;
    }
    case 1: {
      const p = rng.pick([...paths(msg), ['assetId']]);
      setAt(msg, p, undefined);
      steps.push(`delete ${p.join('.')}`);
      break;
    }
    case 2: {
      const key = rng.pick(['extra', 'schemaVersion', '__proto__', 'constructor', 'x'.repeat(1000)]);
      Object.defineProperty(msg, key, { value: weirdValue(rng, maxDepth), enumerable: true, writable: true, configurable: true });
      steps.push(`add unknown key ${key.slice(0, 20)}`);
      break;
    }
    case 3: {
      const numeric = paths(msg).filter((q) => q[0] === 'values' || q[0] === 'samples' || q[0] === 'periodMs');
      const p = numeric.length > 0 ? rng.pick(numeric) : ['ts'];
      setAt(msg, p, new Raw(rng.pick(SPECIAL_NUMBERS)));
      steps.push(`${p.join('.')} = special number`);
      break;
    }
    case 4: {
      const key = isChunk ? 't0' : 'ts';
      msg[key] = rng.pick(FAR_TIMES);
      steps.push(`${key} far away`);
      break;
    }
    case 5:
      msg.periodMs = rng.pick([0, -1, 1e-9, 0.5, 86_400_000, 86_400_001, 1e308]);
      steps.push('periodMs odd');
      break;
    case 6: {
      // Channels: unknown but well-formed names, malformed names, duplicates, too many, too few.
      const what = rng.int(0, 4);
      const count = what === 3 ? SENSOR_LIMITS.maxChannels + rng.int(-1, 20) : 1;
      for (let k = 0; k < count; k++) {
        const name = what === 0 || what === 3 ? `unknown_${k}_${rng.int(0, 999)}` : what === 1 ? rng.pick(CHANNEL_GARBAGE) : (typeof channels?.[0] === 'string' ? channels[0] : 'current');
        if (what === 4) {
          if (channels) channels.pop();
          else if (values) for (const c of Object.keys(values)) delete values[c];
          continue;
        }
        if (channels) {
          channels.push(name);
          for (const row of rows) row.push(rng.normal());
        } else if (values) Object.defineProperty(values, String(name), { value: rng.normal(), enumerable: true, writable: true, configurable: true });
      }
      steps.push(['unknown channel', 'malformed channel', 'duplicate channel', `${count} channels`, 'drop channels'][what] ?? '?');
      break;
    }
    case 7: {
      const what = rng.int(0, 3);
      if (what === 0 && rows.length > 0) rng.pick(rows).push(1);
      else if (what === 1 && rows.length > 0) rng.pick(rows).pop();
      else if (what === 2 && samples) {
        const width = channels?.length ?? 1;
        for (let k = SENSOR_LIMITS.maxSamples + rng.int(-2, 5) - samples.length; k > 0; k--) samples.push(Array.from({ length: width }, () => rng.normal()));
      } else if (samples) samples.length = 0;
      steps.push(['long row', 'short row', 'many rows', 'no rows'][what] ?? '?');
      break;
    }
    case 8: {
      const key = rng.pick(['assetId', 'readingId', 'chunkId']);
      msg[key] = rng.chance(0.7) ? rng.pick(ID_GARBAGE) : weirdValue(rng, maxDepth);
      steps.push(`${key} odd`);
      break;
    }
    case 9: {
      // Shape confusion: a reading that looks like a chunk and the other way round.
      if (isChunk) delete msg[rng.pick(['chunkId', 'samples', 'channels'])];
      else msg[rng.pick(['samples', 'chunkId'])] = rng.chance(0.5) ? [[1]] : 'c-1';
      steps.push('shape confusion');
      break;
    }
    case 10:
      root = rng.pick<Json>([[msg], 1, 'text', null, true, [], new Raw('{}'), new Raw(`${serialize(msg)}${serialize(msg)}`)]);
      steps.push('wrong root');
      break;
    default: {
      const key = rng.pick(Object.keys(msg));
      if (key !== undefined) msg[key] = weirdValue(rng, maxDepth);
      steps.push(`${key ?? '?'} wrong type`);
    }
  }
  return root;
}

function sensorCorpus(format: 'reading' | 'chunk'): { text: string; json: JsonObject }[] {
  const out: { text: string; json: JsonObject }[] = [];
  for (const chunkSize of format === 'reading' ? [1] : [1, 4, 16, 40]) {
    const plan = createSensorPlan({ seed: SEED, runId: 'fuzz', start: START, assets: 3, format, chunkSize, anomalyRate: 0.3 });
    for (const m of plan.takeSync(16)) {
      const text = m.record.value.toString('utf8');
      out.push({ text, json: JSON.parse(text) as JsonObject });
    }
  }
  return out;
}

const sensorBases = { reading: sensorCorpus('reading'), chunk: sensorCorpus('chunk') };
const sensorDonors = [...sensorBases.reading, ...sensorBases.chunk].map((b) => Buffer.from(b.text));
const JSON_SOUP = ['{', '}', '[', ']', ',', ':', '"assetId"', '"readingId"', '"chunkId"', '"ts"', '"t0"', '"periodMs"', '"channels"', '"samples"', '"values"', '"pump-1"', '"current"', '1', '-0', '1e999', '0.5', 'null', 'true', '"', ' ', '\n'];

interface SensorCase {
  generator: string;
  steps: string[];
  record: InboundRecord;
  limits: SensorLimits;
}

/**
 * A message near the default 1 MiB limit made of one kind of item in bulk: what costs a validator
 * most (an issue per item). Costly to check, so only every 1000th input is one.
 */
function bulkCase(rng: Rng, index: number): SensorCase {
  const limits = DEFAULT_SENSOR_LIMITS;
  const item = rng.pick(['""', '[]', '{}', 'null', 'true', '0.5', '1e999']);
  const shape = rng.pick(['one wide row', 'one wide row', 'many rows', 'many channels', 'many values', 'rows of max width'] as const);
  const budget = rng.int(limits.maxBytes / 4, limits.maxBytes - 200);
  const n = (width: number) => Math.max(1, Math.floor(budget / width));
  const head = `{"assetId":"pump-1","chunkId":"fuzz/pump-1/${index}","t0":${START},"periodMs":100,`;
  const list = (count: number, x: string) => Array<string>(count).fill(x).join(',');
  let text: string;
  if (shape === 'one wide row') text = `${head}"channels":["current"],"samples":[[${list(n(item.length + 1), item)}]]}`;
  else if (shape === 'many rows') text = `${head}"channels":["current"],"samples":[${list(n(item.length + 3), `[${item}]`)}]}`;
  else if (shape === 'many channels') text = `${head}"samples":[[1]],"channels":[${list(n(item.length + 1), item)}]}`;
  else if (shape === 'rows of max width') {
    const row = `[${list(limits.maxChannels, item)}]`;
    const channels = Array.from({ length: limits.maxChannels }, (_, k) => `"c${k}"`).join(',');
    text = `${head}"channels":[${channels}],"samples":[${list(n(row.length + 1), row)}]}`;
  } else {
    const count = n(item.length + 10);
    text = `{"assetId":"pump-1","readingId":"fuzz/pump-1/${index}","ts":${START},"values":{${Array.from({ length: count }, (_, k) => `"c${k}":${item}`).join(',')}}}`;
  }
  const value = Buffer.from(text);
  return { generator: 'bulk', steps: [`${shape} of ${item}, ${value.length} bytes`], limits, record: { key: 'pump-1', value, headers: {} } };
}

function sensorCase(index: number): SensorCase {
  const rng = createRng(SEED, 'sensor', index);
  if (index % 1000 === 999) return bulkCase(rng, index);
  const steps: string[] = [];
  const limits = rng.chance(0.85) ? SENSOR_LIMITS : DEFAULT_SENSOR_LIMITS;
  // Deep enough for any recursive parser to overflow; deeper only makes garbage (RSS noise).
  const maxDepth = Math.min(50_000, Math.floor(limits.maxBytes / 3));
  const family = index % 2 === 0 ? 'reading' : 'chunk';
  const base = rng.pick(sensorBases[family]);
  let value: Buffer | null;
  let generator: string;
  const roll = rng.next();
  if (roll < 0.12) {
    generator = `${family}: valid`;
    value = Buffer.from(rng.chance(0.2) ? JSON.stringify(base.json, null, 2) : base.text);
  } else if (roll < 0.65) {
    generator = `${family}: json-mutation`;
    const msg = clone(base.json) as JsonObject;
    let root: Json = msg;
    for (let k = rng.int(1, 3); k > 0; k--) {
      const r = mutateSensor(rng, msg, steps, maxDepth);
      if (r !== msg) root = r;
    }
    value = Buffer.from(serialize(root), 'utf8');
    if (rng.chance(0.1)) value = mutateBytes(rng, value, steps, sensorDonors, 2);
  } else if (roll < 0.85) {
    generator = `${family}: byte-mutation`;
    value = mutateBytes(rng, Buffer.from(base.text), steps, sensorDonors);
    if (rng.chance(0.1)) {
      value = Buffer.concat([rng.pick([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from([0xc3, 0x28]), Buffer.from([0xff, 0xfe]), Buffer.from(' \t\n')]), value]);
      steps.push('odd prefix');
    }
  } else if (roll < 0.88) {
    generator = 'size';
    const kind = rng.int(0, 2);
    value = kind === 0 ? null : kind === 1 ? Buffer.alloc(0) : Buffer.from(`{"assetId":"pump-1","pad":"${'x'.repeat(limits.maxBytes)}"}`);
    steps.push(['null value', 'empty value', 'over maxBytes'][kind] ?? '?');
  } else if (roll < 0.94) {
    generator = 'json-soup';
    const parts: string[] = [];
    for (let k = rng.int(1, 60); k > 0; k--) parts.push(rng.pick(JSON_SOUP));
    value = Buffer.from(parts.join(''));
  } else {
    generator = 'random-bytes';
    value = randomBytes(rng, rng.int(0, 2048));
  }
  return { generator, steps, limits, record: { key: 'pump-1', value, headers: { 'content-type': Buffer.from('application/json') } } };
}

const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const epochMs = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_EPOCH_MS;

/** What an accepted message promises its consumer; undefined when it holds. */
function checkAcceptedSensor(m: SensorMessage, limits: SensorLimits): string | undefined {
  if (!ID_PATTERN.test(m.assetId) || !ID_PATTERN.test(sensorEventId(m))) return 'accepted a malformed id';
  if (m.kind === 'reading') {
    const keys = Object.keys(m.values);
    if (!epochMs(m.ts)) return `accepted ts ${m.ts}`;
    if (keys.length < 1 || keys.length > limits.maxChannels) return `accepted ${keys.length} channels`;
    if (!keys.every((k) => CHANNEL_PATTERN.test(k))) return 'accepted a malformed channel name';
    if (!Object.values(m.values).every(finite)) return 'accepted a value that is not a finite number';
    return undefined;
  }
  if (!epochMs(m.t0)) return `accepted t0 ${m.t0}`;
  if (!finite(m.periodMs) || m.periodMs <= 0 || m.periodMs > 86_400_000) return `accepted periodMs ${m.periodMs}`;
  if (m.channels.length < 1 || m.channels.length > limits.maxChannels || new Set(m.channels).size !== m.channels.length) return 'accepted a bad channel list';
  if (!m.channels.every((c) => CHANNEL_PATTERN.test(c))) return 'accepted a malformed channel name';
  if (m.samples.length < 1 || m.samples.length > limits.maxSamples) return `accepted ${m.samples.length} rows`;
  if (!m.samples.every((row) => row.length === m.channels.length && row.every(finite))) return 'accepted a bad sample row';
  return undefined;
}

/** What decodeSensorInput does differently from decodeSensorMessage's outcome `r`, if anything. */
function checkWorkerDecoder(record: InboundRecord, limits: SensorLimits, r: ReturnType<typeof decodeSensorMessage>): string | undefined {
  const w = decodeSensorInput(record, limits);
  if (!r.ok || !w.ok) {
    const text = (d: typeof r | typeof w) => (d.ok ? `accepted ${d.value.kind}` : `${d.error.reason} ${d.error.field}: ${d.error.message}`);
    return text(r) === text(w) ? undefined : `decodeSensorInput: ${text(w)}, decodeSensorMessage: ${text(r)}`;
  }
  const { kind: _, ...rest } = r.value;
  const want = r.value.kind === 'chunk' ? chunkMatrix(rest as Omit<typeof r.value & { kind: 'chunk' }, 'kind'>) : r.value;
  try {
    assert.deepEqual(w.value, want);
    return undefined;
  } catch {
    return 'decodeSensorInput decoded another value than decodeSensorMessage';
  }
}

function runSensor(index: number, tally: Tally): void {
  let c: SensorCase | undefined;
  try {
    c = sensorCase(index);
    tally.generated(c.generator);
    const fail = (problem: string) =>
      tally.fail({ index, generator: c?.generator ?? '?', steps: c?.steps ?? [], problem, input: c?.record.value?.subarray(0, 160).toString('utf8') ?? 'null' });
    const r = decodeSensorMessage(c.record, c.limits);
    const sameAsWorker = checkWorkerDecoder(c.record, c.limits, r);
    if (sameAsWorker) return fail(sameAsWorker);
    if (!r.ok) {
      const bad = (r.error instanceof ContractViolation ? undefined : 'rejected with something else than a ContractViolation') ?? checkViolation(r.error) ?? checkDeadLetter(c.record, r.error);
      if (bad) return fail(bad);
      tally.add(`rejected: ${r.error.reason}`);
      return;
    }
    const bad = checkAcceptedSensor(r.value, c.limits) ?? ((c.record.value?.length ?? 0) > c.limits.maxBytes ? 'accepted a value over maxBytes' : undefined);
    if (bad) return fail(bad);
    tally.add(`accepted: ${r.value.kind}`);
  } catch (err) {
    tally.fail({ index, generator: c?.generator ?? '?', steps: c?.steps ?? [], problem: `threw ${describeError(err)}`, input: c?.record.value?.subarray(0, 160).toString('utf8') ?? '?' });
  }
}

// ---------------------------------------------------------------------------------------------
// The tests

describe(`decoder fuzzing (seed ${SEED})`, () => {
  test(`frame chain (decodeFrame + decodePixels): ${FRAME_INPUTS.toLocaleString('en')} random and mutated records end in pixels or a ContractViolation`, async () => {
    const tally = new Tally();
    const before = memoryNow();
    const peak = { ...before };
    const concurrency = 8; // sharp decodes on libuv's pool; a few at once keeps both cores busy
    for (let from = 0; from < FRAME_INPUTS; from += concurrency) {
      const batch = Array.from({ length: Math.min(concurrency, FRAME_INPUTS - from) }, (_, k) => runFrame(from + k, tally));
      await Promise.all(batch);
      const m = memoryNow();
      peak.rss = Math.max(peak.rss, m.rss);
      peak.external = Math.max(peak.external, m.external);
    }
    tally.print(`frames: outcomes of ${FRAME_INPUTS} inputs`);
    tally.assertNoFailures('frames');
    assert.ok(tally.total('decoded: image/x-gray8') > 0 && tally.total('decoded: image/png') > 0 && tally.total('decoded: image/jpeg') > 0, `every content type must decode sometimes (seed ${SEED})`);
    for (const reason of ['missing-header', 'invalid-header', 'unsupported-content-type', 'too-large', 'dimensions', 'corrupt-image', 'empty-value'] as const) {
      assert.ok(tally.total(`contract rejected: ${reason}`) > 0, `the contract must reject some inputs as ${reason} (seed ${SEED})`);
    }
    assert.ok(tally.total('decode rejected: corrupt-image') > 0, `some inputs must pass the probe and fail in the decoder (seed ${SEED})`);
    assertMemoryBounded('frames', before, peak);
  });

  test('decompression bombs are refused before any decoder runs, and sharp keeps its own pixel limit', async () => {
    const headers = (contentType: FrameContentType) => toKafkaHeaders(frameHeaders('bomb', contentType, 1, 1), true);
    const noDims = (contentType: FrameContentType): IHeaders => {
      const h = { ...headers(contentType) };
      delete h.width;
      delete h.height;
      return h;
    };
    // A ~100-byte PNG declaring 60000x60000 (3.6 Gpx); sharp's header read confirms the claim.
    const tiny = bombPng(60_000, 60_000);
    assert.ok(tiny.length < 200);
    const meta = await sharp(tiny, { limitInputPixels: false }).metadata();
    assert.deepEqual([meta.width, meta.height], [60_000, 60_000]);
    // Real images of 5000x5000 that compress to a few kilobytes.
    const blank = sharp({ create: { width: 5000, height: 5000, channels: 3, background: { r: 0, g: 0, b: 0 } } });
    const bigPng = await blank.clone().toColourspace('b-w').png({ compressionLevel: 9 }).toBuffer();
    const bigJpeg = await blank.clone().jpeg({ quality: 50 }).toBuffer();
    const bait = probeConfusionJpeg(jpegBases[0]!.value, 60_000, 60_000);
    const cases: [string, FrameContentType, Buffer][] = [
      ['60000x60000 PNG header', 'image/png', tiny],
      ['5000x5000 PNG', 'image/png', bigPng],
      ['5000x5000 JPEG', 'image/jpeg', bigJpeg],
      ['JPEG with a hidden 60000x60000 SOF behind FF 00', 'image/jpeg', bait],
    ];
    for (const [name, contentType, image] of cases) {
      assert.ok(image.length < DEFAULT_FRAME_LIMITS.maxBytes, `${name}: small enough to pass the byte limit`);
      for (const limits of [DEFAULT_FRAME_LIMITS, FRAME_LIMITS]) {
        // Synchronous: no decoder can have run when the verdict is in.
        const r = decodeFrame({ key: 'line-1/cam-1', value: image, headers: noDims(contentType) }, limits);
        assert.equal(r.ok, false, `${name}: must be refused by the contract (limits ${limits.maxWidth}x${limits.maxHeight})`);
        if (r.ok) continue;
        // (Under the fuzz run's 96 KiB limit the 5000x5000 JPEG is already too large.)
        assert.ok(['dimensions', 'corrupt-image', 'too-large'].includes(r.error.reason), `${name}: ${r.error.reason} ${r.error.message}`);
        if (limits === DEFAULT_FRAME_LIMITS) assert.notEqual(r.error.reason, 'too-large', name);
      }
      // Second guard: were the probe fooled into 32x32, sharp refuses the real size from the header.
      const forged = { frameId: 'f', cameraId: 'line-1/cam-1', lineId: 'line-1', capturedAt: START, contentType, width: 32, height: 32, image };
      await assert.rejects(decodePixels(forged), (err: unknown) => err instanceof ContractViolation && err.reason === 'corrupt-image' && /pixel limit/i.test(err.message), name);
    }
  });

  test(`sensor readings decoder: ${SENSOR_INPUTS.toLocaleString('en')} random and mutated readings and chunks end in a value or a ContractViolation`, () => {
    const tally = new Tally();
    const before = memoryNow();
    const peak = { ...before };
    for (let i = 0; i < SENSOR_INPUTS; i++) {
      runSensor(i, tally);
      if (i % 500 === 0) {
        const m = memoryNow();
        peak.rss = Math.max(peak.rss, m.rss);
        peak.external = Math.max(peak.external, m.external);
      }
    }
    tally.print(`sensor: outcomes of ${SENSOR_INPUTS} inputs`);
    tally.assertNoFailures('sensor');
    assert.ok(tally.total('accepted: reading') > 0 && tally.total('accepted: chunk') > 0, `both shapes must be accepted sometimes (seed ${SEED})`);
    for (const reason of ['empty-value', 'too-large', 'invalid-json', 'schema', 'limit'] as const) {
      assert.ok(tally.total(`rejected: ${reason}`) > 0, `some inputs must be rejected as ${reason} (seed ${SEED})`);
    }
    assertMemoryBounded('sensor', before, peak);
  });
});
