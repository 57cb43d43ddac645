/**
 * The sensor chunk scanner against JSON.parse, its reference: whatever it returns, JSON.parse
 * reads the same from the same bytes (every value compared with Object.is, so -0 and the last
 * bit count), and whatever it refuses falls back to JSON.parse and the schema.
 *
 * - The gateway simulator's chunks, as produced.
 * - Generated chunks: keys in any order, whitespace between tokens, numbers in every JSON form
 *   and magnitude (the fast path's limits and the slow path's subnormals and 17-digit values),
 *   unicode strings.
 * - Long numbers (16 or more digits, large exponents), which the scanner reads with Number():
 *   a few in a chunk are read, a chunk of mostly long numbers is left to JSON.parse.
 * - Mutants of valid chunks (byte deletions, insertions, replacements, truncation): when the
 *   scanner returns a chunk, JSON.parse must read that chunk; when JSON.parse reads a plain
 *   chunk (no escapes, no BOM, at most four long numbers), the scanner must return it too.
 * - Each refusal rule on its own.
 *
 * Randomness is seeded (`createRng`), so every failure reproduces.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRng, createSensorPlan, type Rng } from '../../services/gateway-sim/src/index.js';
import { scanSensorChunk, type ScannedChunk } from '../../shared/src/contracts/sensor-chunk-scan.js';

const KEYS = ['assetId', 'chunkId', 't0', 'periodMs', 'channels', 'samples'] as const;
/** Decodes like parseJsonValue: fatal, a leading BOM dropped. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface ParsedChunk {
  assetId: string;
  chunkId: string;
  t0: number;
  periodMs: number;
  channels: string[];
  samples: number[][];
}

/** What the general path reads from the bytes when they hold a plain chunk, else undefined. */
function reference(bytes: Uint8Array): ParsedChunk | undefined {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const c = json as Record<string, unknown>;
  if (Object.keys(c).sort().join() !== [...KEYS].sort().join()) return undefined;
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (typeof c.assetId !== 'string' || typeof c.chunkId !== 'string' || !finite(c.t0) || !finite(c.periodMs)) return undefined;
  const { channels, samples } = c;
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every((s) => typeof s === 'string')) return undefined;
  if (!Array.isArray(samples) || samples.length === 0) return undefined;
  if (!samples.every((row) => Array.isArray(row) && row.length === channels.length && row.every(finite))) return undefined;
  return c as unknown as ParsedChunk;
}

/** Asserts that the scan is exactly what JSON.parse reads; `where` names the input in failures. */
function assertSame(scanned: ScannedChunk | undefined, expected: ParsedChunk | undefined, where: string): void {
  assert.ok(expected, `${where}: the scanner returned a chunk that JSON.parse does not read as one`);
  assert.ok(scanned, `${where}: the scanner refused a plain chunk`);
  assert.equal(scanned.assetId, expected.assetId, where);
  assert.equal(scanned.chunkId, expected.chunkId, where);
  assert.ok(Object.is(scanned.t0, expected.t0), `${where}: t0 ${scanned.t0} != ${expected.t0}`);
  assert.ok(Object.is(scanned.periodMs, expected.periodMs), `${where}: periodMs ${scanned.periodMs} != ${expected.periodMs}`);
  assert.deepEqual(scanned.channels, expected.channels, where);
  const width = expected.channels.length;
  assert.equal(scanned.rows, expected.samples.length, where);
  assert.ok(scanned.values instanceof Float64Array, where);
  assert.equal(scanned.values.length, scanned.rows * width, where);
  expected.samples.forEach((row, i) =>
    row.forEach((v, j) => {
      const got = scanned.values[i * width + j];
      if (!Object.is(got, v)) assert.fail(`${where}: samples[${i}][${j}] is ${v} (JSON.parse), scanned ${got}`);
    }),
  );
}

const text = (s: string) => Buffer.from(s, 'utf8');
const scanText = (s: string) => scanSensorChunk(text(s));

// ---------------------------------------------------------------------------------------------
// Generated chunks

/**
 * Numbers the scanner computes itself (at most 15 digits, |power of ten| <= 22), and others,
 * which it reads with Number(), at most 4 (plus one value in 8) in a chunk.
 */
const SHORT_EDGES = [
  '0', '-0', '0.0', '-0.0', '0e0', '-0E+0', '1', '-1', '0.1', '0.2', '1e-7', '1E+2', '-1e-2', '1e22', '1e-22', '1.5e21',
  '4.35e-20', '9.999e19', '123456789012345', '-999999999999999', '100000000000000', '0.12345678901234', '0.000000000001',
  '9007199254740', '2284', '2287.1', '37.21', '1795934951741',
];
const LONG_EDGES = [
  '0.30000000000000004', '1234567890123456', '12345678901234567', '0.1234567890123456', '9007199254740991',
  '9007199254740992', '9007199254740993', '123456789012345678901234', '100000000000000000000000000000000000000000001',
  '1e23', '1e-23', '5e-324', '4.9406564584124654e-324', '2.2250738585072014e-308', '2.2250738585072011e-308', '1e-320',
  '1e-400', '-1e-400', '0e400', '-0e-400', '1.7976931348623157e308', '-1.7976931348623157E+308', '1.7976931348623158e307',
  '1e0000000000000000000005', '0.000000000000000000001', '1.000000000000000',
];

function digitsText(rng: Rng, count: number, first = '0123456789'): string {
  let s = first[rng.int(0, first.length - 1)]!;
  while (s.length < count) s += String(rng.int(0, 9));
  return s;
}

/** A number of at most 15 digits and a power of ten within 22: the fast paths. */
function shortNumberText(rng: Rng): string {
  const sign = rng.chance(0.3) ? '-' : '';
  switch (rng.int(0, 5)) {
    case 0:
      return rng.pick(SHORT_EDGES);
    case 1:
      return rng.chance(0.1) ? `${sign}0` : sign + digitsText(rng, rng.int(1, 15), '123456789');
    case 2: {
      const int = rng.chance(0.3) ? '0' : digitsText(rng, rng.int(1, 7), '123456789');
      return `${sign}${int}.${digitsText(rng, rng.int(1, 15 - int.length))}`;
    }
    case 3: {
      // d.ddd with an exponent in [-19, 19]: the power of ten stays within 22.
      const mantissa = rng.chance(0.5) ? digitsText(rng, 1, '123456789') : `${digitsText(rng, 1, '123456789')}.${digitsText(rng, rng.int(1, 3))}`;
      const x = rng.int(-19, 19);
      return `${sign}${mantissa}${rng.pick(['e', 'E'])}${x < 0 ? '-' : rng.pick(['', '+'])}${Math.abs(x)}`;
    }
    case 4:
      return `${sign}${rng.int(0, 99_999)}.${digitsText(rng, rng.int(1, 3))}`;
    default:
      return `${sign}${rng.int(0, 9999)}`;
  }
}

/** Any JSON number, mostly ones of 16 or more digits or large exponents; never one that reads as Infinity. */
function longNumberText(rng: Rng): string {
  const sign = rng.chance(0.3) ? '-' : '';
  const int = () => (rng.chance(0.2) ? '0' : digitsText(rng, rng.int(1, 20), '123456789'));
  let t: string;
  switch (rng.int(0, 5)) {
    case 0:
      t = rng.pick(LONG_EDGES);
      break;
    case 1:
      t = sign + digitsText(rng, rng.int(16, 25), '123456789');
      break;
    case 2:
      t = `${sign}${int()}.${digitsText(rng, rng.int(1, 20))}`;
      break;
    case 3:
      t = `${sign}${int()}${rng.chance(0.5) ? `.${digitsText(rng, rng.int(1, 8))}` : ''}${rng.pick(['e', 'E'])}${rng.pick(['', '+', '-'])}${rng.int(0, 330)}`;
      break;
    case 4:
      // Full-precision doubles, as String() prints them.
      t = String(rng.normal() * 10 ** rng.int(-12, 12));
      break;
    default:
      // 17 significant digits: tells a double from its neighbours, across the whole range.
      t = (rng.next() * 10 ** rng.int(-310, 308)).toExponential(16);
  }
  return Number.isFinite(Number(t)) ? t : longNumberText(rng);
}

const STRING_PARTS = ['pump', '-', '1', '/', 'x', '_', '.', 'ü', '€', '𝄞', ' ', '\u2028', '\u00a0', '#', '{', '}', '[', ']', ':', ',', "'"];

function stringText(rng: Rng): string {
  const parts = rng.int(0, rng.chance(0.1) ? 60 : 8);
  let s = rng.chance(0.05) ? '\ufeff' : ''; // U+FEFF first in a string is text, not a BOM
  for (let i = 0; i < parts; i++) s += rng.pick(STRING_PARTS);
  return s;
}

interface ChunkShape {
  maxRows: number;
  maxChannels: number;
  /** Chance of whitespace at each place it may go. */
  ws: number;
  /** Numbers of 16 or more digits or large exponents: at most this many, or any share. */
  longs: number | 'any';
}

/** A chunk as JSON text: keys in random order, whitespace, numbers and strings as generated. */
function chunkText(rng: Rng, shape: ChunkShape): string {
  let longs = shape.longs === 'any' ? Infinity : shape.longs;
  const longShare = shape.longs === 'any' ? rng.next() : 0.3;
  const num = () => (longs > 0 && rng.chance(longShare) ? (longs--, longNumberText(rng)) : shortNumberText(rng));
  const ws = () => (rng.chance(shape.ws) ? rng.pick([' ', '\n', '\t', '\r', '  ', '\r\n  ', ' \t ']) : '');
  const str = (s: string) => `${ws()}${JSON.stringify(s)}${ws()}`;
  const channels = Array.from({ length: rng.int(1, shape.maxChannels) }, () => stringText(rng));
  const rows = rng.int(1, shape.maxRows);
  const array = (items: string[]) => `${ws()}[${items.join(',')}]${ws()}`;
  const samples = Array.from({ length: rows }, () => array(channels.map(() => `${ws()}${num()}${ws()}`)));
  const values: Record<(typeof KEYS)[number], string> = {
    assetId: str(stringText(rng)),
    chunkId: str(stringText(rng)),
    t0: `${ws()}${rng.chance(0.5) ? String(1_795_934_951_741 + rng.int(0, 1e6)) : num()}${ws()}`,
    periodMs: `${ws()}${rng.chance(0.5) ? '100' : num()}${ws()}`,
    channels: array(channels.map(str)),
    samples: array(samples),
  };
  const order = [...KEYS].sort(() => rng.next() - 0.5);
  return `${ws()}{${order.map((k) => `${ws()}"${k}"${ws()}:${values[k]}`).join(',')}}${ws()}`;
}

// ---------------------------------------------------------------------------------------------
// Mutations

const EDIT_BYTES = [...'{}[]",:.-+eE0123456789 \\xtn0', '\t', '\n', '\r', '\f', '\0', '\x1f'].map((c) => c.charCodeAt(0)).concat([0x80, 0xbf, 0xc3, 0xe2, 0xef, 0xff]);

function mutate(bytes: Uint8Array, rng: Rng): Uint8Array {
  const b = [...bytes];
  const edits = rng.int(1, 3);
  for (let e = 0; e < edits && b.length > 0; e++) {
    const at = rng.int(0, b.length - 1);
    switch (rng.int(0, 6)) {
      case 0:
      case 1:
        b.splice(at, 1);
        break;
      case 2:
      case 3:
        b.splice(at, 0, rng.pick(EDIT_BYTES));
        break;
      case 4:
      case 5:
        b[at] = rng.pick(EDIT_BYTES);
        break;
      default:
        b.length = at;
    }
  }
  return Uint8Array.from(b);
}

// ---------------------------------------------------------------------------------------------

describe('sensor chunk scanner', () => {
  test("the gateway simulator's chunks read exactly as JSON.parse reads them", () => {
    const plan = createSensorPlan({ seed: 1, runId: 't', start: Date.now() - 3_600_000, assets: 4, format: 'chunk', chunkSize: 64 });
    const messages = plan.takeSync(40);
    for (const [i, m] of messages.entries()) {
      const bytes = m.record.value;
      assertSame(scanSensorChunk(bytes), reference(bytes), `chunk ${i}`);
    }
    const first = scanSensorChunk(messages[0]!.record.value);
    assert.equal(first?.rows, 64);
    assert.equal(first?.channels.length, 8);
  });

  test('generated chunks: any key order, whitespace, number forms and unicode read exactly as JSON.parse reads them', () => {
    const rng = createRng('sensor-chunk-scan', 'generated');
    for (let i = 0; i < 400; i++) {
      const s = chunkText(rng, { maxRows: i % 10 === 0 ? 300 : 20, maxChannels: 12, ws: i % 2 ? 0.3 : 0, longs: 4 });
      const bytes = text(s);
      assertSame(scanSensorChunk(bytes), reference(bytes), `chunk ${i}: ${s.slice(0, 400)}`);
    }
  });

  test('every JSON number form and magnitude reads as JSON.parse reads it', () => {
    const rng = createRng('sensor-chunk-scan', 'numbers');
    const forms = [...SHORT_EDGES, ...LONG_EDGES, ...Array.from({ length: 3000 }, (_, i) => (i % 2 ? longNumberText(rng) : shortNumberText(rng)))];
    for (const n of forms) {
      // Both places a number goes: the head and the matrix.
      const s = `{"assetId":"a","chunkId":"c","t0":${n},"periodMs":1,"channels":["x","y"],"samples":[[${n},${n}]]}`;
      assertSame(scanText(s), reference(text(s)), n);
    }
  });

  test('chunks of mostly long numbers are left to JSON.parse, which reads them faster; a few are read', () => {
    const rng = createRng('sensor-chunk-scan', 'long');
    const chunk = (rows: string[][]) => `{"assetId":"a","chunkId":"c","t0":1,"periodMs":100,"channels":["a","b","c","d"],"samples":[${rows.map((r) => `[${r.join(',')}]`).join(',')}]}`;
    const short = Array.from({ length: 64 }, () => Array.from({ length: 4 }, () => (rng.normal() * 50).toFixed(2)));
    // 16 or more digits: read by Number().
    const long = short.map((row) => row.map((v) => `${v}${digitsText(rng, 14, '123456789')}`));
    assert.equal(scanText(chunk(long)), undefined);
    assertSame(scanText(chunk(short)), reference(text(chunk(short))), 'short numbers');
    // Four anywhere (here the first row), then one value in ten.
    const some = short.map((row, i) => row.map((v, j) => (i === 0 || (i * 4 + j) % 10 === 9 ? long[i]![j]! : v)));
    assertSame(scanText(chunk(some)), reference(text(chunk(some))), 'some long numbers');
    // Full-precision doubles, as a gateway that prints raw doubles sends them.
    const doubles = short.map((row) => row.map(() => String(rng.normal() * 50)));
    assert.equal(scanText(chunk(doubles)), undefined);
    // Any share: whatever is read is read exactly, and both outcomes occur.
    let read = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = text(chunkText(rng, { maxRows: 40, maxChannels: 6, ws: 0.1, longs: 'any' }));
      const scanned = scanSensorChunk(bytes);
      if (scanned) {
        read++;
        assertSame(scanned, reference(bytes), `chunk ${i}`);
      }
    }
    assert.ok(read > 30 && read < 270, `${read} of 300 read`);
  });

  test('reads a Uint8Array view in the middle of a larger buffer', () => {
    const rng = createRng('sensor-chunk-scan', 'views');
    for (let i = 0; i < 50; i++) {
      const inner = text(chunkText(rng, { maxRows: 5, maxChannels: 4, ws: 0.2, longs: 4 }));
      // Bytes around the view that would continue a number or a string if read.
      const outer = new Uint8Array(inner.length + 8).fill(0x31);
      outer.set(inner, 4);
      const view = outer.subarray(4, 4 + inner.length);
      assertSame(scanSensorChunk(view), reference(inner), `view ${i}`);
    }
  });

  test('every result owns its values: a later scan does not change an earlier one', () => {
    const a = scanText('{"assetId":"a","chunkId":"c","t0":1,"periodMs":1,"channels":["x"],"samples":[[1],[2]]}');
    const b = scanText('{"assetId":"a","chunkId":"c","t0":1,"periodMs":1,"channels":["x"],"samples":[[3],[4],[5]]}');
    assert.deepEqual([...(a?.values ?? [])], [1, 2]);
    assert.deepEqual([...(b?.values ?? [])], [3, 4, 5]);
    // Larger than the reused buffer: it grows, and the results still do not share memory.
    const big = `{"assetId":"a","chunkId":"c","t0":1,"periodMs":1,"channels":["x","y"],"samples":[${Array.from({ length: 20_000 }, (_, i) => `[${i},-${i}.5]`).join(',')}]}`;
    const c = scanText(big);
    assertSame(c, reference(text(big)), 'a chunk of 40,000 values');
    assert.deepEqual([...(a?.values ?? [])], [1, 2]);
    assert.notEqual(a?.values.buffer, b?.values.buffer);
  });

  test('asset ids and channel names read before are reused, never mixed up, even when their hashes collide', () => {
    // "chraczfa" and "chllbppa" have the same FNV-1a hash, the key of the scanner's string cache.
    const chunk = (asset: string, channel: string) => `{"assetId":"${asset}","chunkId":"c","t0":1,"periodMs":1,"channels":["${channel}","x"],"samples":[[1,2]]}`;
    const first = scanText(chunk('chraczfa', 'chllbppa'));
    const second = scanText(chunk('chllbppa', 'chraczfa'));
    const third = scanText(chunk('chllbppa', 'chraczfa'));
    assert.deepEqual([first?.assetId, first?.channels], ['chraczfa', ['chllbppa', 'x']]);
    assert.deepEqual([second?.assetId, second?.channels], ['chllbppa', ['chraczfa', 'x']]);
    assert.deepEqual([third?.assetId, third?.channels], ['chllbppa', ['chraczfa', 'x']]);
    // Over a thousand distinct names: the cache starts afresh when full and keeps reading right.
    for (let i = 0; i < 2500; i++) assert.deepEqual(scanText(chunk(`pump-${i % 1300}`, `ch${i}`))?.channels, [`ch${i}`, 'x']);
  });

  test('mutants: the scanner returns a chunk exactly when JSON.parse reads a plain one, and the same chunk', () => {
    const rng = createRng('sensor-chunk-scan', 'mutants');
    const plan = createSensorPlan({ seed: 2, runId: 'm', start: 1_764_000_000_000, assets: 2, format: 'chunk', chunkSize: 3 });
    const seeds = [
      ...plan.takeSync(10).map((m) => new Uint8Array(m.record.value)),
      // At most one long number each: three edits make at most four, which are always read.
      ...Array.from({ length: 40 }, (_, i) => text(chunkText(rng, { maxRows: 3, maxChannels: 3, ws: i % 2 ? 0.2 : 0, longs: 1 }))),
    ];
    const counts = { accepted: 0, refused: 0, invalidJson: 0, escapeOrBom: 0 };
    for (let i = 0; i < 12_000; i++) {
      const bytes = mutate(seeds[i % seeds.length]!, rng);
      const scanned = scanSensorChunk(bytes);
      const expected = reference(bytes);
      const where = `mutant ${i}: ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`;
      if (scanned) {
        counts.accepted++;
        assertSame(scanned, expected, where);
      } else if (expected) {
        // Refused although JSON.parse reads a chunk: only for what the scanner leaves to it on purpose.
        const escapeOrBom = bytes.includes(0x5c) || (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf);
        assert.ok(escapeOrBom, `${where}: refused, but JSON.parse reads a plain chunk`);
        counts.escapeOrBom++;
      } else {
        counts.refused++;
        try {
          JSON.parse(utf8.decode(bytes));
        } catch {
          counts.invalidJson++;
        }
      }
    }
    // Both outcomes in numbers, so that a broken mutator cannot pass vacuously.
    assert.ok(counts.accepted > 1000 && counts.refused > 1000 && counts.invalidJson > 1000, JSON.stringify(counts));
  });

  test('the number grammar is JSON’s', () => {
    const chunk = (n: string) => `{"assetId":"a","chunkId":"c","t0":1,"periodMs":1,"channels":["x"],"samples":[[${n}]]}`;
    for (const n of ['01', '-01', '00', '-00', '01.5', '1.', '-1.', '.5', '-.5', '+1', '1e', '1e+', '1E-', '1e-+2', '-', '--1', '1.e5', '0x10', 'NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '1234567890123456789e400', '1_0', '1.5.2', '1e5e5', '1e5.5', 'true', 'null', '"1"', '1 2']) {
      assert.equal(reference(text(chunk(n))), undefined, `${n}: the general path refuses it too`);
      assert.equal(scanText(chunk(n)), undefined, n);
    }
  });

  test('refuses every other shape: the general path reports it', () => {
    const ok = { assetId: 'a', chunkId: 'c', t0: 1, periodMs: 100, channels: ['x', 'y'], samples: [[1, 2], [3, 4]] };
    const json = JSON.stringify(ok);
    assert.ok(scanText(json), 'the base case is accepted');
    const refused: Record<string, string | Uint8Array> = {
      'an extra key': JSON.stringify({ ...ok, gateway: 'g' }),
      'a duplicate key': json.replace('{', '{"t0":2,'),
      'a missing key': JSON.stringify({ ...ok, periodMs: undefined }),
      'an escaped string': JSON.stringify({ ...ok, assetId: 'a"b' }),
      'an escape that JSON.parse reads as plain text': json.replace('"a"', '"\\u0061"'),
      'an escaped key': json.replace('"t0"', '"\\u0074\\u0030"'),
      'a control character in a string': json.replace('"a"', '"a\tb"'),
      'a control character in a key': json.replace('"t0"', '"t0\u0001"'),
      'no channels': JSON.stringify({ ...ok, channels: [], samples: [[]] }),
      'no channels, rows of one value': JSON.stringify({ ...ok, channels: [], samples: [[1], [2]] }),
      'a row too short': JSON.stringify({ ...ok, samples: [[1, 2], [3]] }),
      'a row too long': JSON.stringify({ ...ok, samples: [[1, 2, 3], [3, 4, 5]] }),
      'all rows too long': JSON.stringify({ ...ok, samples: [[1, 2, 3]] }),
      'an empty row': JSON.stringify({ ...ok, samples: [[]] }),
      'no rows': JSON.stringify({ ...ok, samples: [] }),
      'a string in a row': JSON.stringify({ ...ok, samples: [[1, '2']] }),
      'null in a row': JSON.stringify({ ...ok, samples: [[1, null]] }),
      'a nested array': JSON.stringify({ ...ok, samples: [[1, [2]]] }),
      'a row that is not an array': JSON.stringify({ ...ok, samples: [1, 2] }),
      'assetId as a number': JSON.stringify({ ...ok, assetId: 7 }),
      't0 as a string': JSON.stringify({ ...ok, t0: '1' }),
      'a channel that is not a string': JSON.stringify({ ...ok, channels: ['x', 2] }),
      'a leading zero': json.replace('"t0":1', '"t0":01'),
      'a trailing comma in a row': json.replace('[1,2]', '[1,2,]'),
      'a trailing comma in the object': json.replace(/}$/, ',}'),
      'a missing comma': json.replace('[1,2]', '[1 2]'),
      'trailing garbage': `${json}x`,
      'a second object': `${json}{}`,
      'a number out of range': json.replace('[1,2]', '[1e400,2]'),
      'invalid UTF-8 in a string': Buffer.concat([text('{"assetId":"a'), Buffer.from([0xc3, 0x28]), text(json.slice(json.indexOf('","chunkId')))]),
      'a lone surrogate in UTF-8': Buffer.concat([text('{"assetId":"a'), Buffer.from([0xed, 0xa0, 0x80]), text(json.slice(json.indexOf('","chunkId')))]),
      'a BOM before the object': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text(json)]),
      'form feed as whitespace': ` \f${json}`,
      'empty input': '',
      'whitespace only': ' \n',
      'a top-level array': JSON.stringify([ok]),
      'a top-level string': '"chunk"',
      'an empty object': '{}',
      'a truncated object': json.slice(0, -1),
    };
    for (const [what, input] of Object.entries(refused)) {
      assert.equal(scanSensorChunk(typeof input === 'string' ? text(input) : input), undefined, what);
    }
  });

  test('JSON whitespace and key order are free; strings keep every character', () => {
    const s = ' \r\n\t{ "samples" : [ [ 1 , -0 ] ,\n[2.5,3e2] ] , "channels":[ "ä" , "\ufeffb𝄞" ],"periodMs":100,"t0":-1.5E-3,"chunkId":"\u2028","assetId":"pümp-€-𝄞"}\n ';
    assertSame(scanText(s), reference(text(s)), 'spaced');
    // Longer than the scanner builds char by char, ASCII and not.
    const long = { assetId: 'x'.repeat(100) + '€'.repeat(40), chunkId: 'y'.repeat(200), t0: 1, periodMs: 1, channels: ['z'.repeat(65)], samples: [[0]] };
    assertSame(scanText(JSON.stringify(long)), long, 'long strings');
  });

  test('never throws, on random bytes and on JSON-like soup', () => {
    const rng = createRng('sensor-chunk-scan', 'soup');
    for (let i = 0; i < 5000; i++) {
      const soup = Uint8Array.from({ length: rng.int(0, 80) }, () => (i % 2 ? rng.int(0, 255) : rng.pick(EDIT_BYTES)));
      assert.equal(scanSensorChunk(soup), undefined);
    }
  });
});
