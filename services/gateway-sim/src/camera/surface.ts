import { createLattice2D, valueNoise1D } from '../noise.js';
import { createRng, type Rng } from '../rng.js';

/**
 * Metal surface finishes the simulated cameras look at. `brushed`: long straight grain lines
 * (a strip brushed along its length). `ground`: finer grinding marks that curve gently, as a cup
 * wheel leaves them (arcs of a circle whose centre is far outside the frame).
 */
export const SURFACE_FINISHES = ['brushed', 'ground'] as const;
export type SurfaceFinish = (typeof SURFACE_FINISHES)[number];

/**
 * What stays the same for one camera station across frames: the finish of the product, how the
 * station is lit and how noisy its sensor is. Drawn from the seed and camera id only, so a camera
 * looks the same in every run with the same seed.
 */
export interface CameraLook {
  finish: SurfaceFinish;
  /** Grain direction in radians (0 = along x). */
  grainAngle: number;
  /** Mean gray level of the bare surface, 0-255. */
  level: number;
  /** Standard deviation of the grain in gray levels. */
  grainContrast: number;
  /** Sensor (shot + read) noise, gray levels. */
  noiseSigma: number;
  /** Illumination gradient across the frame, as a fraction of `level`. */
  lightGradient: [x: number, y: number];
  /** Darkening towards the corners (ring light fall-off), fraction of `level`. */
  vignette: number;
  /** Amplitude of low-frequency illumination blotches, fraction of `level`. */
  shading: number;
  /** Seed of the blotch pattern. */
  shadingSeed: number;
}

export function drawCameraLook(rng: Rng): CameraLook {
  const finish = rng.pick(SURFACE_FINISHES);
  return {
    finish,
    // Stations look along the strip; small mounting tilts make the grain slightly oblique.
    grainAngle: rng.range(-0.12, 0.12) + (rng.chance(0.25) ? Math.PI / 2 : 0),
    level: rng.range(95, 160),
    grainContrast: finish === 'brushed' ? rng.range(7, 13) : rng.range(5, 9),
    noiseSigma: rng.range(1.5, 3.5),
    lightGradient: [rng.range(-0.18, 0.18), rng.range(-0.18, 0.18)],
    vignette: rng.range(0.05, 0.2),
    shading: rng.range(0.02, 0.06),
    shadingSeed: rng.uint32(),
  };
}

/** Across-grain table resolution: samples per pixel, so thin lines stay sharp when interpolated. */
const PROFILE_RES = 4;

/**
 * Maps pixels to grain coordinates. Across the grain: the distance that selects a grain line
 * (straight for brushed, the radius of the arc for ground). Along the grain: a linear
 * coordinate; for ground surfaces it is the tangent at the frame centre, close enough to the arc
 * length with the centre 2+ frame widths away, and only used to fade lines in and out.
 */
interface GrainFrame {
  /** Along-grain unit vector. */
  ux: number;
  uy: number;
  /** Brushed: across-grain unit vector; ground: the arcs' centre. */
  kind: 'line' | 'arc';
  vx: number;
  vy: number;
  cx: number;
  cy: number;
  acrossMin: number;
  acrossMax: number;
  alongMin: number;
  alongMax: number;
}

function grainFrame(look: CameraLook, width: number, height: number, rng: Rng): GrainFrame {
  const corners: [number, number][] = [
    [0, 0],
    [width, 0],
    [0, height],
    [width, height],
  ];
  const ux = Math.cos(look.grainAngle);
  const uy = Math.sin(look.grainAngle);
  const along = corners.map(([x, y]) => x * ux + y * uy);
  const alongMin = Math.min(...along);
  const alongMax = Math.max(...along);
  if (look.finish === 'brushed') {
    const across = corners.map(([x, y]) => -x * uy + y * ux);
    return { ux, uy, kind: 'line', vx: -uy, vy: ux, cx: 0, cy: 0, acrossMin: Math.min(...across), acrossMax: Math.max(...across), alongMin, alongMax };
  }
  // Ground: marks are arcs around a centre 2-5 frame widths away, across the grain direction.
  const radius = rng.range(2, 5) * Math.max(width, height);
  const side = rng.sign();
  const cx = width / 2 - uy * radius * side;
  const cy = height / 2 + ux * radius * side;
  const across = corners.map(([x, y]) => Math.hypot(x - cx, y - cy));
  // The nearest point of the frame may be on an edge, not a corner.
  const nx = Math.min(Math.max(cx, 0), width);
  const ny = Math.min(Math.max(cy, 0), height);
  return { ux, uy, kind: 'arc', vx: 0, vy: 0, cx, cy, acrossMin: Math.min(Math.hypot(nx - cx, ny - cy), ...across), acrossMax: Math.max(...across), alongMin, alongMax };
}

/**
 * The grain's brightness across the grain direction: three octaves of value noise (fine lines,
 * bands, broad streaks) plus a few deep grooves, scaled to unit standard deviation.
 */
function grainProfile(look: CameraLook, length: number, rng: Rng): Float32Array {
  const w = look.finish === 'brushed' ? [0.55, 0.35, 0.25] : [0.75, 0.3, 0.08];
  const fine = valueNoise1D(rng, length, 0.8 * PROFILE_RES);
  const band = valueNoise1D(rng, length, 2.5 * PROFILE_RES);
  const broad = valueNoise1D(rng, length, 9 * PROFILE_RES);
  const p = new Float32Array(length);
  for (let i = 0; i < length; i++) p[i] = (w[0] ?? 0) * (fine[i] ?? 0) + (w[1] ?? 0) * (band[i] ?? 0) + (w[2] ?? 0) * (broad[i] ?? 0);
  const grooves = Math.round(length / PROFILE_RES / 25);
  for (let g = 0; g < grooves; g++) {
    const at = rng.range(0, length);
    const halfWidth = rng.range(0.4, 1.2) * PROFILE_RES;
    const depth = rng.range(0.8, 1.6) * rng.sign();
    const from = Math.max(0, Math.floor(at - 3 * halfWidth));
    const to = Math.min(length - 1, Math.ceil(at + 3 * halfWidth));
    for (let i = from; i <= to; i++) p[i] = (p[i] ?? 0) + depth * Math.exp(-(((i - at) / halfWidth) ** 2));
  }
  let sum = 0;
  let sq = 0;
  for (const v of p) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / length;
  const std = Math.sqrt(Math.max(sq / length - mean * mean, 1e-12));
  for (let i = 0; i < length; i++) p[i] = ((p[i] ?? 0) - mean) / std;
  return p;
}

/** Illumination maps per camera look and frame size: the station's lighting does not change. */
const lightMaps = new WeakMap<CameraLook, Map<string, Float32Array>>();

/**
 * The station's illumination as a gain per pixel: a linear gradient (light from one side), ring
 * light fall-off towards the corners, and low-frequency blotches (diffuser, reflections).
 */
function lightMap(look: CameraLook, width: number, height: number): Float32Array {
  let byLook = lightMaps.get(look);
  if (!byLook) lightMaps.set(look, (byLook = new Map<string, Float32Array>()));
  const key = `${width}x${height}`;
  const cached = byLook.get(key);
  if (cached) return cached;
  const blotches = createLattice2D(createRng(look.shadingSeed), 4, 4);
  const [gx, gy] = look.lightGradient;
  const map = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const yn = (y + 0.5) / height - 0.5;
    for (let x = 0; x < width; x++) {
      const xn = (x + 0.5) / width - 0.5;
      map[y * width + x] =
        1 + gx * xn + gy * yn - look.vignette * 2 * (xn * xn + yn * yn) + look.shading * blotches.at((xn + 0.5) * 3 + 0.5, (yn + 0.5) * 3 + 0.5);
    }
  }
  byLook.set(key, map);
  return map;
}

/**
 * Renders the bare surface (no defects, no sensor noise) as floating-point gray levels, row
 * major. `rng` is the frame's own stream: each frame shows a fresh piece of the product under the
 * station's fixed look, with a little part-to-part variation in brightness.
 */
export function renderSurface(look: CameraLook, width: number, height: number, rng: Rng): Float32Array {
  const frame = grainFrame(look, width, height, rng);
  const profileLength = Math.ceil((frame.acrossMax - frame.acrossMin) * PROFILE_RES) + 4;
  const profile = grainProfile(look, profileLength, rng);
  // Each grain line fades in and out along its length: a lattice stretched along the grain.
  const cellAlong = look.finish === 'brushed' ? 40 : 18;
  const cellAcross = 2;
  const streaks = createLattice2D(rng, (frame.alongMax - frame.alongMin) / cellAlong, (frame.acrossMax - frame.acrossMin) / cellAcross);
  const light = lightMap(look, width, height);
  const level = look.level * rng.range(0.97, 1.03);
  const contrast = look.grainContrast;
  const { ux, uy, vx, vy, cx, cy, acrossMin, alongMin } = frame;
  const arc = frame.kind === 'arc';
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const py = y + 0.5;
    for (let x = 0; x < width; x++) {
      const px = x + 0.5;
      const across = (arc ? Math.sqrt((px - cx) * (px - cx) + (py - cy) * (py - cy)) : px * vx + py * vy) - acrossMin;
      const along = px * ux + py * uy - alongMin;
      const t = across * PROFILE_RES;
      const i = t | 0;
      const f = t - i;
      const g = (profile[i] ?? 0) * (1 - f) + (profile[i + 1] ?? 0) * f;
      const strength = 0.7 + 0.45 * streaks.at(along / cellAlong, across / cellAcross);
      const p = y * width + x;
      out[p] = (light[p] ?? 1) * (level + contrast * g * strength);
    }
  }
  return out;
}

/**
 * 65,536 standard normal values from a fixed stream. Sensor noise indexes it with 16 random bits
 * per pixel: iid Gaussian noise at one generator call per two pixels instead of a logarithm, a
 * square root and a cosine per pixel (the Box-Muller cost was most of a frame's render time).
 */
const GAUSSIAN_TABLE = (() => {
  const rng = createRng('gateway-sim/gaussian-table/v1');
  const t = new Float32Array(65536);
  for (let i = 0; i < t.length; i++) t[i] = rng.normal();
  return t;
})();

/**
 * Adds the camera sensor's noise. It runs after defects are drawn and on its own stream, so a
 * frame rendered with and without its defects differs only where the defects are.
 */
export function addSensorNoise(pixels: Float32Array, sigma: number, rng: Rng): void {
  const n = pixels.length;
  for (let i = 0; i < n; i += 2) {
    const bits = rng.uint32();
    pixels[i] = (pixels[i] ?? 0) + sigma * (GAUSSIAN_TABLE[bits & 0xffff] ?? 0);
    if (i + 1 < n) pixels[i + 1] = (pixels[i + 1] ?? 0) + sigma * (GAUSSIAN_TABLE[bits >>> 16] ?? 0);
  }
}

/**
 * Rounds (half to even) and clamps to 8-bit gray, row major: the `image/x-gray8` payload.
 * Uint8ClampedArray's conversion does both natively, several times faster than a loop.
 */
export function toGray8(pixels: Float32Array): Buffer {
  const out = new Uint8ClampedArray(pixels.length);
  out.set(pixels);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
