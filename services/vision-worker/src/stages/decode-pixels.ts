import sharp from 'sharp';
import { ContractViolation } from '../../../../shared/src/contracts/errors.js';
import type { CameraFrame } from '../../../../shared/src/contracts/frame.js';

/** 8-bit gray pixels of a frame, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/**
 * Decodes a validated frame to 8-bit gray. gray8 is used as it is; PNG and JPEG go through sharp
 * (libvips, on libuv's thread pool, off the event loop), converted to one gray channel. The
 * contract already checked the declared dimensions against the limits; `limitInputPixels` is a
 * second guard inside the decoder. A decode failure (truncated or corrupt data past the header)
 * is a `corrupt-image` violation, never an exception.
 */
export async function decodePixels(frame: CameraFrame): Promise<GrayImage> {
  if (frame.contentType === 'image/x-gray8') {
    return { width: frame.width, height: frame.height, pixels: frame.image };
  }
  try {
    const { data, info } = await sharp(frame.image, { limitInputPixels: frame.width * frame.height, failOn: 'truncated' })
      .toColourspace('b-w')
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== frame.width || info.height !== frame.height || data.length !== frame.width * frame.height) {
      throw new ContractViolation('corrupt-image', 'value', 'decoded size must match the image header', `${info.width}x${info.height}x${info.channels}`);
    }
    return { width: info.width, height: info.height, pixels: data };
  } catch (err) {
    if (err instanceof ContractViolation) throw err;
    throw new ContractViolation('corrupt-image', 'value', `a decodable ${frame.contentType.slice(6).toUpperCase()} image`, (err as Error).message.slice(0, 200));
  }
}
