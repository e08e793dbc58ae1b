import { describe, expect, it } from 'vitest';
import { createBucket, drain, refill, setRate, take, waitFor, type BucketState } from '../src/stores/bucket.js';
import { serverRate, serverRemaining, serverWait, type ServerView } from '../src/pipeline/limit/server-view.js';

/** Grants one unit after another as soon as the bucket allows, on a simulated clock; returns the grant times. */
function paceUnits(bucket: BucketState, charge: number, untilMs: number): number[] {
  const times: number[] = [];
  let now = bucket.updatedAt;
  for (;;) {
    refill(bucket, now);
    const wait = waitFor(bucket, charge);
    if (wait > 0) {
      now += wait;
      if (now > untilMs) return times;
      continue;
    }
    take(bucket, charge);
    times.push(now);
  }
}

describe('createBucket', () => {
  it.each<[string, number, number, { ratePerMs: number; capacity: number }]>([
    ['60,000/min with a 500 ms burst holds 500 and refills 1/ms', 60_000, 500, { ratePerMs: 1, capacity: 500 }],
    ['600/min with a 500 ms burst holds 5', 600, 500, { ratePerMs: 0.01, capacity: 5 }],
    ['60/min holds at least one request', 60, 500, { ratePerMs: 0.001, capacity: 1 }],
    ['150,000 tokens/min with a 1 s burst holds 2,500', 150_000, 1000, { ratePerMs: 2.5, capacity: 2500 }],
  ])('%s', (_name, perMinute, burstMs, expected) => {
    const bucket = createBucket(perMinute, burstMs, 1000);
    expect(bucket.ratePerMs).toBeCloseTo(expected.ratePerMs, 12);
    expect(bucket.capacity).toBeCloseTo(expected.capacity, 9);
    expect(bucket.level).toBe(bucket.capacity);
    expect(bucket.updatedAt).toBe(1000);
  });

  it.each<[string, number | null]>([
    ['null', null],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('is unlimited for a %s rate: it admits anything at once and take() leaves it full', (_name, perMinute) => {
    const bucket = createBucket(perMinute, 500, 0);
    expect(waitFor(bucket, 1e12)).toBe(0);
    take(bucket, 1e12);
    refill(bucket, 10);
    expect(bucket.level).toBe(Infinity);
  });
});

describe('refill, waitFor and take', () => {
  it('refills linearly and never above the capacity', () => {
    const bucket = createBucket(60_000, 500, 0);
    take(bucket, 500);
    refill(bucket, 200);
    expect(bucket.level).toBeCloseTo(200, 9);
    refill(bucket, 10_000);
    expect(bucket.level).toBe(500);
  });

  it('ignores a clock that goes backwards, and does not refill that time twice', () => {
    const bucket = createBucket(60_000, 500, 1000);
    take(bucket, 300);
    refill(bucket, 500);
    expect(bucket.level).toBe(200);
    expect(bucket.updatedAt).toBe(1000);
    refill(bucket, 1100);
    expect(bucket.level).toBeCloseTo(300, 9);
  });

  it.each<[string, number, number, number]>([
    ['a charge the level covers', 500, 100, 0],
    ['a charge equal to the level', 100, 100, 0],
    ['a charge 50 above the level (50 ms at 1/ms)', 50, 100, 50],
    ['a charge larger than the whole burst waits only for a full bucket', 0, 10_000, 500],
    ['a bucket 400 in debt and a charge of 100', -400, 100, 500],
  ])('waits for %s', (_name, level, charge, expectedMs) => {
    const bucket = createBucket(60_000, 500, 0);
    bucket.level = level;
    expect(waitFor(bucket, charge)).toBe(expectedMs);
  });

  it('admits a request larger than the burst by going into debt, and delays the next ones until it is paid off', () => {
    const bucket = createBucket(60_000, 500, 0); // 1 token/ms, 500 burst
    expect(waitFor(bucket, 5000)).toBe(0);
    take(bucket, 5000);
    expect(bucket.level).toBe(-4500);
    expect(waitFor(bucket, 100)).toBe(4600);
    refill(bucket, 4600);
    expect(waitFor(bucket, 100)).toBe(0);
  });

  it('waits forever on a bucket with a zero rate', () => {
    const bucket = createBucket(60_000, 500, 0);
    bucket.ratePerMs = 0;
    bucket.level = 0;
    expect(waitFor(bucket, 1)).toBe(Infinity);
  });

  it.each([60, 600, 3000, 6000, 7000, 10_000, 33_333, 90_000])(
    'paces requests at exactly %d per minute after the initial burst',
    (rpm) => {
      const bucket = createBucket(rpm, 500, 0);
      const times = paceUnits(bucket, 1, 60_000);
      const burst = Math.floor(Math.max(1, (rpm / 60_000) * 500));
      // The burst goes at t=0; then one per 60,000/rpm ms; the last one at or before t = 60 s.
      expect(times.filter((t) => t === 0)).toHaveLength(burst);
      expect(times.length - burst).toBe(Math.floor(rpm));
    },
  );

  it.each([
    [150_000, 700],
    [2_000_000, 1234],
    [30_000, 333],
  ])('paces a token budget of %d/min with %d-token requests to the budget over a minute', (tpm, charge) => {
    const bucket = createBucket(tpm, 500, 0);
    const times = paceUnits(bucket, charge, 60_000);
    const tokens = times.length * charge;
    const capacity = Math.max(1, (tpm / 60_000) * 500);
    // Everything granted fits in one minute's refill plus the initial burst (one request of debt at most).
    expect(tokens).toBeLessThanOrEqual(tpm + capacity + charge);
    expect(tokens).toBeGreaterThanOrEqual(tpm + capacity - charge);
  });
});

describe('setRate', () => {
  it('shrinks the capacity with the rate and clips the level', () => {
    const bucket = createBucket(60_000, 500, 0);
    setRate(bucket, 6000, 500, 0);
    expect(bucket.ratePerMs).toBeCloseTo(0.1, 12);
    expect(bucket.capacity).toBeCloseTo(50, 9);
    expect(bucket.level).toBeCloseTo(50, 9);
  });

  it('grows the capacity without raising the level', () => {
    const bucket = createBucket(6000, 500, 0);
    take(bucket, 50);
    setRate(bucket, 60_000, 500, 0);
    expect(bucket.capacity).toBe(500);
    expect(bucket.level).toBeCloseTo(0, 9);
  });

  it('keeps a debt as a debt', () => {
    const bucket = createBucket(60_000, 500, 0);
    take(bucket, 2000);
    setRate(bucket, 30_000, 500, 0);
    expect(bucket.level).toBe(-1500);
  });

  it('refills at the old rate up to the moment of the change', () => {
    const bucket = createBucket(60_000, 500, 0);
    take(bucket, 500);
    setRate(bucket, 6000, 500, 30); // 30 ms at 1/ms = 30, under the new capacity of 50
    expect(bucket.level).toBeCloseTo(30, 9);
    expect(bucket.updatedAt).toBe(30);
  });

  it('starts full when a limit is first learned for an unlimited bucket', () => {
    const bucket = createBucket(null, 500, 0);
    setRate(bucket, 600, 500, 100);
    expect(bucket.capacity).toBeCloseTo(5, 9);
    expect(bucket.level).toBeCloseTo(5, 9);
  });

  it('becomes unlimited when the limit is removed', () => {
    const bucket = createBucket(600, 500, 0);
    take(bucket, 5);
    setRate(bucket, null, 500, 0);
    expect(waitFor(bucket, 1e9)).toBe(0);
  });
});

describe('drain', () => {
  it('empties a bucket and holds refill back until the moment given (the end of a pause)', () => {
    const bucket = createBucket(60_000, 500, 0);
    drain(bucket, 5000);
    expect(bucket.level).toBe(0);
    refill(bucket, 3000);
    expect(bucket.level).toBe(0);
    refill(bucket, 5100);
    expect(bucket.level).toBeCloseTo(100, 9);
  });

  it('keeps an existing debt', () => {
    const bucket = createBucket(60_000, 500, 0);
    take(bucket, 800);
    drain(bucket, 0);
    expect(bucket.level).toBe(-300);
  });
});

describe('the server view (x-ratelimit-remaining-*)', () => {
  const view = (over: Partial<ServerView> = {}): ServerView => ({
    limit: 600,
    remaining: 0,
    ratePerMs: 0.01,
    observedAt: 1000,
    sentAtObservation: 10,
    ...over,
  });

  it.each<[string, ServerView, number, number, number]>([
    ['as observed, right away', view({ remaining: 100 }), 1000, 10, 100],
    ['refilled by the server over time', view({ remaining: 100 }), 3000, 10, 120],
    ['never refilled beyond the limit', view({ remaining: 590 }), 1_000_000, 10, 600],
    ['minus what we sent after the observed request', view({ remaining: 100 }), 1000, 25, 85],
    ['a clock before the observation adds nothing', view({ remaining: 100 }), 0, 10, 100],
  ])('serverRemaining is the budget %s', (_name, v, now, sent, expected) => {
    expect(serverRemaining(v, now, sent)).toBeCloseTo(expected, 9);
  });

  it.each<[string, ServerView, number, number, number, number, number]>([
    ['no wait while the server has room', view({ remaining: 100 }), 1000, 10, 1, 6, 0],
    ['a drained server budget: wait for its refill of charge + margin', view({ remaining: 0 }), 1000, 10, 1, 6, 700],
    ['part of the refill has already happened', view({ remaining: 0 }), 1500, 10, 1, 6, 200],
    ['a charge above the limit waits only for a full budget', view({ remaining: 0, limit: 100 }), 1000, 10, 1000, 0, 10_000],
    ['a zero refill rate waits forever', view({ remaining: 0, ratePerMs: 0 }), 1000, 10, 1, 0, Infinity],
  ])('serverWait: %s', (_name, v, now, sent, charge, margin, expected) => {
    expect(serverWait(v, now, sent, charge, margin)).toBe(expected);
  });

  it.each<[string, number]>([
    ['as large as the limit', 600],
    ['just under the limit, with the margin above it', 599],
    ['larger than the limit', 10_000],
  ])('serverWait for a charge %s waits for a full budget, never for more than the limit', (_name, charge) => {
    const v = view({ remaining: 0, limit: 600 });
    const wait = serverWait(v, 1000, 10, charge, 6);
    expect(wait).toBe(60_000);
    expect(serverWait(v, 1000 + wait, 10, charge, 6)).toBe(0);
  });

  it.each<[string, number, number, number | null, number]>([
    ['nominal (limit per minute) without a reset', 600, 0, null, 0.01],
    ['nominal when the budget is full', 600, 600, 1000, 0.01],
    ['the rate the reset implies, within reason', 600, 300, 20_000, 0.015],
    ['nominal when the implied rate is over 4× nominal (a garbled reset)', 600, 0, 1000, 0.01],
    ['nominal when the implied rate is under ¼ of nominal', 600, 590, 60_000, 0.01],
    ['nominal for a zero reset', 600, 0, 0, 0.01],
  ])('serverRate is %s', (_name, limit, remaining, resetMs, expected) => {
    expect(serverRate(limit, remaining, resetMs)).toBeCloseTo(expected, 12);
  });
});
