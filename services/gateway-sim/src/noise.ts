import type { Rng } from './rng.js';

/** Smoothstep weight: value noise interpolated with it has no visible lattice creases. */
function fade(t: number): number {
  return t * t * (3 - 2 * t);
}

/**
 * `length` samples of 1-D value noise in [-1, 1]: random values every `cell` samples, smoothly
 * interpolated between. Used for grain profiles (many short cells) and slow drifts.
 */
export function valueNoise1D(rng: Rng, length: number, cell: number): Float32Array {
  const knots = Math.ceil(length / cell) + 2;
  const k = new Float32Array(knots);
  for (let i = 0; i < knots; i++) k[i] = rng.range(-1, 1);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const x = i / cell;
    const j = Math.floor(x);
    const w = fade(x - j);
    out[i] = (k[j] ?? 0) * (1 - w) + (k[j + 1] ?? 0) * w;
  }
  return out;
}

/** A grid of random values in [-1, 1] sampled with smooth bilinear interpolation. */
export interface Lattice2D {
  /** Noise at lattice coordinates (gx, gy); coordinates outside the grid are clamped. */
  at(gx: number, gy: number): number;
}

export function createLattice2D(rng: Rng, cols: number, rows: number): Lattice2D {
  const c = Math.max(2, Math.ceil(cols) + 2);
  const r = Math.max(2, Math.ceil(rows) + 2);
  const grid = new Float32Array(c * r);
  for (let i = 0; i < grid.length; i++) grid[i] = rng.range(-1, 1);
  return {
    at(gx, gy) {
      const x = Math.min(Math.max(gx, 0), c - 1.001);
      const y = Math.min(Math.max(gy, 0), r - 1.001);
      const ix = Math.floor(x);
      const iy = Math.floor(y);
      const wx = fade(x - ix);
      const wy = fade(y - iy);
      const i0 = iy * c + ix;
      const top = (grid[i0] ?? 0) * (1 - wx) + (grid[i0 + 1] ?? 0) * wx;
      const bottom = (grid[i0 + c] ?? 0) * (1 - wx) + (grid[i0 + c + 1] ?? 0) * wx;
      return top * (1 - wy) + bottom * wy;
    },
  };
}
