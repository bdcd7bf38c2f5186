// Waveforms from the server's audiowaveform `.dat` files (version 2: 16-bit min/max pairs per
// pixel and channel), drawn into a clip's box at the zoom level that fits.

/** Parses a `.dat` (v1 or v2) into {samplesPerPixel, channels, min: Int16Array, max}. */
export function parseDat(buffer) {
  const view = new DataView(buffer);
  const version = view.getInt32(0, true);
  const flags = view.getUint32(4, true);
  const samplesPerPixel = view.getInt32(12, true);
  const length = view.getUint32(16, true);
  const channels = version >= 2 ? view.getInt32(20, true) : 1;
  const header = version >= 2 ? 24 : 20;
  const eightBit = (flags & 1) === 1;
  const count = length * channels;
  const min = new Int16Array(length);
  const max = new Int16Array(length);
  for (let i = 0; i < length; i++) {
    let lo = 0;
    let hi = 0;
    for (let c = 0; c < channels; c++) {
      const at = (i * channels + c) * 2;
      const a = eightBit ? view.getInt8(header + at) * 256 : view.getInt16(header + at * 2, true);
      const b = eightBit ? view.getInt8(header + at + 1) * 256 : view.getInt16(header + at * 2 + 2, true);
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    }
    min[i] = lo;
    max[i] = hi;
  }
  return { samplesPerPixel, channels, length, min, max, count };
}

/** The zoom level (of 256, 1024, 4096) closest to `framesPerPixel` without being coarser. */
export function zoomFor(framesPerPixel) {
  return [4096, 1024, 256].find((z) => z <= framesPerPixel) ?? 256;
}

/**
 * Draws `peaks` (whose pixel 0 is the clip's source frame 0) into `ctx` for source frames
 * `offset..offset + length` over `width` pixels at `x`, inside a lane `height` tall.
 */
export function drawPeaks(ctx, peaks, { x, y, width, height, offset, length, color }) {
  ctx.fillStyle = color;
  const mid = y + height / 2;
  const framesPerPixel = length / width;
  for (let px = 0; px < width; px++) {
    const from = Math.floor((offset + px * framesPerPixel) / peaks.samplesPerPixel);
    const to = Math.max(from + 1, Math.floor((offset + (px + 1) * framesPerPixel) / peaks.samplesPerPixel));
    let lo = 0;
    let hi = 0;
    for (let i = from; i < to && i < peaks.length; i++) {
      lo = Math.min(lo, peaks.min[i]);
      hi = Math.max(hi, peaks.max[i]);
    }
    const top = mid - (hi / 32768) * (height / 2);
    const bottom = mid - (lo / 32768) * (height / 2);
    ctx.fillRect(x + px, top, 1, Math.max(1, bottom - top));
  }
}
