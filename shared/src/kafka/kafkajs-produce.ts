/**
 * A faster encoding of kafkajs 2.2.4's produce requests, byte for byte the same.
 *
 * kafkajs builds every record of a produce request as its own protocol `Encoder` (and one more
 * per record header), writes each varint through a temporary array and `Buffer.from`, copies each
 * record into the batch, the batch into a length-prefixed copy, that into the partition entry and
 * that into the request; and it groups a batch's messages by partition by copying the partition's
 * array for every message (`[...current, message]`, quadratic in the messages per partition). In
 * the sensor worker's drain (thousands of small score records a second) that was a fifth of the
 * main thread and a third of the bytes allocated (CPU and sampling heap profiles of
 * `npm run bench:sensor`, docs/architecture.md).
 *
 * Here a produce request without compression is sized first and then written into one buffer
 * (one copy of each key, value and header), and messages are grouped in one pass. Anything the
 * fast path does not expect (compression, a key or header of another type, a timestamp that is
 * not an integer) goes to kafkajs's own encoder, which then behaves (or throws) as before.
 * test/unit/kafkajs-produce.test.ts compares the bytes with kafkajs's own for every shape the
 * product writes and for the fallbacks.
 *
 * How it is installed: kafkajs requires its produce request modules on the first produce, and
 * `src/producer/sendMessages.js` requires `groupMessagesPerPartition` when kafkajs itself loads;
 * both by CommonJS `require`, which returns what `require.cache` holds. So the cache entries are
 * replaced, which has to happen before kafkajs loads (see kafkajs-patches.ts, imported ahead of
 * kafkajs by client.ts). Only for the kafkajs version whose sources were read for this.
 */
import { createRequire, Module } from 'node:module';
import { CHECKED_KAFKAJS_VERSION, installedKafkajsVersion } from './kafkajs-encoder.js';

const require = createRequire(import.meta.url);

type HeaderValue = string | Buffer;
interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  timestamp?: unknown;
  headers?: unknown;
}
interface PartitionData {
  partition: number;
  firstSequence?: number;
  messages: ProduceMessage[];
}
interface TopicData {
  topic: string;
  partitions: PartitionData[];
}
export interface ProduceRequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: TopicData[];
}
interface EncoderLike {
  buf: Buffer;
  offset: number;
}
interface ProduceRequest {
  encode(): Promise<EncoderLike>;
}
export type ProduceRequestFactory = (args: ProduceRequestArgs) => ProduceRequest;
type Partitioner = (a: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
export type GroupMessagesPerPartition = (a: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner }) => Record<number, unknown[]>;
interface LongLike {
  getHighBits(): number;
  getLowBits(): number;
}
interface LongClass {
  fromInt(v: number): LongLike;
  fromValue(v: unknown): LongLike;
}

/** Where kafkajs's module `src/<p>` resolves (its key in the require cache). */
export const kafkajsPath = (p: string) => require.resolve(`kafkajs/src/${p}`);
const PRODUCE_V3 = 'protocol/requests/produce/v3/request';
/** The later produce versions wrap v3's request and bind it when they load. */
const PRODUCE_WRAPPERS = [4, 5, 6, 7].map((v) => `protocol/requests/produce/v${v}/request`);
const GROUPING = 'producer/groupMessagesPerPartition';
const SEND_MESSAGES = 'producer/sendMessages';
const MURMUR2 = 'producer/partitioners/default/murmur2';
const DEFAULT_PARTITIONER = 'producer/partitioners/default/index';

/** String keys whose hash is kept; the cache starts afresh when full (keys are asset, line, camera ids: a few thousand). */
const MAX_HASHED_KEYS = 10_000;

/**
 * kafkajs's murmur2 (the default partitioner's key hash, Java-compatible) with the hash of string
 * keys kept: it builds a Buffer of the key and a 64-bit Long object for every step of four
 * bytes, so hashing every score's asset id was about 8% of all the sensor worker allocated. The
 * hash is a pure function of the key, so the partitions are unchanged.
 */
export function memoizedMurmur2(murmur2: (key: unknown) => number, maxKeys = MAX_HASHED_KEYS): (key: unknown) => number {
  const hashes = new Map<string, number>();
  return (key) => {
    if (typeof key !== 'string') return murmur2(key);
    let h = hashes.get(key);
    if (h === undefined) {
      if (hashes.size >= maxKeys) hashes.clear();
      h = murmur2(key);
      hashes.set(key, h);
    }
    return h;
  };
}

/** kafkajs's grouping, in one pass: the same partitions, each with its messages in order. */
export const groupMessagesPerPartition: GroupMessagesPerPartition = ({ topic, partitionMetadata, messages, partitioner }) => {
  if (partitionMetadata.length === 0) return {};
  const result: Record<number, unknown[]> = {};
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
};

// ---- sizes and writes, as kafkajs's Encoder does them ----

const zigZag = (v: number) => (v << 1) ^ (v >> 31);

function sizeOfUVarInt(value: number): number {
  let v = value;
  let bytes = 1;
  while ((v & 0xffffff80) !== 0) {
    bytes += 1;
    v >>>= 7;
  }
  return bytes;
}
const sizeOfVarInt = (v: number) => sizeOfUVarInt(zigZag(v));

function writeUVarInt(buf: Buffer, at: number, value: number): number {
  let v = value;
  let o = at;
  while ((v & 0xffffff80) !== 0) {
    buf[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[o++] = v & 0x7f;
  return o;
}
const writeVarInt = (buf: Buffer, at: number, v: number) => writeUVarInt(buf, at, zigZag(v));

/** ZigZag of a safe integer as a non-negative safe integer (what kafkajs's 64-bit ZigZag gives for it). */
const zigZag64 = (v: number) => (v >= 0 ? v * 2 : -v * 2 - 1);
function sizeOfVarLong(v: number): number {
  let z = zigZag64(v);
  let bytes = 1;
  while (z >= 0x80) {
    bytes += 1;
    z = Math.floor(z / 0x80);
  }
  return bytes;
}
function writeVarLong(buf: Buffer, at: number, v: number): number {
  let z = zigZag64(v);
  let o = at;
  while (z >= 0x80) {
    buf[o++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[o++] = z;
  return o;
}

const isBytes = (v: unknown): v is HeaderValue => typeof v === 'string' || Buffer.isBuffer(v);
const byteLength = (v: HeaderValue) => (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);
function writeBytes(buf: Buffer, at: number, v: HeaderValue, length: number): number {
  if (typeof v === 'string') buf.write(v, at, length, 'utf8');
  else v.copy(buf, at);
  return at + length;
}

/** One record, measured: everything the write needs. */
interface RecordPlan {
  bodySize: number;
  timestampDelta: number;
  key: HeaderValue | null;
  keyLength: number;
  value: HeaderValue | null;
  valueLength: number;
  headers: { key: string; keyLength: number; value: HeaderValue; valueLength: number }[];
}

interface PartitionPlan {
  partition: number;
  firstSequence: number;
  firstTimestamp: LongLike;
  maxTimestamp: LongLike;
  records: RecordPlan[];
  /** Bytes of the batch body (attributes to the last record). */
  bodySize: number;
}

/** Undefined when the message is not of a shape this encoder takes (kafkajs's own then encodes it). */
function planRecord(message: ProduceMessage, offsetDelta: number, timestampDelta: number): RecordPlan | undefined {
  if (!Number.isSafeInteger(timestampDelta)) return undefined;
  const key = message.key ?? null;
  const value = message.value ?? null;
  if ((key !== null && !isBytes(key)) || (value !== null && !isBytes(value))) return undefined;
  const raw = message.headers === undefined ? {} : message.headers;
  if (raw === null || typeof raw !== 'object') return undefined;
  const headers: RecordPlan['headers'] = [];
  for (const k of Object.keys(raw)) {
    const v = (raw as Record<string, unknown>)[k];
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    const keyLength = Buffer.byteLength(k, 'utf8');
    for (const hv of values) {
      if (!isBytes(hv)) return undefined;
      headers.push({ key: k, keyLength, value: hv, valueLength: byteLength(hv) });
    }
  }
  const keyLength = key === null ? -1 : byteLength(key);
  const valueLength = value === null ? -1 : byteLength(value);
  let headersSize = sizeOfVarInt(headers.length);
  for (const h of headers) headersSize += sizeOfVarInt(h.keyLength) + h.keyLength + sizeOfVarInt(h.valueLength) + h.valueLength;
  const bodySize =
    1 +
    sizeOfVarLong(timestampDelta) +
    sizeOfVarInt(offsetDelta) +
    sizeOfVarInt(keyLength) +
    Math.max(0, keyLength) +
    sizeOfVarInt(valueLength) +
    Math.max(0, valueLength) +
    headersSize;
  return { bodySize, timestampDelta, key, keyLength, value, valueLength, headers };
}

/** Batch header after the CRC: attributes, last offset delta, two timestamps, producer id and epoch, first sequence. */
const BATCH_BODY_HEADER = 2 + 4 + 8 + 8 + 8 + 2 + 4;
/** Partition, record set size, first offset, batch length, leader epoch, magic, CRC. */
const PARTITION_OVERHEAD = 4 + 4 + 8 + 4 + 4 + 1 + 4;
const TRANSACTIONAL_ATTRIBUTE = 16;

function planPartition(p: PartitionData, Long: LongClass): PartitionPlan | undefined {
  const { messages } = p;
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  if (p.firstSequence !== undefined && !Number.isInteger(p.firstSequence)) return undefined;
  // As kafkajs: the given timestamps sorted (as strings), else now.
  const dateNow = Date.now();
  const given = messages
    .map((m) => m.timestamp)
    .filter((t) => t != null)
    .sort();
  const timestamps = given.length === 0 ? [dateNow] : given;
  const first = timestamps[0] as number;
  const records: RecordPlan[] = [];
  let bodySize = BATCH_BODY_HEADER + 4;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const r = planRecord(m, i, ((m.timestamp || dateNow) as number) - first);
    if (!r) return undefined;
    records.push(r);
    bodySize += sizeOfVarInt(r.bodySize) + r.bodySize;
  }
  let firstTimestamp: LongLike;
  let maxTimestamp: LongLike;
  try {
    firstTimestamp = Long.fromValue(first);
    maxTimestamp = Long.fromValue(timestamps[timestamps.length - 1]);
  } catch {
    return undefined;
  }
  return { partition: p.partition, firstSequence: p.firstSequence ?? 0, firstTimestamp, maxTimestamp, records, bodySize };
}

function writeInt64(buf: Buffer, at: number, v: LongLike): number {
  buf.writeInt32BE(v.getHighBits(), at);
  buf.writeInt32BE(v.getLowBits(), at + 4);
  return at + 8;
}

function writeString(buf: Buffer, at: number, s: string | null): number {
  if (s === null) return buf.writeInt16BE(-1, at);
  const n = Buffer.byteLength(s, 'utf8');
  const o = buf.writeInt16BE(n, at);
  buf.write(s, o, n, 'utf8');
  return o + n;
}

function writeRecord(buf: Buffer, at: number, r: RecordPlan, offsetDelta: number): number {
  let o = writeVarInt(buf, at, r.bodySize);
  buf[o++] = 0;
  o = writeVarLong(buf, o, r.timestampDelta);
  o = writeVarInt(buf, o, offsetDelta);
  o = writeVarInt(buf, o, r.keyLength);
  if (r.key !== null) o = writeBytes(buf, o, r.key, r.keyLength);
  o = writeVarInt(buf, o, r.valueLength);
  if (r.value !== null) o = writeBytes(buf, o, r.value, r.valueLength);
  o = writeVarInt(buf, o, r.headers.length);
  for (const h of r.headers) {
    o = writeVarInt(buf, o, h.keyLength);
    o = writeBytes(buf, o, h.key, h.keyLength);
    o = writeVarInt(buf, o, h.valueLength);
    o = writeBytes(buf, o, h.value, h.valueLength);
  }
  return o;
}

export interface Deps {
  Long: LongClass;
  crc32C: (b: Buffer) => number;
  newEncoder: () => EncoderLike;
}

/** The request body kafkajs's produce v3 `encode()` returns, or undefined to let kafkajs encode it. */
export function encodeProduceV3(args: ProduceRequestArgs, deps: Deps): EncoderLike | undefined {
  if ((args.compression ?? 0) !== 0) return undefined;
  // kafkajs's defaults apply to undefined only; anything unusual is left to kafkajs.
  const transactionalId = args.transactionalId === undefined ? null : args.transactionalId;
  if (transactionalId !== null && typeof transactionalId !== 'string') return undefined;
  const producerEpoch = args.producerEpoch ?? 0;
  if (!Number.isInteger(producerEpoch) || args.producerEpoch === null) return undefined;
  let producerId: LongLike;
  try {
    producerId = deps.Long.fromValue(args.producerId === undefined ? deps.Long.fromInt(-1) : args.producerId);
  } catch {
    return undefined;
  }
  const topics: { topic: string; partitions: PartitionPlan[] }[] = [];
  let size = (transactionalId === null ? 2 : 2 + Buffer.byteLength(transactionalId, 'utf8')) + 2 + 4 + 4;
  for (const t of args.topicData) {
    if (typeof t.topic !== 'string') return undefined;
    const partitions: PartitionPlan[] = [];
    size += 2 + Buffer.byteLength(t.topic, 'utf8') + 4;
    for (const p of t.partitions) {
      const plan = planPartition(p, deps.Long);
      if (!plan) return undefined;
      partitions.push(plan);
      size += PARTITION_OVERHEAD + plan.bodySize;
    }
    topics.push({ topic: t.topic, partitions });
  }
  const buf = Buffer.allocUnsafe(size);
  let o = writeString(buf, 0, transactionalId);
  o = buf.writeInt16BE(args.acks, o);
  o = buf.writeInt32BE(args.timeout, o);
  o = buf.writeInt32BE(topics.length, o);
  for (const t of topics) {
    o = writeString(buf, o, t.topic);
    o = buf.writeInt32BE(t.partitions.length, o);
    for (const p of t.partitions) {
      const batchLength = 4 + 1 + 4 + p.bodySize;
      o = buf.writeInt32BE(p.partition, o);
      o = buf.writeInt32BE(8 + 4 + batchLength, o);
      o = writeInt64(buf, o, deps.Long.fromInt(0));
      o = buf.writeInt32BE(batchLength, o);
      o = buf.writeInt32BE(0, o); // partition leader epoch
      buf[o++] = 2; // magic
      const crcAt = o;
      o += 4;
      const bodyStart = o;
      o = buf.writeInt16BE(transactionalId ? TRANSACTIONAL_ATTRIBUTE : 0, o);
      o = buf.writeInt32BE(p.records.length - 1, o);
      o = writeInt64(buf, o, p.firstTimestamp);
      o = writeInt64(buf, o, p.maxTimestamp);
      o = writeInt64(buf, o, producerId);
      o = buf.writeInt16BE(producerEpoch, o);
      o = buf.writeInt32BE(p.firstSequence, o);
      o = buf.writeInt32BE(p.records.length, o);
      p.records.forEach((r, i) => (o = writeRecord(buf, o, r, i)));
      buf.writeUInt32BE(deps.crc32C(buf.subarray(bodyStart, o)), crcAt);
    }
  }
  if (o !== size) throw new Error(`produce request encoder: wrote ${o} bytes of ${size}`);
  const encoder = deps.newEncoder();
  encoder.buf = buf;
  encoder.offset = size;
  return encoder;
}

/**
 * CRC-32C (Castagnoli, reflected, as Kafka's record batches use), eight bytes a step
 * ("slicing-by-8"): kafkajs's is a byte-a-step table loop, 2% of the sensor worker's main
 * thread. The comparison test checks the result against kafkajs's bytes.
 */
const CRC_TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  return t;
})();

export function crc32C(buf: Buffer): number {
  const t = CRC_TABLES;
  let crc = -1;
  let i = 0;
  const end8 = buf.length - (buf.length % 8);
  for (; i < end8; i += 8) {
    const lo = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ crc;
    const hi = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    crc =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^
      t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^
      t[hi >>> 24]!;
  }
  for (; i < buf.length; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** kafkajs's Long and Encoder, which the fast encoding uses as kafkajs's own does, and the CRC above. */
export function kafkajsEncodingDeps(): Deps {
  const Encoder = require('kafkajs/src/protocol/encoder') as new () => EncoderLike;
  return {
    Long: require('kafkajs/src/utils/long') as LongClass,
    crc32C,
    newEncoder: () => new Encoder(),
  };
}

/** kafkajs's produce v3 request with the fast `encode()`; kafkajs's own for what it declines. */
export function fastProduceV3(original: ProduceRequestFactory): ProduceRequestFactory {
  const deps = kafkajsEncodingDeps();
  return (args) => {
    const request = original(args);
    return { ...request, encode: async () => encodeProduceV3(args, deps) ?? request.encode() };
  };
}

/** Puts `exports` in the require cache under `path`, as if that module had loaded. */
export function cacheExports(path: string, exports: unknown): void {
  const cached = require.cache[path];
  if (cached) {
    cached.exports = exports;
    return;
  }
  const m = new Module(path);
  m.filename = path;
  m.loaded = true;
  m.exports = exports;
  require.cache[path] = m;
}

export interface FastProduceStatus {
  /** Produce requests are encoded in one buffer. */
  produceRequest: boolean;
  /** Messages are grouped by partition in one pass. */
  grouping: boolean;
  /** The default partitioner keeps the hashes of string keys. */
  keyHash: boolean;
  /** Why a part is not in place (empty when all are). */
  reasons: string[];
}

let status: FastProduceStatus | undefined;
let originalProduceV3: ProduceRequestFactory | undefined;

/** kafkajs's own produce v3 request (for the comparison test); undefined before the install. */
export const kafkajsProduceV3 = () => originalProduceV3;

/**
 * Installs both parts once per process, as far as kafkajs's load state allows; says which are in
 * place. Call it before kafkajs loads.
 */
export function installFastProduce(): FastProduceStatus {
  if (status) return status;
  const version = installedKafkajsVersion();
  if (version !== CHECKED_KAFKAJS_VERSION) {
    return (status = { produceRequest: false, grouping: false, keyHash: false, reasons: [`kafkajs ${version} is not ${CHECKED_KAFKAJS_VERSION}`] });
  }
  const reasons: string[] = [];
  const loaded = (p: string) => require.cache[kafkajsPath(p)] !== undefined;
  const wrappersLoaded = PRODUCE_WRAPPERS.filter(loaded);
  let produceRequest = false;
  if (wrappersLoaded.length > 0) reasons.push(`produce requests were already loaded (${wrappersLoaded.join(', ')})`);
  else {
    originalProduceV3 = require(kafkajsPath(PRODUCE_V3)) as ProduceRequestFactory;
    cacheExports(kafkajsPath(PRODUCE_V3), fastProduceV3(originalProduceV3));
    produceRequest = true;
  }
  let grouping = false;
  if (loaded(SEND_MESSAGES)) reasons.push('kafkajs was loaded before the patch (its producer holds its own grouping)');
  else {
    cacheExports(kafkajsPath(GROUPING), groupMessagesPerPartition);
    grouping = true;
  }
  let keyHash = false;
  if (loaded(DEFAULT_PARTITIONER)) reasons.push('the default partitioner was loaded before the patch (it holds its own hash)');
  else {
    const murmur2 = require(kafkajsPath(MURMUR2)) as (key: unknown) => number;
    cacheExports(kafkajsPath(MURMUR2), memoizedMurmur2(murmur2));
    keyHash = true;
  }
  return (status = { produceRequest, grouping, keyHash, reasons });
}
