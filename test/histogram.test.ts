import { describe, expect, it } from 'vitest';
import { Histogram } from '../src/shared/histogram.js';
import { mulberry32 } from '../src/shared/random.js';

/** The exact quantile the histogram approximates: the ceil(q·n)-th smallest value. */
function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

const QUANTILES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

describe('Histogram', () => {
  it.each<[string, (random: () => number) => number]>([
    ['uniform latencies of 50 ms – 5 s', (r) => 50 + r() * 4950],
    ['log-uniform latencies of 100 ms – 120 s', (r) => 100 * Math.exp(r() * Math.log(1200))],
    ['a long tail: mostly ~800 ms, a few minutes-long', (r) => (r() < 0.98 ? 600 + r() * 400 : 30_000 + r() * 90_000)],
  ])('gives every percentile within 2 per cent of the exact one for %s', (_name, draw) => {
    const random = mulberry32(2026);
    const values = Array.from({ length: 100_000 }, () => draw(random));
    const histogram = new Histogram();
    for (const v of values) histogram.record(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of QUANTILES) {
      const exact = exactQuantile(sorted, q);
      const approx = histogram.quantile(q);
      // 2% bucket width, plus rounding to whole ms.
      expect(Math.abs(approx - exact)).toBeLessThanOrEqual(0.02 * exact + 0.5);
    }
    expect(histogram.count).toBe(values.length);
  });

  it('reports the maximum exactly (to the ms)', () => {
    const random = mulberry32(5);
    const histogram = new Histogram();
    let max = 0;
    for (let i = 0; i < 10_000; i++) {
      const v = 10 + random() * 90_000;
      max = Math.max(max, v);
      histogram.record(v);
    }
    expect(histogram.max).toBe(Math.round(max));
    expect(histogram.quantile(1)).toBe(Math.round(max));
    expect(histogram.summary().max).toBe(Math.round(max));
  });

  it('never reports a percentile above the maximum seen', () => {
    const histogram = new Histogram();
    histogram.record(1000.4);
    expect(histogram.summary()).toEqual({ p50: 1000, p90: 1000, p95: 1000, p99: 1000, max: 1000 });
  });

  it('gives zeros before anything is recorded', () => {
    expect(new Histogram().summary()).toEqual({ p50: 0, p90: 0, p95: 0, p99: 0, max: 0 });
  });

  it.each<[string, number[], { p50: number; max: number }]>([
    ['sub-millisecond values', [0.2, 0.4, 0.9], { p50: 1, max: 1 }],
    ['negative values (a clock step) as 0', [-5, -1], { p50: 0, max: 0 }],
    ['identical values', [812, 812, 812, 812], { p50: 812, max: 812 }],
  ])('records %s', (_name, values, expected) => {
    const histogram = new Histogram();
    for (const v of values) histogram.record(v);
    expect(histogram.summary()).toMatchObject(expected);
  });

  it('keeps the p50/p90/p95/p99 of 1 … 1000 ms within 2%', () => {
    const histogram = new Histogram();
    for (let ms = 1; ms <= 1000; ms++) histogram.record(ms);
    const summary = histogram.summary();
    for (const [q, value] of [
      [500, summary.p50],
      [900, summary.p90],
      [950, summary.p95],
      [990, summary.p99],
    ] as const) {
      expect(Math.abs(value - q)).toBeLessThanOrEqual(0.02 * q + 0.5);
    }
    expect(summary.max).toBe(1000);
  });
});
