// First, as in client.ts: the patches go in before kafkajs loads.
import { fastProduce } from '../../shared/src/kafka/kafkajs-patches.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mock, test } from 'node:test';
import { crc32C, encodeProduceV3, groupMessagesPerPartition, kafkajsEncodingDeps, kafkajsProduceV3, memoizedMurmur2, type GroupMessagesPerPartition, type ProduceRequestArgs, type ProduceRequestFactory } from '../../shared/src/kafka/kafkajs-produce.js';

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long') as { fromValue(v: number): unknown };
const { Types: Compression } = require('kafkajs/src/protocol/message/compression') as { Types: Record<string, number> };
const V3 = require.resolve('kafkajs/src/protocol/requests/produce/v3/request');

/** What kafkajs's producer now gets for produce v3-v7 (its v7 request wraps v3's). */
const patched = () => require(V3) as ProduceRequestFactory;
const original = () => kafkajsProduceV3()!;

/** Encodes with both at one fixed clock (messages without a timestamp take Date.now()). */
async function both(args: ProduceRequestArgs): Promise<[Buffer, Buffer]> {
  const now = mock.method(Date, 'now', () => 1_790_000_123_456);
  try {
    const a = await original()(args).encode();
    const b = await patched()(args).encode();
    return [a.buf.subarray(0, a.offset), b.buf.subarray(0, b.offset)];
  } finally {
    now.mock.restore();
  }
}

type Message = ProduceRequestArgs['topicData'][number]['partitions'][number]['messages'][number];

/** Every shape the product writes, and some it does not: keys, values, headers, timestamps, UTF-8. */
function messages(count: number, seed: number, withTimestamps: 'none' | 'all' | 'some'): Message[] {
  const sizes = [0, 1, 37, 127, 128, 511, 512, 4095, 16_384, 70_000, 200_000];
  return Array.from({ length: count }, (_, i) => {
    const n = sizes[(i + seed) % sizes.length]!;
    const m: Message = {
      key: i % 4 === 0 ? null : i % 4 === 1 ? `asset-${i}-ñø€` : i % 4 === 2 ? Buffer.from(`camera-${i}`) : '',
      value: i % 7 === 6 ? `{"text":"välue ${i}"}` : Buffer.from(Array.from({ length: n }, (_, k) => (k * 31 + i + seed) % 251)),
      headers:
        i % 3 === 0
          ? { 'content-type': 'application/json', 'event-id': `e-${seed}-${i}`, multi: ['a', Buffer.from('b'), 'ü'] }
          : i % 3 === 1
            ? {}
            : undefined,
    };
    if (withTimestamps === 'all' || (withTimestamps === 'some' && i % 2 === 0)) m.timestamp = String(1_790_000_000_000 + ((i * 7919) % 100_000));
    return m;
  });
}

function args(over: Partial<ProduceRequestArgs>, topicData: ProduceRequestArgs['topicData']): ProduceRequestArgs {
  return { acks: -1, timeout: 30_000, transactionalId: 'vision.g.frames.3', producerId: Long.fromValue(4242), producerEpoch: 3, topicData, ...over };
}

test('both patches are in place when they load before kafkajs', () => {
  assert.deepEqual(fastProduce, { produceRequest: true, grouping: true, keyHash: true, reasons: [] });
  assert.notEqual(patched(), original());
  assert.equal(require('kafkajs/src/producer/groupMessagesPerPartition'), groupMessagesPerPartition);
});

test('produce requests encode to the bytes kafkajs itself writes', async () => {
  const cases: [string, ProduceRequestArgs][] = [
    ['transactional, two topics, no timestamps', args({}, [
      { topic: 'quality.inspections.v1', partitions: [{ partition: 0, firstSequence: 17, messages: messages(11, 0, 'none') }, { partition: 5, firstSequence: 2, messages: messages(3, 4, 'none') }] },
      { topic: 'maintenance.anomaly-scores.v1', partitions: [{ partition: 11, firstSequence: 0, messages: messages(4, 1, 'none') }] },
    ])],
    ['idempotent, not transactional, given timestamps', args({ transactionalId: null }, [{ topic: 't', partitions: [{ partition: 1, firstSequence: 9, messages: messages(20, 2, 'all') }] }])],
    ['defaults: no transactional id, producer id or epoch', { acks: 1, timeout: 5000, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: messages(5, 3, 'none') }] }] }],
    // Timestamps with and without: deltas of years (varlongs past 32 bits), negative ones (kafkajs sorts them as strings).
    ['mixed timestamps', args({}, [{ topic: 't', partitions: [{ partition: 2, firstSequence: 0, messages: [...messages(9, 5, 'some'), { key: 'k', value: Buffer.from('v'), timestamp: '999' }] }] }])],
    // Offset deltas past one and two varint bytes.
    ['9,000 small records', args({}, [{ topic: 'maintenance.anomaly-scores.v1', partitions: [{ partition: 3, firstSequence: 123_456, messages: Array.from({ length: 9000 }, (_, i) => ({ key: `asset-${i % 48}`, value: Buffer.from(`{"score":${i}}`), headers: { 'content-type': 'application/json', 'event-id': `w-${i}` } })) }] }])],
    ['empty transactional id', args({ transactionalId: '' }, [{ topic: 't', partitions: [{ partition: 0, messages: messages(2, 6, 'none') }] }])],
  ];
  for (const [name, a] of cases) {
    // The fast path takes every one of these (else the comparison below would be kafkajs against itself).
    assert.ok(encodeProduceV3(a, kafkajsEncodingDeps()), `${name}: the fast path declined it`);
    const [want, got] = await both(a);
    assert.ok(got.equals(want), `${name}: ${got.length} bytes against kafkajs's ${want.length}`);
  }
});

test('what the fast path does not take is encoded (or refused) by kafkajs itself', async () => {
  const one = (m: Message, over: Partial<ProduceRequestArgs> = {}) => args(over, [{ topic: 't', partitions: [{ partition: 0, messages: [m] }] }]);
  // Compression: kafkajs's own encoding, so the same bytes.
  const gzip = one({ key: 'k', value: Buffer.alloc(3000, 7) }, { compression: Compression.GZIP! });
  assert.equal(encodeProduceV3(gzip, kafkajsEncodingDeps()), undefined);
  const [want, got] = await both(gzip);
  assert.ok(got.equals(want));
  // Inputs kafkajs refuses: the same error from both.
  for (const [name, m] of [
    ['a fractional timestamp', { key: 'k', value: 'v', timestamp: 1.5 }],
    ['a numeric header value', { key: 'k', value: 'v', headers: { n: 5 } }],
    ['a null header value', { key: 'k', value: 'v', headers: { n: null } }],
  ] as [string, Message][]) {
    const errorOf = async (f: ProduceRequestFactory) => {
      try {
        await f(one(m)).encode();
        return 'no error';
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`;
      }
    };
    const [a, b] = [await errorOf(original()), await errorOf(patched())];
    assert.notEqual(a, 'no error', `${name}: kafkajs refuses it`);
    assert.equal(b, a, name);
  }
});

test('one-pass grouping gives what kafkajs grouping gives, partitions and order alike', () => {
  // kafkajs's own module, compiled from its file (the cache now holds the patch).
  const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition');
  const m = new Module(path) as Module & { _compile(code: string, file: string): void };
  m._compile(readFileSync(path, 'utf8'), path);
  const kafkajsGrouping = m.exports as GroupMessagesPerPartition;
  assert.notEqual(kafkajsGrouping, groupMessagesPerPartition);
  const partitionMetadata = Array.from({ length: 12 }, (_, i) => ({ partitionId: i }));
  const msgs = Array.from({ length: 500 }, (_, i) => ({ key: `k${(i * 7919) % 97}`, value: String(i) }));
  const partitioner = ({ message }: { message: unknown }) => Number((message as { key: string }).key.slice(1)) % 12;
  for (const input of [msgs, msgs.slice(0, 1), []]) {
    const a = kafkajsGrouping({ topic: 't', partitionMetadata, messages: input, partitioner });
    const b = groupMessagesPerPartition({ topic: 't', partitionMetadata, messages: input, partitioner });
    assert.deepEqual(b, a);
    assert.deepEqual(Object.keys(b), Object.keys(a));
  }
  assert.deepEqual(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages: msgs, partitioner }), {});
});

test("the default partitioner's key hash keeps string keys' hashes and gives kafkajs's partitions", () => {
  // kafkajs's own murmur2, loaded afresh outside the require cache the patch replaced.
  const file = require.resolve('kafkajs/src/producer/partitioners/default/murmur2');
  const fresh = new Module(file);
  fresh.filename = file;
  fresh.paths = (Module as unknown as { _nodeModulePaths(p: string): string[] })._nodeModulePaths(file);
  (fresh as unknown as { _compile(code: string, file: string): void })._compile(readFileSync(file, 'utf8'), file);
  const murmur2 = fresh.exports as (key: unknown) => number;
  assert.notEqual(require(file), murmur2, 'the patched module is in the cache');
  let calls = 0;
  const memo = memoizedMurmur2((k) => (calls++, murmur2(k)), 3);
  const keys = ['pump-1', 'pump-1', 'line-7', 'pümp-€-𝄞', '', 'pump-1', 'a', 'b', 'c', 'pump-1'];
  for (const k of keys) assert.equal(memo(k), murmur2(k), k);
  // Hashed once while kept: the second 'pump-1' is the only hit; a cache of 3 starts afresh at '' and at 'b'.
  assert.equal(calls, 9);
  assert.equal(memo(Buffer.from('pump-1')), murmur2('pump-1'));
  // The default partitioner in use hashes like kafkajs: the partition of every key is kafkajs's.
  const { Partitioners } = require('kafkajs') as { Partitioners: { DefaultPartitioner: () => (a: unknown) => number } };
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({ partitionId, leader: 0 }));
  for (let i = 0; i < 500; i++) {
    const key = `asset-${i}`;
    assert.equal(partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }), (murmur2(key) & 0x7fffffff) % 12, key);
  }
});

test('the eight-bytes-a-step CRC-32C equals kafkajs own, at every length and alignment', () => {
  const kafkajsCrc = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;
  // The standard check value of CRC-32C.
  assert.equal(crc32C(Buffer.from('123456789')), 0xe3069283);
  const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + (i >> 3)) & 0xff));
  for (const [start, length] of [[0, 0], [0, 1], [1, 7], [3, 8], [5, 9], [0, 64], [7, 1023], [0, 5000], [13, 4096]] as const) {
    const slice = bytes.subarray(start, start + length);
    assert.equal(crc32C(slice), kafkajsCrc(slice), `bytes ${start}..${start + length}`);
  }
});

/** Every .ts file under a folder (not node_modules). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

test('only client.ts loads kafkajs at run time, so the patches it imports first always precede kafkajs', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const allowed = new Set(['shared/src/kafka/client.ts', 'shared/src/kafka/kafkajs-encoder.ts', 'shared/src/kafka/kafkajs-produce.ts', 'shared/src/kafka/kafkajs-fetch.ts']);
  const offenders: string[] = [];
  for (const file of ['shared/src', 'services', 'deploy'].flatMap((d) => sources(join(root, d)))) {
    const rel = relative(root, file).split(sep).join('/');
    const text = readFileSync(file, 'utf8');
    const valueImports = [...text.matchAll(/import\s+([^;]*?)\s+from\s+['"]kafkajs(?:\/[^'"]*)?['"]/g)].filter(([, clause]) => {
      const c = clause!.trim();
      if (c.startsWith('type ')) return false;
      const named = /^\{([^}]*)\}$/.exec(c);
      return !named || !named[1]!.split(',').every((s) => s.trim() === '' || s.trim().startsWith('type '));
    });
    const dynamic = /(?:require|import)\(\s*['"]kafkajs/.test(text) || /^\s*import\s+['"]kafkajs/m.test(text);
    if ((valueImports.length > 0 || dynamic) && !allowed.has(rel)) offenders.push(rel);
  }
  assert.deepEqual(offenders, [], 'import kafkajs values through shared/src/kafka/client.ts (kafkajs-patches.ts must run before kafkajs loads)');
  // client.ts imports the patches before kafkajs.
  const client = readFileSync(join(root, 'shared/src/kafka/client.ts'), 'utf8');
  assert.ok(client.indexOf("from './kafkajs-patches.js'") >= 0 && client.indexOf("from './kafkajs-patches.js'") < client.indexOf("from 'kafkajs'"));
});

test('in a worker process every patch is in place', async () => {
  // The vision worker's module graph in a fresh process, as its entry point loads it.
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const code = `await import(${JSON.stringify(pathToFileURL(join(root, 'services/vision-worker/src/worker.ts')).href)}); const m = await import(${JSON.stringify(pathToFileURL(join(root, 'shared/src/kafka/kafkajs-patches.ts')).href)}); process.stdout.write(JSON.stringify([m.fastProduce, m.fastFetch, m.coordinatorCache]));`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  assert.deepEqual(JSON.parse(out), [
    { produceRequest: true, grouping: true, keyHash: true, reasons: [] },
    { recordHeaders: true, reasons: [] },
    { transactionCoordinators: true, reasons: [] },
  ]);
});
