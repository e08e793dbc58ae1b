import { describe, expect, it } from 'vitest';
import { KeySet, hash64 } from '../src/shared/keyset.js';
import { mulberry32 } from '../src/shared/random.js';

/** `count` random custom_id-like keys of 2–16 characters (base64url of 1–12 random bytes). */
function randomKeys(random: () => number, count: number): string[] {
  const bytes = Buffer.alloc(count * 12);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
  return Array.from({ length: count }, (_, i) => bytes.toString('base64url', i * 12, i * 12 + 1 + Math.floor(random() * 12)));
}

function randomKey(random: () => number): string {
  return randomKeys(random, 1)[0] as string;
}

describe('KeySet', () => {
  it('remembers what was added, and add() says whether the key was new', () => {
    const set = new KeySet();
    expect(set.add('a1')).toBe(true);
    expect(set.add('a2')).toBe(true);
    expect(set.add('a1')).toBe(false);
    expect(set.has('a1')).toBe(true);
    expect(set.has('a2')).toBe(true);
    expect(set.has('a3')).toBe(false);
    expect(set.size).toBe(2);
  });

  it('keeps every key across many doublings of its table', () => {
    const set = new KeySet(1);
    const keys = Array.from({ length: 50_000 }, (_, i) => `line-${i + 1}`);
    expect(keys.filter((key) => set.add(key))).toHaveLength(keys.length);
    expect(set.size).toBe(keys.length);
    expect(keys.every((key) => set.has(key))).toBe(true);
    expect(keys.every((key) => !set.add(key))).toBe(true);
    expect(set.has('line-0')).toBe(false);
    expect(set.has('line-50001')).toBe(false);
  });

  it.each(['', ' ', 'ünïcödé 😀', '\u0000', 'a'.repeat(10_000)])('handles the unusual key %j', (key) => {
    const set = new KeySet();
    expect(set.has(key)).toBe(false);
    expect(set.add(key)).toBe(true);
    expect(set.has(key)).toBe(true);
    expect(set.add(key)).toBe(false);
  });

  it('finds none of 200,000 absent keys among 200,000 random keys it holds (no false positives)', () => {
    const random = mulberry32(42);
    const present = new Set<string>();
    while (present.size < 200_000) for (const key of randomKeys(random, 200_000 - present.size)) present.add(key);
    const absent: string[] = [];
    while (absent.length < 200_000) for (const key of randomKeys(random, 200_000 - absent.length)) if (!present.has(key)) absent.push(key);
    const set = new KeySet();
    for (const key of present) set.add(key);
    expect(set.size).toBe(200_000);
    let missing = 0;
    for (const key of present) if (!set.has(key)) missing += 1;
    let falsePositives = 0;
    for (const key of absent) if (set.has(key)) falsePositives += 1;
    expect(missing).toBe(0);
    expect(falsePositives).toBe(0);
  });
});

describe('hash64', () => {
  it.each<[string, [number, number]]>([
    ['', [3954623016, 3809779812]],
    ['a', [1463730432, 103277292]],
    ['line-1', [153349848, 2322038969]],
    ['line-2', [1509123058, 2920466725]],
    ['req-000001', [2485662065, 2723311958]],
    ['ünïcödé 😀', [2787223777, 2695900046]],
  ])('hashes %j to the same pair on every run and platform', (key, expected) => {
    expect(hash64(key)).toEqual(expected);
  });

  it('gives two unsigned 32-bit lanes, never (0, 0)', () => {
    const random = mulberry32(7);
    const isLane = (n: number): boolean => Number.isInteger(n) && n >= 0 && n < 2 ** 32;
    const bad = Array.from({ length: 10_000 }, () => hash64(randomKey(random))).filter(
      ([hi, lo]) => !isLane(hi) || !isLane(lo) || (hi === 0 && lo === 0),
    );
    expect(bad).toEqual([]);
  });

  it('tells apart keys that differ in one character or only in order', () => {
    const pairs = [
      ['line-12', 'line-21'],
      ['ab', 'ba'],
      ['custom-1', 'custom-2'],
      ['a', 'a\u0000'],
    ];
    for (const [a, b] of pairs) expect(hash64(a as string)).not.toEqual(hash64(b as string));
  });
});
