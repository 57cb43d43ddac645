/**
 * A strict scanner for the one JSON shape that dominates `factory.sensor.readings.v1`: a sensor
 * chunk. `JSON.parse` of a chunk, plus the JS array it builds for every sample row, was the
 * largest share of the sensor worker's main thread; this reads the bytes once and writes the
 * sample matrix straight into a single Float64Array, with no intermediate text and no per-row
 * arrays.
 *
 * It is a fast path, not a parser: anything unusual (escapes in strings, other keys, duplicate
 * keys, a row of the wrong width, a number out of range, bytes that are not UTF-8, ...) returns
 * undefined and the caller falls back to JSON.parse and the schema, which give the proper
 * violation. What it accepts, JSON.parse accepts and reads the same way: the whitespace, string
 * and number grammars are JSON's (RFC 8259), only narrower. The scanner checks shape and
 * types only; ids, channel names and limits remain the caller's (the chunk schema's) to check.
 *
 * Numbers are bit-identical to JSON.parse's, which gives the correctly rounded double of the
 * decimal text (round to nearest, ties to even). Read as an integer d of all its digits and a
 * power of ten e (the exponent part minus the fraction digits), a number of at most 15 digits
 * with |e| <= 22 takes Clinger's fast path: d < 10^15 < 2^53 is exact as a double, and so is
 * 10^|e| (5^22 < 2^53); IEEE 754 multiplication and division round correctly, so d * 10^e or
 * d / 10^-e, one operation on exact operands, is the correctly rounded value of the decimal:
 * JSON.parse's double. The sign is applied after; negation is exact and rounding to nearest is
 * symmetric, so -x is JSON.parse's -x and -0 stays -0. Any other number (16 or more digits, a
 * larger exponent) is read by `Number()` from its own text, the same correctly rounded
 * conversion, after the bytes were checked against JSON's number grammar here (Number() takes
 * more: `.5`, `1.`, `+1`, `0x10`, `Infinity`). That path is slow, so a chunk with many such
 * numbers is left to JSON.parse (see `slowNumbers`). A number that is not finite (1e400)
 * returns undefined: the schema refuses it, with its own message.
 */

/** A chunk read straight from its bytes: the sample matrix in one array, row-major. */
export interface ScannedChunk {
  assetId: string;
  chunkId: string;
  t0: number;
  periodMs: number;
  channels: string[];
  /** Sample rows (samples.length in the JSON). */
  rows: number;
  /** rows x channels.length numbers, row-major: values[i * channels.length + j] is samples[i][j]. */
  values: Float64Array;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** The six keys of a chunk; a key's index is its bit in the `seen` mask. */
const KEYS = ['assetId', 'chunkId', 't0', 'periodMs', 'channels', 'samples'].map((k) => Buffer.from(k, 'latin1'));
const ASSET_ID = 0;
const CHUNK_ID = 1;
const T0 = 2;
const PERIOD_MS = 3;
const CHANNELS = 4;
const ALL_KEYS = (1 << KEYS.length) - 1;

/** More digits than this and the digits may not be exact as an integer (10^15 < 2^53). */
const MAX_FAST_DIGITS = 15;
/** 10^k for k <= 22: every one is exact in a double (5^22 < 2^53). */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/** Fatal like parseJsonValue's decoder, but keeps a leading U+FEFF: that is text inside a string, not a BOM. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reused matrix buffer: each result gets an exact-size copy of its start. Buffers larger than this are not kept. */
const KEEP_SCRATCH = 1 << 16;
let scratch: Float64Array = new Float64Array(4096);
/**
 * Numbers read by Number() in the current scan. That costs about 0.2 us a number here (a string,
 * then the conversion), several times what it costs inside JSON.parse: chunks of full-precision
 * doubles (16-17 digits each) scanned 2.5 times as slowly as JSON.parse reads them. So when more
 * than SLOW_NUMBERS_FREE numbers plus one value in SLOW_NUMBER_SHARE need Number(), the chunk
 * is left to the general path.
 */
let slowNumbers = 0;
const SLOW_NUMBERS_FREE = 4;
const SLOW_NUMBER_SHARE = 8;
/** Where readNumber puts t0 and periodMs. */
const cell = new Float64Array(1);

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** The position of the first byte at or after p that is not JSON whitespace. */
function skipWs(b: Uint8Array, n: number, p: number): number {
  while (p < n && isWs(b[p]!)) p++;
  return p;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/**
 * Reads the JSON number at p into out[k]; returns the position after it, or -1 when there is no
 * number there or it is not finite. Kept small so that V8 inlines it into the sample loop: the
 * common form (no exponent, at most MAX_FAST_DIGITS digits) is computed here, anything else by
 * readNumberRest.
 */
function readNumber(b: Uint8Array, n: number, p: number, out: Float64Array, k: number): number {
  const start = p;
  let c = p < n ? b[p]! : -1;
  if (c === MINUS) c = ++p < n ? b[p]! : -1;
  if (!isDigit(c)) return -1;
  const intStart = p;
  let m = 0;
  do {
    m = m * 10 + (c - ZERO);
    c = ++p < n ? b[p]! : -1;
  } while (isDigit(c));
  let digits = p - intStart;
  if (digits > 1 && b[intStart] === ZERO) return -1; // a leading zero
  let fraction = 0;
  if (c === DOT) {
    const fractionStart = ++p;
    c = p < n ? b[p]! : -1;
    while (isDigit(c)) {
      m = m * 10 + (c - ZERO);
      c = ++p < n ? b[p]! : -1;
    }
    fraction = p - fractionStart;
    if (fraction === 0) return -1;
    digits += fraction;
  }
  if (c === 0x65 || c === 0x45 || digits > MAX_FAST_DIGITS) return readNumberRest(b, n, start, p, m, digits, -fraction, out, k);
  // m < 10^15 and 10^fraction are exact, so the one division rounds the exact value, correctly.
  const v = fraction === 0 ? m : m / POW10[fraction]!;
  out[k] = start < intStart ? -v : v;
  return p;
}

/**
 * The rest of readNumber, from p: the exponent part if any, then the value. `m` holds the
 * number's `digits` digits (exact if at most MAX_FAST_DIGITS), `e` the power of ten they are
 * scaled by so far (minus the fraction digits). `k` is also the count of values read before
 * this one (0 for t0 and periodMs), for the slowNumbers limit.
 */
function readNumberRest(b: Uint8Array, n: number, start: number, p: number, m: number, digits: number, e: number, out: Float64Array, k: number): number {
  let c = p < n ? b[p]! : -1;
  if (c === 0x65 || c === 0x45) {
    c = ++p < n ? b[p]! : -1;
    const negative = c === MINUS;
    if (negative || c === PLUS) c = ++p < n ? b[p]! : -1;
    if (!isDigit(c)) return -1;
    let x = 0;
    do {
      if (x < 1e6) x = x * 10 + (c - ZERO); // larger is out of the fast path's range either way
      c = ++p < n ? b[p]! : -1;
    } while (isDigit(c));
    e += negative ? -x : x;
  }
  let v: number;
  if (digits <= MAX_FAST_DIGITS && e >= -22 && e <= 22) {
    // Clinger's fast path: m and 10^|e| are exact, one operation rounds.
    v = e < 0 ? m / POW10[-e]! : m * POW10[e]!;
    if (b[start] === MINUS) v = -v;
  } else {
    if (++slowNumbers > SLOW_NUMBERS_FREE + k / SLOW_NUMBER_SHARE) return -1;
    // Grammar checked above: Number() reads what JSON.parse would.
    v = Number(utf8.decode(b.subarray(start, p)));
    if (!Number.isFinite(v)) return -1;
  }
  out[k] = v;
  return p;
}

/** One scan: p is the position of the next byte to read; the sample matrix is read into `values`. */
class Scanner {
  p = 0;
  /** Start and end (exclusive) of the last string read, and whether it held a byte >= 0x80. */
  private s0 = 0;
  private s1 = 0;
  private wide = false;
  /** The sample matrix, filled to `count`, `rows` rows of `width` values (-1 before the first row). */
  values: Float64Array = scratch;
  count = 0;
  rows = 0;
  width = -1;

  constructor(
    private readonly b: Uint8Array,
    private readonly n: number,
  ) {}

  /** Consumes byte c after optional whitespace; false when the next byte is anything else. */
  take(c: number): boolean {
    this.p = skipWs(this.b, this.n, this.p);
    if (this.p >= this.n || this.b[this.p] !== c) return false;
    this.p++;
    return true;
  }

  /** Reads a string without escapes or control characters up to its closing quote; p is just past its opening quote. */
  private stringBounds(): boolean {
    const { b, n } = this;
    let wide = false;
    for (let p = this.p; p < n; p++) {
      const c = b[p]!;
      if (c === QUOTE) {
        this.s0 = this.p;
        this.s1 = p;
        this.wide = wide;
        this.p = p + 1;
        return true;
      }
      if (c < 0x20 || c === BACKSLASH) return false;
      if (c >= 0x80) wide = true;
    }
    return false;
  }

  /** A string value, or undefined. `repeats`: a string that comes again and again (a channel name, an asset id), kept and reused. */
  string(repeats = false): string | undefined {
    if (!this.take(QUOTE) || !this.stringBounds()) return undefined;
    const { b, s0, s1 } = this;
    if (!this.wide && s1 - s0 <= 64) return repeats ? internedAscii(b, s0, s1) : ascii(b, s0, s1);
    try {
      return utf8.decode(b.subarray(s0, s1));
    } catch {
      return undefined;
    }
  }

  /** The index in KEYS of the next key (its colon consumed), or -1. */
  key(): number {
    if (!this.take(QUOTE) || !this.stringBounds() || !this.take(COLON)) return -1;
    const { b, s0, s1 } = this;
    search: for (let k = 0; k < KEYS.length; k++) {
      const key = KEYS[k]!;
      if (key.length !== s1 - s0) continue;
      for (let i = 0; i < key.length; i++) if (b[s0 + i] !== key[i]) continue search;
      return k;
    }
    return -1;
  }

  /** A finite number, or NaN. */
  number(): number {
    this.p = readNumber(this.b, this.n, skipWs(this.b, this.n, this.p), cell, 0);
    return this.p < 0 ? NaN : cell[0]!;
  }

  /** A non-empty array of strings, or undefined. */
  channels(): string[] | undefined {
    if (!this.take(OPEN_ARRAY)) return undefined;
    const out: string[] = [];
    do {
      const s = this.string(true);
      if (s === undefined) return undefined;
      out.push(s);
    } while (this.take(COMMA));
    return this.take(CLOSE_ARRAY) ? out : undefined;
  }

  /** The sample rows into `values`: at least one row, every row of the same width (at least 1). */
  samples(): boolean {
    if (!this.take(OPEN_ARRAY)) return false;
    const { b, n } = this;
    let { p, values, count, width, rows } = this;
    for (;;) {
      p = skipWs(b, n, p);
      if (p >= n || b[p] !== OPEN_ARRAY) return false;
      p = skipWs(b, n, p + 1);
      const rowStart = count;
      for (;;) {
        if (count === values.length) values = grow(values);
        p = readNumber(b, n, p, values, count++);
        if (p < 0) return false;
        // The compact form first: a comma straight after the number.
        let c = p < n ? b[p]! : -1;
        if (isWs(c)) {
          p = skipWs(b, n, p);
          c = p < n ? b[p]! : -1;
        }
        if (c !== COMMA) break;
        p = skipWs(b, n, p + 1);
      }
      if (p >= n || b[p] !== CLOSE_ARRAY) return false;
      p++;
      const cells = count - rowStart;
      if (width < 0) width = cells;
      else if (cells !== width) return false;
      rows++;
      p = skipWs(b, n, p);
      if (p >= n || b[p] !== COMMA) break;
      p++;
    }
    this.p = p;
    this.values = values;
    this.count = count;
    this.width = width;
    this.rows = rows;
    return this.take(CLOSE_ARRAY);
  }
}

/** Short ASCII text: char by char is about twice as fast as a TextDecoder call. */
function ascii(b: Uint8Array, s0: number, s1: number): string {
  let text = '';
  for (let i = s0; i < s1; i++) text += String.fromCharCode(b[i]!);
  return text;
}

/**
 * Strings read before, by a hash (FNV-1a) of their bytes. Every chunk of an asset repeats its
 * asset id and channel names: building them afresh (a string per character on the way) was a
 * tenth of what the sensor worker allocated. A hash that collides is told apart by comparing the
 * bytes; the cache starts afresh when full.
 */
const interned = new Map<number, string>();
const MAX_INTERNED = 1024;

function internedAscii(b: Uint8Array, s0: number, s1: number): string {
  let h = 0x811c9dc5;
  for (let i = s0; i < s1; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  const known = interned.get(h);
  if (known !== undefined && known.length === s1 - s0) {
    let i = 0;
    while (i < known.length && known.charCodeAt(i) === b[s0 + i]) i++;
    if (i === known.length) return known;
  }
  const text = ascii(b, s0, s1);
  if (interned.size >= MAX_INTERNED) interned.clear();
  interned.set(h, text);
  return text;
}

/** A buffer twice as large with the same start; kept for the next chunk while not too large. */
function grow(values: Float64Array): Float64Array {
  const next = new Float64Array(values.length * 2);
  next.set(values);
  if (next.length <= KEEP_SCRATCH) scratch = next;
  return next;
}

/**
 * Reads a sensor chunk from its UTF-8 JSON bytes, or returns undefined for anything but a plain
 * chunk: one object of exactly the keys assetId, chunkId (strings), t0, periodMs (numbers),
 * channels (a non-empty array of strings) and samples (a non-empty array of rows, each exactly
 * one number per channel), in any order, each once, with JSON whitespace anywhere between
 * tokens. Strings with escapes, any other key or value, numbers that are not finite, and
 * chunks of mostly long numbers (see `slowNumbers`) return undefined: the caller then runs
 * JSON.parse and the schema. Never throws. Limits (bytes, channels, rows) are the caller's.
 */
export function scanSensorChunk(bytes: Uint8Array): ScannedChunk | undefined {
  slowNumbers = 0;
  const s = new Scanner(bytes, bytes.length);
  let seen = 0;
  // Placeholders until read: `seen` tells when all six have been.
  let assetId: string | undefined = '';
  let chunkId: string | undefined = '';
  let t0 = 0;
  let periodMs = 0;
  let channels: string[] | undefined = [];
  if (!s.take(OPEN_OBJECT)) return undefined;
  do {
    const k = s.key();
    if (k < 0 || seen & (1 << k)) return undefined;
    seen |= 1 << k;
    if (k === ASSET_ID) {
      if ((assetId = s.string(true)) === undefined) return undefined;
    } else if (k === CHUNK_ID) {
      if ((chunkId = s.string()) === undefined) return undefined;
    } else if (k === T0) {
      if (Number.isNaN((t0 = s.number()))) return undefined;
    } else if (k === PERIOD_MS) {
      if (Number.isNaN((periodMs = s.number()))) return undefined;
    } else if (k === CHANNELS) {
      if ((channels = s.channels()) === undefined) return undefined;
    } else if (!s.samples()) {
      return undefined;
    }
  } while (s.take(COMMA));
  if (!s.take(CLOSE_OBJECT) || seen !== ALL_KEYS) return undefined;
  if (skipWs(bytes, bytes.length, s.p) !== bytes.length) return undefined;
  if (s.width !== channels.length) return undefined;
  return { assetId, chunkId, t0, periodMs, channels, rows: s.rows, values: s.values.slice(0, s.count) };
}
