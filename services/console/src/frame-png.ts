import sharp from 'sharp';
import type { HeldFrame } from './state/index.js';

/**
 * The PNG the browser gets for a frame: raw gray8 is wrapped by sharp, JPEG re-encoded, PNG sent
 * as it came. Fast compression: the image is shown once or twice and then replaced.
 */
export async function framePng(frame: HeldFrame): Promise<Buffer> {
  if (frame.contentType === 'image/png') return frame.image;
  const input = frame.contentType === 'image/x-gray8' ? sharp(frame.image, { raw: { width: frame.width, height: frame.height, channels: 1 } }) : sharp(frame.image);
  return input.png({ compressionLevel: 1 }).toBuffer();
}
