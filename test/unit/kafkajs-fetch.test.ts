// First, as in client.ts: the patches go in before kafkajs loads.
import { fastFetch } from '../../shared/src/kafka/kafkajs-patches.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRng } from '../../services/gateway-sim/src/index.js';
import { kafkajsRecordDecoder } from '../../shared/src/kafka/kafkajs-fetch.js';

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long') as { fromValue(v: unknown): unknown };
type RecordDecoder = (decoder: unknown, batchContext?: unknown) => Record<string, unknown> & { headers: Record<string, unknown> };
const patched = () => require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as RecordDecoder;
const original = () => kafkajsRecordDecoder() as RecordDecoder;

/** A protocol decoder that hands out one record's fields, as kafkajs's Decoder would read them. */
function fakeDecoder(r: { attributes: number; timestampDelta: number; offsetDelta: number; key: Buffer | null; value: Buffer | null; headers: { key: string; value: Buffer }[] }) {
  return {
    readInt8: () => r.attributes,
    readVarLong: () => Long.fromValue(r.timestampDelta),
    readVarInt: () => r.offsetDelta,
    readVarIntBytes: (() => {
      const bytes = [r.key, r.value];
      return () => bytes.shift() ?? null;
    })(),
    readVarIntArray: () => r.headers.map((h) => ({ ...h })),
  };
}

/** Own keys (in order), each property's descriptor, and the prototype: what tells two header objects apart. */
function shape(o: object) {
  return { proto: Object.getPrototypeOf(o) as unknown, keys: Reflect.ownKeys(o), descriptors: Object.getOwnPropertyDescriptors(o) };
}

test('the record decoder patch is in place when the patches load before kafkajs', () => {
  assert.deepEqual(fastFetch, { recordHeaders: true, reasons: [] });
  assert.notEqual(patched(), original());
});

test("decoded records equal kafkajs's own: fields, header order, repeated and odd header names", () => {
  const rng = createRng(7, 'kafkajs-fetch', 0);
  const names = ['content-type', 'event-id', 'x-sim-truth', 'x-frame-width', '__proto__', 'constructor', 'toString', '1', '0', '', 'pümp-€', 'a'];
  const contexts = [
    { firstOffset: '1234567890123', firstTimestamp: '1790000000000', magicByte: 2, timestampType: 0 },
    { firstOffset: '0', firstTimestamp: '1790000000000', magicByte: 2, timestampType: 1, maxTimestamp: '1790000000999', isControlBatch: true },
    { firstOffset: '5', firstTimestamp: '-1', magicByte: 2 },
  ];
  for (let i = 0; i < 2000; i++) {
    const headers = Array.from({ length: rng.int(0, 6) }, () => ({ key: names[rng.int(0, names.length - 1)]!, value: Buffer.from(`v${rng.int(0, 99)}`) }));
    const r = { attributes: 0, timestampDelta: rng.int(0, 5000), offsetDelta: i, key: rng.next() < 0.2 ? null : Buffer.from(`k${i}`), value: Buffer.from(`value ${i}`), headers };
    const ctx = contexts[i % contexts.length];
    const want = original()(fakeDecoder(r), ctx);
    const got = patched()(fakeDecoder(r), ctx);
    const { headers: gotHeaders, ...gotRest } = got;
    const { headers: wantHeaders, ...wantRest } = want;
    assert.deepEqual(gotRest, wantRest, `record ${i}`);
    assert.deepEqual(shape(gotHeaders), shape(wantHeaders), `record ${i}: headers ${JSON.stringify(headers.map((h) => h.key))}`);
  }
});

test('decoded records with the same header names share one hidden class', async () => {
  // %HaveSameMap needs --allow-natives-syntax: a child process, with the patches loaded first.
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const patches = pathToFileURL(join(root, 'shared/src/kafka/kafkajs-patches.ts')).href;
  const fetch = pathToFileURL(join(root, 'shared/src/kafka/kafkajs-fetch.ts')).href;
  const code = `
    await import(${JSON.stringify(patches)});
    const { kafkajsRecordDecoder } = await import(${JSON.stringify(fetch)});
    const { createRequire } = await import('node:module');
    const require = createRequire(${JSON.stringify(join(root, 'package.json'))});
    const Decoder = require('kafkajs/src/protocol/decoder');
    const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0');
    const same = new Function('a', 'b', 'return %HaveSameMap(a, b)');
    // Records as a gateway writes them: the same two headers, values that vary (the case where
    // kafkajs's own decoder gave every record's headers a hidden class of its own).
    const records = Array.from({ length: 800 }, (_, i) =>
      encodeRecord({ offsetDelta: i, key: Buffer.from('k'), value: Buffer.from('v'), headers: { 'x-sim-truth': '{"i":' + i + '}', 'content-type': 'application/json' } }).buffer);
    const distinct = (decode) => {
      const heads = records.map((buf) => {
        const d = new Decoder(buf);
        d.readVarInt(); // the record's length
        return decode(d, { firstOffset: '0', firstTimestamp: '0', magicByte: 2 }).headers;
      });
      const reps = [];
      for (const h of heads) if (!reps.some((r) => same(r, h))) reps.push(h);
      return reps.length;
    };
    const k = distinct(kafkajsRecordDecoder()); process.stdout.write(JSON.stringify({ patched: distinct(require("kafkajs/src/protocol/recordBatch/record/v0/decoder")), kafkajs: k }));`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', code], { cwd: root }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  const maps = JSON.parse(out) as { patched: number; kafkajs: number };
  // One header name list: one hidden class, however many records.
  assert.equal(maps.patched, 1, out);
  console.log(`distinct hidden classes of 800 decoded records' headers: ${out}`);
});
