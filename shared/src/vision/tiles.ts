/**
 * How a frame becomes model inputs: the tile boxes that cover it, and each tile resampled to the
 * model's input size and normalised. The trainer and the vision worker both use these functions,
 * so a model sees in service exactly the kind of input it was trained on.
 */

/** Left, top, width, height in frame pixels. */
export interface TileBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Normalisation {
  scale: number;
  mean: number;
  std: number;
}

/**
 * Tiles of `tile` x `tile` pixels every `stride` pixels, row by row. Where the grid does not reach
 * the right or bottom edge, one more tile aligned to that edge covers the rest, so no pixel is
 * left unseen. A frame no larger than one tile is a single box: the whole frame.
 */
export function tileBoxes(width: number, height: number, tile: number, stride: number): TileBox[] {
  const starts = (size: number): number[] => {
    if (size <= tile) return [0];
    const s: number[] = [];
    for (let p = 0; p + tile <= size; p += stride) s.push(p);
    if (s[s.length - 1]! + tile < size) s.push(size - tile);
    return s;
  };
  const xs = starts(width);
  const ys = starts(height);
  const w = Math.min(tile, width);
  const h = Math.min(tile, height);
  const boxes: TileBox[] = [];
  for (const y of ys) for (const x of xs) boxes.push({ x, y, width: w, height: h });
  return boxes;
}

/**
 * Writes one tile of an 8-bit gray frame into `out` at `offset` as `outW` x `outH` floats:
 * each output pixel is the mean of the source pixels it covers, rounded to a gray level (area
 * resampling; a 64-pixel tile into a 32-pixel input averages 2x2 blocks), then
 * `(v * scale - mean) / std`. Upscaling
 * (a tile smaller than the input) takes the nearest source pixel.
 */
export function tileToInput(
  pixels: Uint8Array,
  frameWidth: number,
  box: TileBox,
  outW: number,
  outH: number,
  norm: Normalisation,
  out: Float32Array,
  offset: number,
): void {
  const sx = box.width / outW;
  const sy = box.height / outH;
  const k = norm.scale / norm.std;
  const c = norm.mean / norm.std;
  for (let oy = 0; oy < outH; oy++) {
    const y0 = box.y + Math.floor(oy * sy);
    const y1 = Math.max(y0 + 1, box.y + Math.floor((oy + 1) * sy));
    for (let ox = 0; ox < outW; ox++) {
      const x0 = box.x + Math.floor(ox * sx);
      const x1 = Math.max(x0 + 1, box.x + Math.floor((ox + 1) * sx));
      let sum = 0;
      for (let y = y0; y < y1; y++) {
        const row = y * frameWidth;
        for (let x = x0; x < x1; x++) sum += pixels[row + x]!;
      }
      // Rounded to a gray level, as a downscaled 8-bit image holds it (and as the trainer does).
      out[offset + oy * outW + ox] = Math.round(sum / ((y1 - y0) * (x1 - x0))) * k - c;
    }
  }
}
