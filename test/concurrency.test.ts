import { describe, expect, it } from 'vitest';
import {
  BUSY_FLOOR,
  INITIAL_CONCURRENCY,
  MIN_CONCURRENCY,
  neededConcurrency,
  nextConcurrency,
  type ConcurrencyInputs,
} from '../src/pipeline/send/concurrency.js';

const RPM = (perMinute: number): number => perMinute / 60_000;

describe('neededConcurrency (from this process\'s own achieved rate × latency)', () => {
  it.each<[string, number, number, number, number]>([
    ['no answer yet: the cap', 512, RPM(1200), 0, 512],
    ['nothing achieved yet and no answer: the cap', 512, 0, 0, 512],
    ['an unmeasurable rate: the cap', 512, Infinity, 100, 512],
    ['nothing sent in the last interval (a pause): the minimum', 512, 0, 100, MIN_CONCURRENCY],
    ['1,200 RPM at 5 s: 20/s × 5 s × 2 + 4', 512, RPM(1200), 5000, 204],
    ['1,200 RPM at 100 ms: the minimum', 512, RPM(1200), 100, MIN_CONCURRENCY],
    ['10,000 RPM at 2 s, capped at 256', 256, RPM(10_000), 2000, 256],
    ['a cap below the minimum wins', 8, RPM(1200), 100, 8],
  ])('%s', (_name, cap, rate, latency, expected) => {
    expect(neededConcurrency(cap, rate, latency)).toBe(expected);
  });
});

describe('nextConcurrency', () => {
  const base: ConcurrencyInputs = { current: INITIAL_CONCURRENCY, cap: 512, achievedRatePerMs: 0, latencyMs: 0, utilisation: 0.3 };
  it.each<[string, Partial<ConcurrencyInputs>, number]>([
    ['an idle process doubles towards the cap', {}, 128],
    ['an idle process stops at the cap', { current: 400 }, 512],
    ['an idle process stops at what the budgets need', { current: 128, achievedRatePerMs: RPM(1200), latencyMs: 5000 }, 204],
    ['above what the budgets need: down to it at once', { current: 512, achievedRatePerMs: RPM(1200), latencyMs: 5000 }, 204],
    ['a busy process halves', { current: 512, utilisation: 0.97 }, 256],
    ['a busy process halves down to the floor', { current: 48, utilisation: 0.97 }, BUSY_FLOOR],
    ['a busy process stays at the floor', { current: BUSY_FLOOR, utilisation: 1 }, BUSY_FLOOR],
    ['busy counts from 0.9', { current: 256, utilisation: 0.9 }, 128],
    ['just under 0.9 is not busy', { current: 256, utilisation: 0.89 }, 512],
    ['a busy process with a cap under the floor keeps the cap', { current: 8, cap: 8, utilisation: 1 }, 8],
    ['a busy process never exceeds what the budgets need', { current: 64, achievedRatePerMs: RPM(600), latencyMs: 100, utilisation: 1 }, MIN_CONCURRENCY],
    ['a small current limit grows to at least the minimum', { current: 4 }, MIN_CONCURRENCY],
  ])('%s', (_name, change, expected) => {
    expect(nextConcurrency({ ...base, ...change })).toBe(expected);
  });

  it('settles at the floor while the process stays the bottleneck, and recovers within a few intervals', () => {
    let current = 512;
    for (let i = 0; i < 5; i++) current = nextConcurrency({ ...base, current, utilisation: 1 });
    expect(current).toBe(BUSY_FLOOR);
    const steps: number[] = [];
    for (let i = 0; i < 5; i++) steps.push((current = nextConcurrency({ ...base, current, utilisation: 0.2 })));
    expect(steps).toEqual([64, 128, 256, 512, 512]);
  });
});
