/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 tables, no native code.
 * crc32c(Buffer.from('123456789')) === 0xE3069283.
 */
const POLY = 0x82f63b78;
const T = Array.from({ length: 8 }, () => new Int32Array(256));
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[0][n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[0][n];
  for (let t = 1; t < 8; t++) {
    c = T[0][c & 0xff] ^ (c >>> 8);
    T[t][n] = c;
  }
}
const [T0, T1, T2, T3, T4, T5, T6, T7] = T;

/** CRC32C of buf[start, end), continuing from `crc` (0 for a fresh checksum). Returns an unsigned 32-bit value. */
export function crc32c(buf: Uint8Array, crc = 0, start = 0, end = buf.length): number {
  let c = ~crc;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    c =
      T7[a & 0xff] ^
      T6[(a >>> 8) & 0xff] ^
      T5[(a >>> 16) & 0xff] ^
      T4[a >>> 24] ^
      T3[buf[i + 4]] ^
      T2[buf[i + 5]] ^
      T1[buf[i + 6]] ^
      T0[buf[i + 7]];
  }
  for (; i < end; i++) c = T0[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
