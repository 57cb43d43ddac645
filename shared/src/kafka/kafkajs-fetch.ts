/**
 * kafkajs 2.2.4's decoder of one fetched record (`src/protocol/recordBatch/record/v0/decoder.js`),
 * with the same output, except that the headers object is built by assignment.
 *
 * kafkajs builds it with `reduce((obj, { key, value }) => ({ ...obj, [key]: ... }), {})`: an object
 * spread per header. Once that spread has seen a few shapes, V8 clones through its generic path,
 * which gives every clone a hidden class (map) of its own: 1,990 distinct maps for 2,000 decoded
 * records here. Maps live in the old generation, so every record left one there (and a descriptor
 * array): in the sensor worker's drain the old generation grew by ~30 MB between full collections,
 * one every 0.4 s, and the collector's background threads took about half a core of two. It also
 * made every read of a header in the workers megamorphic. Assigned in order, the headers of every
 * record with the same header names share one map.
 *
 * The rest is kafkajs's code as it is (MIT licence, https://github.com/tulios/kafkajs). Installed
 * like the produce patches (kafkajs-produce.ts): the record decoder is required by
 * `recordBatch/v0/decoder.js` when kafkajs loads, so the require cache entry is replaced before.
 */
import { createRequire } from 'node:module';
import { CHECKED_KAFKAJS_VERSION, installedKafkajsVersion } from './kafkajs-encoder.js';
import { cacheExports, kafkajsPath } from './kafkajs-produce.js';

const require = createRequire(import.meta.url);

interface LongLike {
  add(v: unknown): LongLike;
  toString(): string;
}
interface Deps {
  Long: { fromValue(v: unknown): LongLike };
  HeaderDecoder: (decoder: DecoderLike) => { key: string; value: unknown };
  LOG_APPEND_TIME: number;
}
interface DecoderLike {
  readInt8(): number;
  readVarLong(): unknown;
  readVarInt(): number;
  readVarIntBytes(): unknown;
  readVarIntArray<T>(f: (d: DecoderLike) => T): T[];
}
interface BatchContext {
  firstOffset?: unknown;
  firstTimestamp?: unknown;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: unknown;
}

/**
 * The headers as kafkajs's reduce builds them, to the last detail: a repeated key keeps its first
 * position and collects its values in an array; a key named `__proto__` becomes an own property,
 * as a computed key in an object literal does (an assignment would set the prototype instead),
 * and its first value is paired with what `obj.__proto__` read before, as in kafkajs.
 */
export function headersOf(list: readonly { key: string; value: unknown }[]): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  for (const { key, value } of list) {
    const prev = headers[key];
    const next = prev === undefined ? value : Array.isArray(prev) ? prev.concat([value]) : [prev, value];
    if (key === '__proto__') Object.defineProperty(headers, key, { value: next, writable: true, enumerable: true, configurable: true });
    else headers[key] = next;
  }
  return headers;
}

/** kafkajs's record decoder with {@link headersOf}. */
export function recordDecoder(deps: Deps) {
  return (decoder: DecoderLike, batchContext: BatchContext = {}) => {
    const { firstOffset, firstTimestamp, magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
    const attributes = decoder.readInt8();
    const timestampDelta = decoder.readVarLong();
    const timestamp =
      timestampType === deps.LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : deps.Long.fromValue(firstTimestamp).add(timestampDelta).toString();
    const offsetDelta = decoder.readVarInt();
    const offset = deps.Long.fromValue(firstOffset).add(offsetDelta).toString();
    const key = decoder.readVarIntBytes();
    const value = decoder.readVarIntBytes();
    const headers = headersOf(decoder.readVarIntArray(deps.HeaderDecoder));
    return {
      magicByte,
      attributes, // Record level attributes are presently unused
      timestamp,
      offset,
      key,
      value,
      headers,
      isControlRecord: isControlBatch,
      batchContext,
    };
  };
}

const RECORD_DECODER = 'protocol/recordBatch/record/v0/decoder';
const BATCH_DECODER = 'protocol/recordBatch/v0/decoder';

export interface FastFetchStatus {
  /** Fetched records' headers share hidden classes. */
  recordHeaders: boolean;
  /** Why not (empty when in place). */
  reasons: string[];
}

let status: FastFetchStatus | undefined;
let originalRecordDecoder: unknown;

/** kafkajs's own record decoder (for the comparison test); undefined before the install. */
export const kafkajsRecordDecoder = () => originalRecordDecoder;

/** Installs the record decoder once per process, if kafkajs has not loaded its batch decoder yet; says whether it is in place. */
export function installFastFetch(): FastFetchStatus {
  if (status) return status;
  const version = installedKafkajsVersion();
  if (version !== CHECKED_KAFKAJS_VERSION) return (status = { recordHeaders: false, reasons: [`kafkajs ${version} is not ${CHECKED_KAFKAJS_VERSION}`] });
  if (require.cache[kafkajsPath(BATCH_DECODER)] !== undefined) return (status = { recordHeaders: false, reasons: ['kafkajs was loaded before the patch (its batch decoder holds its own record decoder)'] });
  originalRecordDecoder = require(kafkajsPath(RECORD_DECODER));
  const types = require('kafkajs/src/protocol/timestampTypes') as { LOG_APPEND_TIME: number };
  cacheExports(
    kafkajsPath(RECORD_DECODER),
    recordDecoder({
      Long: require('kafkajs/src/utils/long') as Deps['Long'],
      HeaderDecoder: require('kafkajs/src/protocol/recordBatch/header/v0/decoder') as Deps['HeaderDecoder'],
      LOG_APPEND_TIME: types.LOG_APPEND_TIME,
    }),
  );
  return (status = { recordHeaders: true, reasons: [] });
}
