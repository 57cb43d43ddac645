/**
 * Deterministic randomness. Every generated value comes from a stream named by its parts
 * (`seed`, run id, what it is for, index), so any frame or asset can be regenerated on its own
 * and two streams never share state: drawing one more number for a defect does not shift the
 * sensor noise of a run. `Math.random` is never used by the generators.
 */

/** A seeded pseudo-random stream. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  range(min: number, max: number): number;
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** -1 or +1 with equal probability. */
  sign(): 1 | -1;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** An independent unsigned 32-bit value (for seeding lattices and tables). */
  uint32(): number;
}

export type SeedPart = string | number;

/**
 * cyrb128: a fast 128-bit string hash (public domain, bryc). Four independent 32-bit lanes are
 * exactly the state sfc32 wants; its avalanche is good enough that neighbouring indices give
 * unrelated streams.
 */
function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** Joins parts with a separator no id can hold, so ('a', 'bc') and ('ab', 'c') differ. */
function seedText(parts: readonly SeedPart[]): string {
  return parts.map(String).join('\u0000');
}

/** A 32-bit hash of the parts; for lattice noise that needs a seed, not a stream. */
export function hashSeed(...parts: SeedPart[]): number {
  return cyrb128(seedText(parts))[0];
}

/**
 * A stream seeded by its parts, e.g. `createRng(seed, runId, 'frame', index)`. sfc32 (Chris
 * Doty-Humphrey's small fast counting generator; passes PractRand to 2^40+ bytes) is much faster
 * than a cryptographic generator and has a 2^128 state, far beyond any run.
 */
export function createRng(...parts: SeedPart[]): Rng {
  let [a, b, c, d] = cyrb128(seedText(parts));
  const uint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard the first outputs: sfc32 mixes its seed in over the first few rounds.
  for (let i = 0; i < 12; i++) uint32();
  const next = (): number => uint32() / 4294967296;
  let spare: number | undefined;
  return {
    next,
    uint32,
    range: (min, max) => min + (max - min) * next(),
    int: (min, max) => min + Math.floor((max - min + 1) * next()),
    chance: (p) => next() < p,
    sign: () => (next() < 0.5 ? -1 : 1),
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('pick from an empty list');
      return items[Math.floor(items.length * next())] as T;
    },
    normal() {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      let u = next();
      while (u <= Number.EPSILON) u = next();
      const r = Math.sqrt(-2 * Math.log(u));
      const phi = 2 * Math.PI * next();
      spare = r * Math.sin(phi);
      return r * Math.cos(phi);
    },
  };
}
