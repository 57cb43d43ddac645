/**
 * kafkajs 2.2.4 encodes every request with its protocol `Encoder`, which starts each encoder with
 * `Buffer.alloc(512)` and grows it with `Buffer.alloc` (since tulios/kafkajs#811): a fresh,
 * zero-filled ArrayBuffer per record, per record header, per batch and per request. A worker
 * producing thousands of small records a second spends a fifth of its main thread there and in
 * the garbage collection those buffers cause (CPU profile of the sensor worker's drain).
 *
 * This swaps the allocation, and nothing else, for `Buffer.allocUnsafe`, which takes buffers
 * under 4 KiB from Node's shared pool and does not zero them (the same change as
 * amqp-node/amqplib#695). That is safe for this class: it writes strictly in sequence from offset
 * 0, every write first calls `ensureAvailable` and then advances `offset` by exactly what it
 * wrote, growth copies only `[0, offset)`, and the bytes leave only through the `buffer` getter,
 * `buf.slice(0, offset)`; nothing in kafkajs reads `buf` past `offset`. The encoded bytes are
 * identical (test/unit/kafkajs-encoder.test.ts compares them). Measured with `node --import tsx
 * services/sensor-worker/bench/bench-sensor.ts --samples-per-asset 25600 --latency-seconds 3`,
 * three runs each way, interleaved: 6,270 / 7,720 / 6,742 -> 8,883 / 7,983 / 8,579 windows/s.
 *
 * Applied to the Encoder class itself (its static `nextPowerOfTwo` sizes the constructor's
 * allocation, its prototype's `ensureAvailable` the growth), so it holds for every kafkajs module
 * whenever they were loaded. Only for the kafkajs version whose encoder was read for the above;
 * another version is left as it is and reported by {@link installPooledEncoder}.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The kafkajs version whose sources this module and kafkajs-produce.ts were checked against. */
export const CHECKED_KAFKAJS_VERSION = '2.2.4';

/** The version of the kafkajs this process loads. */
export const installedKafkajsVersion = (): string => (require('kafkajs/package.json') as { version: string }).version;

interface EncoderInstance {
  buf: Buffer;
  offset: number;
}

interface EncoderClass {
  nextPowerOfTwo(value: number): number;
  prototype: EncoderInstance & { ensureAvailable(length: number): void };
}

/** The smallest buffer an encoder grows to at its first write, as kafkajs's constructor allocates. */
const FIRST_SIZE = 512;

let installed: boolean | undefined;

/**
 * Installs the pooled allocation once per process. True when it is in place; false (and nothing
 * changed) for a kafkajs version other than {@link CHECKED_KAFKAJS_VERSION}.
 */
export function installPooledEncoder(): boolean {
  if (installed !== undefined) return installed;
  if (installedKafkajsVersion() !== CHECKED_KAFKAJS_VERSION) return (installed = false);
  const Encoder = require('kafkajs/src/protocol/encoder') as EncoderClass;
  const nextPowerOfTwo = Encoder.nextPowerOfTwo.bind(Encoder);
  // The constructor allocates Buffer.alloc(Encoder.nextPowerOfTwo(initialSize)): an empty buffer
  // now (no backing store); the first write grows it from the pool.
  Encoder.nextPowerOfTwo = () => 0;
  Encoder.prototype.ensureAvailable = function ensureAvailable(this: EncoderInstance, length: number): void {
    const needed = this.offset + length;
    if (needed <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(FIRST_SIZE, nextPowerOfTwo(needed)));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  };
  return (installed = true);
}
