import { createLattice2D } from '../noise.js';
import type { Rng } from '../rng.js';

/**
 * Surface defects the simulator injects, each drawn the way it shows under diffuse top light:
 * - scratch: a thin straight or slightly curved line, bright (specular edge) or dark, with a
 *   faint opposite-polarity shoulder where material was ploughed aside;
 * - pit: a small dark crater with a highlight on the wall that faces the light;
 * - dent: a shallow depression, one side shaded and the other lit;
 * - crack: a dark jagged path that wanders and branches, tapering towards its tips;
 * - stain: an irregular soft-edged darker (or lighter, e.g. an oil film) patch, mottled inside;
 * - inclusion: a small sharp-edged dark patch stretched along the rolling (grain) direction.
 */
export const DEFECT_KINDS = ['scratch', 'pit', 'dent', 'crack', 'stain', 'inclusion'] as const;
export type DefectKind = (typeof DEFECT_KINDS)[number];

/** Pixel rectangle `[x, y, width, height]`, x and y of its top-left pixel. */
export type Box = [x: number, y: number, w: number, h: number];

/**
 * Smallest relative brightness change counted as part of a defect: 3% of the local level is
 * 3-5 gray levels on these surfaces, about the sensor noise, so the truth box holds what a
 * careful eye (or model) could see.
 */
export const VISIBLE_DELTA = 0.03;

/**
 * A defect's effect on the image: a relative brightness change over a rectangle, applied as
 * `pixel *= 1 + delta` so the defect keeps the surface's shading.
 */
export interface DefectMask {
  x0: number;
  y0: number;
  w: number;
  h: number;
  delta: Float32Array;
}

export interface DefectScene {
  width: number;
  height: number;
  /** Grain direction (radians): inclusions are rolled out along it. */
  grainAngle: number;
  /** Direction the light comes from (radians), shared by pits and dents in a frame. */
  lightAngle: number;
}

function createMask(scene: DefectScene, x0: number, y0: number, x1: number, y1: number): DefectMask {
  const ax = Math.max(0, Math.floor(x0));
  const ay = Math.max(0, Math.floor(y0));
  const bx = Math.min(scene.width, Math.ceil(x1));
  const by = Math.min(scene.height, Math.ceil(y1));
  const w = Math.max(0, bx - ax);
  const h = Math.max(0, by - ay);
  return { x0: ax, y0: ay, w, h, delta: new Float32Array(w * h) };
}

/** Keeps the stronger of the current and the new change (strokes of one defect overlap). */
function putStronger(mask: DefectMask, i: number, v: number): void {
  if (Math.abs(v) > Math.abs(mask.delta[i] ?? 0)) mask.delta[i] = v;
}

/** Draws a soft line segment: amplitude `amp` falling off as a Gaussian of the distance. */
function stroke(mask: DefectMask, ax: number, ay: number, bx: number, by: number, halfWidth: number, amp: number): void {
  const reach = 3 * halfWidth + 1;
  const x0 = Math.max(mask.x0, Math.floor(Math.min(ax, bx) - reach));
  const x1 = Math.min(mask.x0 + mask.w - 1, Math.ceil(Math.max(ax, bx) + reach));
  const y0 = Math.max(mask.y0, Math.floor(Math.min(ay, by) - reach));
  const y1 = Math.min(mask.y0 + mask.h - 1, Math.ceil(Math.max(ay, by) + reach));
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5 - ax;
      const py = y + 0.5 - ay;
      const t = len2 > 0 ? Math.min(1, Math.max(0, (px * dx + py * dy) / len2)) : 0;
      const ex = px - t * dx;
      const ey = py - t * dy;
      const d2 = (ex * ex + ey * ey) / (halfWidth * halfWidth);
      if (d2 > 9) continue;
      putStronger(mask, (y - mask.y0) * mask.w + (x - mask.x0), amp * Math.exp(-d2));
    }
  }
}

/** A point inside the frame, `margin` pixels from the edges where the frame allows. */
function placeCentre(scene: DefectScene, margin: number, rng: Rng): [number, number] {
  const mx = Math.min(margin, scene.width / 2);
  const my = Math.min(margin, scene.height / 2);
  return [rng.range(mx, scene.width - mx), rng.range(my, scene.height - my)];
}

function drawScratch(scene: DefectScene, rng: Rng): DefectMask {
  const diag = Math.hypot(scene.width, scene.height);
  const length = rng.range(Math.min(25, 0.3 * diag), Math.min(140, 0.7 * diag));
  const [cx, cy] = placeCentre(scene, 8, rng);
  const angle = rng.range(0, Math.PI);
  const [ux, uy] = [Math.cos(angle), Math.sin(angle)];
  const bend = rng.range(-0.12, 0.12) * length;
  const p0: [number, number] = [cx - (ux * length) / 2, cy - (uy * length) / 2];
  const p2: [number, number] = [cx + (ux * length) / 2, cy + (uy * length) / 2];
  const p1: [number, number] = [cx - uy * bend, cy + ux * bend];
  const halfWidth = rng.range(0.6, 1.4);
  const amp = rng.chance(0.6) ? rng.range(0.3, 0.6) : -rng.range(0.25, 0.45);
  const shoulder = 2.2 * halfWidth;
  const pad = 3 * halfWidth + shoulder + 2;
  const xs = [p0[0], p1[0], p2[0]];
  const ys = [p0[1], p1[1], p2[1]];
  const mask = createMask(scene, Math.min(...xs) - pad, Math.min(...ys) - pad, Math.max(...xs) + pad, Math.max(...ys) + pad);
  const steps = Math.max(4, Math.ceil(length / 4));
  const at = (t: number): [number, number] => {
    const a = (1 - t) * (1 - t);
    const b = 2 * (1 - t) * t;
    const c = t * t;
    return [a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]];
  };
  for (let s = 0; s < steps; s++) {
    const [ax, ay] = at(s / steps);
    const [bx, by] = at((s + 1) / steps);
    // Scratches fade out at their ends where the tool lifted.
    const taper = Math.sin((Math.PI * (s + 0.5)) / steps) ** 0.3;
    const nx = -(by - ay);
    const ny = bx - ax;
    const nl = Math.hypot(nx, ny) || 1;
    const ox = (nx / nl) * shoulder;
    const oy = (ny / nl) * shoulder;
    stroke(mask, ax + ox, ay + oy, bx + ox, by + oy, halfWidth, -0.3 * amp * taper);
    stroke(mask, ax, ay, bx, by, halfWidth, amp * taper);
  }
  return mask;
}

function drawPit(scene: DefectScene, rng: Rng): DefectMask {
  const r = rng.range(2.5, 6);
  const [cx, cy] = placeCentre(scene, 6, rng);
  const depth = rng.range(0.35, 0.6);
  const glint = rng.range(0.25, 0.5);
  // The wall facing away from the light faces it: the highlight sits on the far side.
  const hx = cx - Math.cos(scene.lightAngle) * 0.6 * r;
  const hy = cy - Math.sin(scene.lightAngle) * 0.6 * r;
  const reach = 2.5 * r + 1;
  const mask = createMask(scene, cx - reach, cy - reach, cx + reach, cy + reach);
  const hr = 0.35 * r;
  for (let y = 0; y < mask.h; y++) {
    for (let x = 0; x < mask.w; x++) {
      const px = mask.x0 + x + 0.5;
      const py = mask.y0 + y + 0.5;
      const d2 = ((px - cx) ** 2 + (py - cy) ** 2) / (r * r);
      const h2 = ((px - hx) ** 2 + (py - hy) ** 2) / (hr * hr);
      mask.delta[y * mask.w + x] = -depth * Math.exp(-1.5 * d2) + glint * Math.exp(-h2);
    }
  }
  return mask;
}

function drawDent(scene: DefectScene, rng: Rng): DefectMask {
  const radius = rng.range(8, 22);
  const [cx, cy] = placeCentre(scene, radius * 0.6, rng);
  const strength = rng.range(0.12, 0.25);
  const lx = Math.cos(scene.lightAngle);
  const ly = Math.sin(scene.lightAngle);
  const reach = 2.5 * radius;
  const mask = createMask(scene, cx - reach, cy - reach, cx + reach, cy + reach);
  // Brightness follows the slope of a Gaussian bowl towards the light; 0.858 = the largest
  // slope of exp(-d^2/R^2) times R, so `strength` is the peak change.
  for (let y = 0; y < mask.h; y++) {
    for (let x = 0; x < mask.w; x++) {
      const dx = mask.x0 + x + 0.5 - cx;
      const dy = mask.y0 + y + 0.5 - cy;
      const bowl = Math.exp(-(dx * dx + dy * dy) / (radius * radius));
      const slope = (-2 * (dx * lx + dy * ly) * bowl) / radius / 0.858;
      mask.delta[y * mask.w + x] = strength * slope - 0.04 * bowl;
    }
  }
  return mask;
}

interface CrackSegment {
  ax: number;
  ay: number;
  bx: number;
  by: number;
  halfWidth: number;
}

function drawCrack(scene: DefectScene, rng: Rng): DefectMask {
  const diag = Math.hypot(scene.width, scene.height);
  const total = rng.range(Math.min(30, 0.3 * diag), Math.min(110, 0.6 * diag));
  const startWidth = rng.range(0.9, 1.5);
  const amp = -rng.range(0.35, 0.6);
  const step = 2;
  const [sx, sy] = placeCentre(scene, 10, rng);
  const segments: CrackSegment[] = [];
  const walks: { x: number; y: number; heading: number; length: number; width: number }[] = [
    { x: sx, y: sy, heading: rng.range(0, 2 * Math.PI), length: total, width: startWidth },
  ];
  let branches = 0;
  // Cracks zig-zag but keep the direction the stress drives them: the heading jitters around
  // its initial value (mean-reverting), with an occasional sharp kink.
  while (walks.length > 0) {
    const walk = walks.pop();
    if (!walk) break;
    let { x, y, heading } = walk;
    const course = heading;
    const n = Math.max(1, Math.round(walk.length / step));
    for (let i = 0; i < n; i++) {
      heading += 0.3 * rng.normal() - 0.25 * (heading - course) + (rng.chance(0.04) ? rng.sign() * 0.8 : 0);
      const nx = x + step * Math.cos(heading);
      const ny = y + step * Math.sin(heading);
      if (nx < 0 || ny < 0 || nx > scene.width || ny > scene.height) break;
      const halfWidth = Math.max(0.45, walk.width * (1 - (0.7 * i) / n));
      segments.push({ ax: x, ay: y, bx: nx, by: ny, halfWidth });
      if (branches < 3 && i > 2 && i < n - 3 && rng.chance(0.05)) {
        branches++;
        walks.push({ x: nx, y: ny, heading: heading + rng.sign() * rng.range(0.5, 1.1), length: (n - i) * step * rng.range(0.3, 0.6), width: halfWidth * 0.8 });
      }
      x = nx;
      y = ny;
    }
  }
  if (segments.length === 0) segments.push({ ax: sx, ay: sy, bx: sx + 1, by: sy, halfWidth: startWidth });
  const pad = 3 * startWidth + 2;
  const xs = segments.flatMap((s) => [s.ax, s.bx]);
  const ys = segments.flatMap((s) => [s.ay, s.by]);
  const mask = createMask(scene, Math.min(...xs) - pad, Math.min(...ys) - pad, Math.max(...xs) + pad, Math.max(...ys) + pad);
  for (const s of segments) stroke(mask, s.ax, s.ay, s.bx, s.by, s.halfWidth, amp);
  return mask;
}

/** Smooth 0..1 step over [-0.5, 0.5]. */
function edge(t: number): number {
  const c = Math.min(1, Math.max(0, t + 0.5));
  return c * c * (3 - 2 * c);
}

function drawStain(scene: DefectScene, rng: Rng): DefectMask {
  const radius = rng.range(10, 35);
  const [cx, cy] = placeCentre(scene, radius * 0.5, rng);
  // Outline: a circle bent by harmonics 2-7 with random amplitudes falling off with the order.
  const harmonics = [2, 3, 4, 5, 6, 7].map((k) => ({ k, a: rng.range(0, 0.3) / k ** 0.7, phase: rng.range(0, 2 * Math.PI) }));
  const softness = rng.range(2, 6);
  const amp = rng.chance(0.7) ? -rng.range(0.1, 0.22) : rng.range(0.08, 0.18);
  const mottle = createLattice2D(rng, (4 * radius) / 6, (4 * radius) / 6);
  const reach = radius * (1 + harmonics.reduce((s, h) => s + h.a, 0)) + softness + 1;
  const mask = createMask(scene, cx - reach, cy - reach, cx + reach, cy + reach);
  for (let y = 0; y < mask.h; y++) {
    for (let x = 0; x < mask.w; x++) {
      const dx = mask.x0 + x + 0.5 - cx;
      const dy = mask.y0 + y + 0.5 - cy;
      const phi = Math.atan2(dy, dx);
      let r = radius;
      for (const h of harmonics) r += radius * h.a * Math.cos(h.k * phi + h.phase);
      const inside = edge((r - Math.hypot(dx, dy)) / softness);
      if (inside === 0) continue;
      const m = 0.75 + 0.25 * mottle.at((dx + 2 * radius) / 6, (dy + 2 * radius) / 6);
      mask.delta[y * mask.w + x] = amp * inside * m;
    }
  }
  return mask;
}

function drawInclusion(scene: DefectScene, rng: Rng): DefectMask {
  const a = rng.range(4, 14);
  const b = rng.range(1, 3);
  const [cx, cy] = placeCentre(scene, a, rng);
  const angle = scene.grainAngle + rng.range(-0.08, 0.08);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const amp = -rng.range(0.3, 0.55);
  const wobble = rng.range(0.05, 0.2);
  const wobblePhase = rng.range(0, 2 * Math.PI);
  const reach = a * (1 + wobble) + 3;
  const mask = createMask(scene, cx - reach, cy - reach, cx + reach, cy + reach);
  for (let y = 0; y < mask.h; y++) {
    for (let x = 0; x < mask.w; x++) {
      const dx = mask.x0 + x + 0.5 - cx;
      const dy = mask.y0 + y + 0.5 - cy;
      const u = dx * c + dy * s;
      const v = -dx * s + dy * c;
      const q = Math.hypot(u / a, v / b);
      const boundary = 1 + wobble * Math.sin(3 * Math.atan2(v / b, u / a) + wobblePhase);
      // Sharp edge: ~0.8 px transition measured across the short axis.
      const inside = edge(((boundary - q) * b) / 0.8);
      if (inside > 0) mask.delta[y * mask.w + x] = amp * inside;
    }
  }
  return mask;
}

const DRAWERS: Record<DefectKind, (scene: DefectScene, rng: Rng) => DefectMask> = {
  scratch: drawScratch,
  pit: drawPit,
  dent: drawDent,
  crack: drawCrack,
  stain: drawStain,
  inclusion: drawInclusion,
};

/** The mask of one defect of `kind`, placed and shaped by `rng`. */
export function drawDefect(kind: DefectKind, scene: DefectScene, rng: Rng): DefectMask {
  return DRAWERS[kind](scene, rng);
}

/** The tight box around the mask's visible change, or undefined when nothing is visible. */
export function visibleBox(mask: DefectMask): Box | undefined {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let y = 0; y < mask.h; y++) {
    for (let x = 0; x < mask.w; x++) {
      if (Math.abs(mask.delta[y * mask.w + x] ?? 0) < VISIBLE_DELTA) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  if (maxX < 0) return undefined;
  return [mask.x0 + minX, mask.y0 + minY, maxX - minX + 1, maxY - minY + 1];
}

/** Applies the mask to a float image of the given width: `pixel *= 1 + delta`. */
export function applyMask(pixels: Float32Array, width: number, mask: DefectMask): void {
  for (let y = 0; y < mask.h; y++) {
    const row = (mask.y0 + y) * width + mask.x0;
    for (let x = 0; x < mask.w; x++) {
      const d = mask.delta[y * mask.w + x] ?? 0;
      if (d !== 0) pixels[row + x] = (pixels[row + x] ?? 0) * (1 + d);
    }
  }
}

/**
 * Which defects a frame gets: none with probability `1 - defectRate`, else one (70%), two (22%)
 * or three (8%) defects of kinds drawn uniformly from `kinds`.
 */
export function chooseDefects(rng: Rng, defectRate: number, kinds: readonly DefectKind[]): DefectKind[] {
  if (kinds.length === 0 || !rng.chance(defectRate)) return [];
  const u = rng.next();
  const count = u < 0.7 ? 1 : u < 0.92 ? 2 : 3;
  return Array.from({ length: count }, () => rng.pick(kinds));
}
