/** The byte scan that refuses deep JSON before it is parsed (middleware/json-depth.ts), in every charset body-parser accepts. */
import { scanJson } from '../../middleware/json-depth';

const nestsDeeperThan = (text: Uint8Array, max: number, charset: string) => scanJson(text, max, charset).tooDeep;

const enc = (s: string, charset: string): Uint8Array => {
  const units = [...s].map((c) => c.codePointAt(0)!);
  const w = charset.includes('32') ? 4 : charset.includes('16') ? 2 : 0;
  if (w === 0) return Buffer.from(s, 'utf8');
  const be = charset.endsWith('be');
  const out = Buffer.alloc(units.length * w);
  units.forEach((u, i) => {
    for (let k = 0; k < w; k++) out[i * w + (be ? k : w - 1 - k)] = (u >>> (8 * (w - 1 - k))) & 0xff; // BMP only, as used here
  });
  return out;
};

describe('scanJson', () => {
  const deep = (n: number) => '{"a":['.repeat(n) + ']}'.repeat(n); // 2n levels
  test.each(['utf-8', 'utf-16le', 'utf-16be', 'utf-32le', 'utf-32be'])(
    'counts objects and arrays, not what is inside strings (%s)',
    (cs) => {
      expect(nestsDeeperThan(enc(deep(5), cs), 10, cs)).toBe(false);
      expect(nestsDeeperThan(enc(deep(6), cs), 10, cs)).toBe(true);
      expect(nestsDeeperThan(enc(`{"s":"${'[{'.repeat(50)}\\"${'['.repeat(50)}"}`, cs), 10, cs)).toBe(false);
      expect(nestsDeeperThan(enc(`["\\\\",${'['.repeat(11)}`, cs), 10, cs)).toBe(true); // an escaped backslash ends no string
      expect(nestsDeeperThan(enc(`[${'{"笀":1},'.repeat(40)}1]`, cs), 10, cs)).toBe(false); // U+7B00: no '{' byte pair counts
    },
  );
  test('UTF-16 without a named byte order: by its byte-order mark, else by its first character', () => {
    const body = deep(6);
    expect(nestsDeeperThan(enc(body, 'utf-16be'), 10, 'utf-16')).toBe(true);
    expect(nestsDeeperThan(enc(body, 'utf-16le'), 10, 'utf-16')).toBe(true);
    expect(nestsDeeperThan(Buffer.concat([Buffer.from([0xfe, 0xff]), enc(body, 'utf-16be')]), 10, 'utf-16')).toBe(true);
    expect(nestsDeeperThan(Buffer.concat([Buffer.from([0xff, 0xfe]), enc(body, 'utf-16le')]), 10, 'utf-16')).toBe(true);
  });
  test.each(['utf-8', 'utf-16le', 'utf-32be'])('counts object properties at every level, not colons inside strings (%s)', (cs) => {
    const body = JSON.stringify({ a: 1, 'b:c': 'x:y', d: [{ e: { f: 'g\\":' } }, { h: null }], i: {} });
    expect(scanJson(enc(body, cs), 128, cs)).toEqual({ tooDeep: false, properties: 7 });
  });
});
