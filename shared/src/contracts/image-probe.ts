import { ContractViolation } from './errors.js';

export interface ImageSize {
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Reads width and height from a PNG's IHDR chunk without decoding pixels, so size limits hold
 * before any decoder allocates (a 100-byte PNG can declare 65535x65535).
 */
export function probePng(buf: Buffer): ImageSize {
  if (buf.length < 24 || !buf.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new ContractViolation('corrupt-image', 'value', 'PNG signature (89 50 4E 47 0D 0A 1A 0A)');
  }
  if (buf.toString('latin1', 12, 16) !== 'IHDR') throw new ContractViolation('corrupt-image', 'value', 'PNG must start with an IHDR chunk');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

/**
 * Reads width and height from a JPEG's first start-of-frame marker (SOF0..SOF15 except DHT,
 * JPG and DAC), walking marker segments; the scan data is never touched.
 */
export function probeJpeg(buf: Buffer): ImageSize {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) {
    throw new ContractViolation('corrupt-image', 'value', 'JPEG SOI marker (FF D8)');
  }
  let i = 2;
  while (i + 3 < buf.length) {
    if (buf[i] !== 0xff) throw new ContractViolation('corrupt-image', 'value', 'JPEG marker expected', `byte ${i}`);
    const marker = buf[i + 1] ?? 0;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    // FF 00 is a stuffed zero, not a marker. libjpeg skips it as garbage and scans on for the
    // next FF, so reading a segment length here would walk other segments than the decoder does:
    // a fake start-of-frame could then pass the limits while the decoder reads the real one.
    if (marker === 0x00) throw new ContractViolation('corrupt-image', 'value', 'JPEG marker expected', `byte ${i}`);
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // EOI or start of scan before any SOF
    const length = buf.readUInt16BE(i + 2);
    if (length < 2) throw new ContractViolation('corrupt-image', 'value', 'JPEG segment length >= 2', `byte ${i}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (i + 9 > buf.length) break;
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  throw new ContractViolation('corrupt-image', 'value', 'JPEG start-of-frame marker before the scan');
}
