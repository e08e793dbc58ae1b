import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HeaderMap } from '../src/shared/headers.js';
import { CAUTIOUS_IN_FLIGHT, MemoryLimiter, type Grant, type LimiterOptions } from '../src/pipeline/limit.js';
import { RequestTooLargeError } from '../src/shared/errors.js';
import { RECOVERY_PER_SECOND, SLOWDOWN_FACTOR } from '../src/stores/budget-store.js';

type MemoryLimiterOptions = Omit<LimiterOptions, 'store'>;

// Every test runs on fake timers: the limiter's clock is Date.now, which they move.
const T0 = Date.parse('2026-11-20T12:00:00Z');

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

/** The simulated ms since the test began. */
const elapsed = (): number => Date.now() - T0;

/** Most tests pin the cautious start to one first request; those about the cautious start use the default. */
function limiter(options: MemoryLimiterOptions = {}): MemoryLimiter {
  return new MemoryLimiter({ now: () => Date.now(), cautiousInFlight: 1, ...options });
}

/** Queues `count` acquisitions at once and records when each is granted (ms since T0). */
function queue(l: MemoryLimiter, model: string, tokens: number, count: number): { times: number[]; grants: Grant[] } {
  const times: number[] = [];
  const grants: Grant[] = [];
  for (let i = 0; i < count; i++) {
    l.acquire(model, tokens).then(
      (grant) => {
        times.push(elapsed());
        grants.push(grant);
      },
      () => {}, // close() rejects what is still waiting when a test ends
    );
  }
  return { times, grants };
}

/** Acquires, moving the simulated clock until the grant comes (at most `limitMs`). */
async function acquireSoon(l: MemoryLimiter, model: string, tokens: number, limitMs = 120_000): Promise<Grant> {
  let grant: Grant | undefined;
  void l.acquire(model, tokens).then((g) => (grant = g));
  const deadline = Date.now() + limitMs;
  await vi.advanceTimersByTimeAsync(0);
  while (grant === undefined && Date.now() < deadline && vi.getTimerCount() > 0) await vi.advanceTimersToNextTimerAsync();
  if (grant === undefined) throw new Error(`no grant within ${limitMs} ms`);
  return grant;
}

/** Acquires and reports whether the grant came within `withinMs` of simulated time. */
async function grantedWithin(l: MemoryLimiter, model: string, tokens: number, withinMs: number): Promise<Grant | null> {
  let grant: Grant | null = null;
  l.acquire(model, tokens).then(
    (g) => (grant = g),
    () => {},
  );
  await vi.advanceTimersByTimeAsync(withinMs);
  return grant;
}

function limitHeaders(over: HeaderMap = {}): HeaderMap {
  return {
    'x-ratelimit-limit-requests': '600',
    'x-ratelimit-limit-tokens': '150000',
    'x-ratelimit-remaining-requests': '599',
    'x-ratelimit-remaining-tokens': '149000',
    'x-ratelimit-reset-requests': '100ms',
    'x-ratelimit-reset-tokens': '400ms',
    ...over,
  };
}

describe('MemoryLimiter pacing with --rpm/--tpm', () => {
  it('bursts at most burstMs worth of the per-minute rate at the start', async () => {
    const l = limiter({ rpm: 600, burstMs: 500 });
    const { times } = queue(l, 'gpt-4o-mini', 1, 50);
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toEqual([0, 0, 0, 0, 0]);
    l.close();
  });

  it('paces at exactly --rpm over a simulated minute after the burst', async () => {
    const l = limiter({ rpm: 600, burstMs: 500 });
    const { times } = queue(l, 'gpt-4o-mini', 1, 1000);
    await vi.advanceTimersByTimeAsync(60_000);
    const afterBurst = times.filter((t) => t > 0);
    expect(afterBurst).toHaveLength(600);
    // Evenly spaced: one every 100 ms.
    expect(afterBurst.slice(0, 5)).toEqual([100, 200, 300, 400, 500]);
    expect(afterBurst.at(-1)).toBe(60_000);
    l.close();
  });

  it('paces a token budget: --tpm 60000 with 1,000-token requests gives 60 a minute after the burst', async () => {
    const l = limiter({ tpm: 60_000, burstMs: 1000 });
    const { times } = queue(l, 'gpt-4o-mini', 1000, 200);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(times.filter((t) => t === 0)).toHaveLength(1);
    expect(times.filter((t) => t > 0)).toHaveLength(60);
    l.close();
  });

  it('admits a request larger than the burst with debt and delays the next ones until it is paid', async () => {
    const l = limiter({ tpm: 60_000, burstMs: 500 }); // 1 token/ms, burst 500
    const { times } = queue(l, 'gpt-4o', 5000, 1);
    const next = queue(l, 'gpt-4o', 100, 2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toEqual([0]);
    // 4,500 tokens of debt plus 100 for the next request: 4,600 ms; then 100 ms more.
    expect(next.times).toEqual([4600, 4700]);
    l.close();
  });

  it('rejects a request larger than the whole --tpm with RequestTooLargeError', async () => {
    const l = limiter({ tpm: 30_000 });
    await expect(l.acquire('gpt-4o', 31_538)).rejects.toBeInstanceOf(RequestTooLargeError);
    await expect(l.acquire('gpt-4o', 31_538)).rejects.toMatchObject({ code: 'request_too_large' });
    await expect(l.acquire('gpt-4o', 30_000)).resolves.toBeDefined();
    l.close();
  });

  it('keeps the order of queued requests (a small one does not overtake a large one)', async () => {
    const l = limiter({ tpm: 60_000, burstMs: 500 });
    await l.acquire('m', 500);
    const order: string[] = [];
    void l.acquire('m', 400).then(() => order.push('large'));
    void l.acquire('m', 10).then(() => order.push('small'));
    await vi.advanceTimersByTimeAsync(2000);
    expect(order).toEqual(['large', 'small']);
    l.close();
  });
});

describe('MemoryLimiter learning limits from headers', () => {
  it('uses the limit headers × headroom when no flag is given', () => {
    const l = limiter({ headroom: 0.9 });
    return l.acquire('gpt-4o-mini', 10).then(async (grant) => {
      await l.observe(grant, limitHeaders());
      expect((await l.snapshot())['gpt-4o-mini']).toMatchObject({
        rpm: 540,
        tpm: 135_000,
        baseRpm: 540,
        baseTpm: 135_000,
        headerRpm: 600,
        headerTpm: 150_000,
        source: 'headers',
      });
      l.close();
    });
  });

  it.each<[string, MemoryLimiterOptions, HeaderMap, { rpm: number | null; tpm: number | null; source: string }]>([
    ['flags alone', { rpm: 100, tpm: 5000 }, {}, { rpm: 100, tpm: 5000, source: 'flags' }],
    ['nothing at all', {}, {}, { rpm: null, tpm: null, source: 'default' }],
    ['flags lower than the headers keep the flags', { rpm: 100, tpm: 5000 }, limitHeaders(), { rpm: 100, tpm: 5000, source: 'flags' }],
    ['a header lower than its flag wins', { rpm: 1000, tpm: 5000 }, limitHeaders(), { rpm: 600, tpm: 5000, source: 'mixed' }],
    ['a flag for one budget and a header for the other', { rpm: 100 }, limitHeaders(), { rpm: 100, tpm: 135_000, source: 'mixed' }],
    ["Azure's -1 limits are ignored", {}, limitHeaders({ 'x-ratelimit-limit-requests': '-1', 'x-ratelimit-limit-tokens': '-1' }), { rpm: null, tpm: null, source: 'default' }],
  ])('with %s the budgets are as expected', async (_name, options, headers, expected) => {
    const l = limiter(options);
    const grant = await l.acquire('gpt-4o-mini', 10);
    await l.observe(grant, headers);
    expect((await l.snapshot())['gpt-4o-mini']).toMatchObject(expected);
    l.close();
  });

  // By design: with a flag, a lower header wins as it stands, without --headroom. The flag says
  // "run at this budget"; a header at or below it is the account's real limit, and running at it
  // exactly is safe because the limiter also follows x-ratelimit-remaining. Scaling it would make
  // `--rpm 1200` on a 1,200 RPM account run at 1,080 (bench case (a) needs ≥ 0.95 of the limit).
  it('uses a header that is lower than its flag as it stands, without headroom', async () => {
    const l = limiter({ rpm: 1000, headroom: 0.9 });
    const grant = await l.acquire('gpt-4o-mini', 10);
    await l.observe(grant, limitHeaders());
    expect((await l.snapshot())['gpt-4o-mini']).toMatchObject({ rpm: 600, source: 'headers' });
    l.close();
  });

  it('paces at the learned rate once the first answer arrives', async () => {
    const l = limiter({ headroom: 1, burstMs: 500 });
    const first = await l.acquire('gpt-4o-mini', 1);
    const { times } = queue(l, 'gpt-4o-mini', 1, 200);
    await vi.advanceTimersByTimeAsync(1000);
    expect(times).toEqual([]); // cautious start: nothing known yet
    await l.observe(first, limitHeaders({ 'x-ratelimit-remaining-requests': '600', 'x-ratelimit-remaining-tokens': '150000' }));
    l.release(first);
    await vi.advanceTimersByTimeAsync(10_000);
    // 600/min learned at t=1000: a burst of 5, then one per 100 ms for 10 s.
    expect(times.filter((t) => t === 1000)).toHaveLength(5);
    expect(times.filter((t) => t > 1000)).toHaveLength(100);
    l.close();
  });

  it('rejects a request larger than the whole TPM the headers announced', async () => {
    const l = limiter();
    const grant = await l.acquire('gpt-4o', 100);
    await l.observe(grant, limitHeaders({ 'x-ratelimit-limit-tokens': '30000' }));
    l.release(grant);
    await expect(l.acquire('gpt-4o', 31_538)).rejects.toBeInstanceOf(RequestTooLargeError);
    // Headroom does not shrink what the server itself would accept.
    await expect(l.acquire('gpt-4o', 29_000)).resolves.toBeDefined();
    l.close();
  });

  it('rejects a queued request once the headers show it is larger than the whole TPM', async () => {
    const l = limiter();
    const first = await l.acquire('gpt-4o', 100);
    const waiting = l.acquire('gpt-4o', 50_000);
    await l.observe(first, limitHeaders({ 'x-ratelimit-limit-tokens': '30000' }));
    await expect(waiting).rejects.toBeInstanceOf(RequestTooLargeError);
    l.close();
  });
});

describe('MemoryLimiter cautious start', () => {
  it(`lets ${CAUTIOUS_IN_FLIGHT} requests per unknown model go first and holds the rest until one is answered`, async () => {
    expect(CAUTIOUS_IN_FLIGHT).toBe(4);
    const l = limiter({ cautiousInFlight: undefined });
    const { times: firstTimes, grants } = queue(l, 'gpt-4o-mini', 10, 4);
    const { times } = queue(l, 'gpt-4o-mini', 10, 3);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(firstTimes).toEqual([0, 0, 0, 0]);
    expect(times).toEqual([]);
    expect((await l.snapshot())['gpt-4o-mini']).toMatchObject({ inFlight: 4, waiting: 3 });
    await l.observe(grants[0] as Grant, {});
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toEqual([30_000, 30_000, 30_000]);
    l.close();
  });

  it('lets the next request go when one of the first ends without an answer (release only)', async () => {
    const l = limiter({ cautiousInFlight: undefined });
    const { grants } = queue(l, 'gpt-4o-mini', 10, 4);
    const { times } = queue(l, 'gpt-4o-mini', 10, 2);
    await vi.advanceTimersByTimeAsync(500);
    l.release(grants[0] as Grant);
    await vi.advanceTimersByTimeAsync(0);
    // Still unknown: one more goes in its place, no more.
    expect(times).toEqual([500]);
    l.close();
  });

  it('is per model: another unknown model gets its own first request at once', async () => {
    const l = limiter();
    await l.acquire('gpt-4o-mini', 10);
    expect(await grantedWithin(l, 'gpt-4.1', 10, 0)).not.toBeNull();
    l.close();
  });

  it('does not apply when a flag sets the budget', async () => {
    const l = limiter({ rpm: 6000 });
    const { times } = queue(l, 'gpt-4o-mini', 10, 3);
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toEqual([0, 0, 0]);
    l.close();
  });
});

describe('MemoryLimiter after a 429 (penalise)', () => {
  it('pauses the model until the wait the server named', async () => {
    const l = limiter({ rpm: 6000 });
    const grant = await l.acquire('gpt-4o-mini', 1);
    expect(await l.penalise(grant, 5000, {})).toBe(5000);
    l.release(grant);
    const { times } = queue(l, 'gpt-4o-mini', 1, 1);
    await vi.advanceTimersByTimeAsync(4999);
    expect(times).toEqual([]);
    expect((await l.snapshot())['gpt-4o-mini']?.pausedUntil).toBe(T0 + 5000);
    await vi.advanceTimersByTimeAsync(2000);
    expect(times).toHaveLength(1);
    expect(times[0]).toBeGreaterThanOrEqual(5000);
    l.close();
  });

  it('slows the rate by SLOWDOWN_FACTOR once per episode, however many 429s arrive together', async () => {
    const l = limiter({ rpm: 1000 });
    const grants = await Promise.all([l.acquire('m', 1), l.acquire('m', 1), l.acquire('m', 1)]);
    for (const grant of grants) await l.penalise(grant, 2000, {});
    expect(SLOWDOWN_FACTOR).toBe(0.7);
    expect((await l.snapshot()).m).toMatchObject({ rateFactor: 0.7, rpm: 700, baseRpm: 1000 });
    l.close();
  });

  it('slows down again for a new episode after the pause', async () => {
    const l = limiter({ rpm: 1000 });
    const first = await l.acquire('m', 1);
    await l.penalise(first, 1000, {});
    await vi.advanceTimersByTimeAsync(1500);
    const second = await l.acquire('m', 1);
    await l.penalise(second, 1000, {});
    // Half a second of recovery after the first pause, then the second slow-down.
    expect((await l.snapshot()).m?.rateFactor).toBeCloseTo((SLOWDOWN_FACTOR + 0.5 * RECOVERY_PER_SECOND) * SLOWDOWN_FACTOR, 9);
    l.close();
  });

  it('recovers additively after the pause, back to the full rate', async () => {
    const l = limiter({ rpm: 1000 });
    const grant = await l.acquire('m', 1);
    await l.penalise(grant, 2000, {});
    await vi.advanceTimersByTimeAsync(2000);
    expect((await l.snapshot()).m?.rateFactor).toBeCloseTo(0.7, 9); // no recovery during the pause
    await vi.advanceTimersByTimeAsync(5000);
    expect((await l.snapshot()).m?.rateFactor).toBeCloseTo(0.7 + 5 * RECOVERY_PER_SECOND, 9);
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await l.snapshot()).m).toMatchObject({ rateFactor: 1, rpm: 1000 });
    l.close();
  });

  it('resumes at the slowed steady rate after the pause, not with a burst', async () => {
    const l = limiter({ rpm: 6000, burstMs: 500 }); // 100/s, burst 50
    const grant = await l.acquire('m', 1);
    await l.penalise(grant, 3000, {});
    l.release(grant);
    const { times } = queue(l, 'm', 1, 500);
    await vi.advanceTimersByTimeAsync(3500);
    // At 0.7 × 100/s, half a second after the pause holds about 35 grants, and none before it ends.
    expect(times.every((t) => t >= 3000)).toBe(true);
    expect(times.length).toBeLessThanOrEqual(37);
    expect(times.length).toBeGreaterThanOrEqual(33);
    l.close();
  });

  it.each<[number, number[]]>([
    [1, [1000]],
    [3, [1000, 2000, 4000]],
    [7, [1000, 2000, 4000, 8000, 16_000, 32_000, 32_000]],
  ])('without a named wait pauses 1 s, 2 s, 4 s … (%d consecutive 429s)', async (count, expected) => {
    const l = limiter({ rpm: 600_000 });
    const pauses: number[] = [];
    for (let i = 0; i < count; i++) {
      const grant = await acquireSoon(l, 'm', 1);
      pauses.push(await l.penalise(grant, null, {}));
      l.release(grant);
      await vi.advanceTimersByTimeAsync(pauses.at(-1) as number);
    }
    expect(pauses).toEqual(expected);
    l.close();
  });

  it('starts the default pauses over after a success', async () => {
    const l = limiter({ rpm: 600_000 });
    let grant = await l.acquire('m', 1);
    expect(await l.penalise(grant, null, {})).toBe(1000);
    grant = await acquireSoon(l, 'm', 1);
    await l.observe(grant, {});
    grant = await acquireSoon(l, 'm', 1);
    expect(await l.penalise(grant, null, {})).toBe(1000);
    l.close();
  });

  it('does not block another model while one is paused', async () => {
    const l = limiter({ rpm: 600 });
    const grant = await l.acquire('gpt-4o', 1);
    await l.penalise(grant, 60_000, {});
    expect(await grantedWithin(l, 'gpt-4o', 1, 1000)).toBeNull();
    expect(await grantedWithin(l, 'gpt-4o-mini', 1, 0)).not.toBeNull();
    l.close();
  });
});

describe('MemoryLimiter following x-ratelimit-remaining-* (other clients share the key)', () => {
  it("waits for the server's token refill when another client drained the budget", async () => {
    const l = limiter({ headroom: 0.9 });
    const first = await l.acquire('gpt-4o', 100);
    await l.observe(
      first,
      limitHeaders({
        'x-ratelimit-limit-tokens': '1000000',
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-tokens': '60s',
      }),
    );
    l.release(first);
    const { times } = queue(l, 'gpt-4o', 1000, 1);
    await vi.advanceTimersByTimeAsync(5000);
    // Our own bucket (900k/min) would allow it now; the server refills 1M/60 s = 16.7/ms, and we
    // keep 1% of the limit as margin: (1,000 + 10,000) / 16.67 = 660 ms.
    expect(times).toEqual([660]);
    l.close();
  });

  it("waits for the server's request refill when remaining-requests is 0", async () => {
    const l = limiter({ headroom: 0.9 });
    const first = await l.acquire('gpt-4o', 100);
    await l.observe(first, limitHeaders({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '60s' }));
    l.release(first);
    const { times } = queue(l, 'gpt-4o', 1, 1);
    await vi.advanceTimersByTimeAsync(5000);
    // 600/min = 0.01/ms; one request plus a margin of 6: 700 ms.
    expect(times).toEqual([700]);
    l.close();
  });

  it('counts what we sent since the observed request against the server budget', async () => {
    const l = limiter({ rpm: 6000, headroom: 1 });
    const observed = await l.acquire('m', 1);
    const more = await Promise.all(Array.from({ length: 4 }, () => l.acquire('m', 1)));
    expect(more).toHaveLength(4);
    // The server saw 70 left when it admitted `observed`; 4 more went since (66 left). We keep a
    // margin of 1% of the limit (60) for other clients: 6 more may go now.
    await l.observe(observed, { 'x-ratelimit-limit-requests': '6000', 'x-ratelimit-remaining-requests': '70', 'x-ratelimit-reset-requests': '1m0s' });
    const { times } = queue(l, 'm', 1, 10);
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toHaveLength(6);
    l.close();
  });

  it('grants a request almost as large as the whole server budget once that budget is full again', async () => {
    const l = limiter({ headroom: 0.9 });
    const first = await l.acquire('gpt-4o', 100);
    await l.observe(first, limitHeaders({ 'x-ratelimit-limit-tokens': '30000', 'x-ratelimit-remaining-tokens': '29900', 'x-ratelimit-reset-tokens': '200ms' }));
    l.release(first);
    // 29,900 tokens fit the limit (30,000) but not the limit minus our 1% margin: wait for a full budget.
    // A grant is opaque: that it comes at all is the point.
    await expect(acquireSoon(l, 'gpt-4o', 29_900, 120_000)).resolves.toBeDefined();
    l.close();
  });

  it('ignores an answer to an older request that arrives after a newer one', async () => {
    const l = limiter({ rpm: 6000 });
    const older = await l.acquire('m', 1);
    const newer = await l.acquire('m', 1);
    await l.observe(newer, { 'x-ratelimit-limit-requests': '6000', 'x-ratelimit-remaining-requests': '5000' });
    await l.observe(older, { 'x-ratelimit-limit-requests': '6000', 'x-ratelimit-remaining-requests': '0' });
    expect(await grantedWithin(l, 'm', 1, 0)).not.toBeNull();
    l.close();
  });
});

describe('MemoryLimiter cancellation and shutdown', () => {
  it('rejects a waiting acquire with the reason when its signal aborts, and frees its place', async () => {
    const l = limiter({ rpm: 60 });
    await l.acquire('m', 1);
    const controller = new AbortController();
    const aborted = l.acquire('m', 1, controller.signal);
    const { times } = queue(l, 'm', 1, 1);
    await vi.advanceTimersByTimeAsync(200);
    const reason = new Error('interrupted');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(2000);
    expect(times).toEqual([1000]);
    expect((await l.snapshot()).m?.waiting).toBe(0);
    l.close();
  });

  it('rejects at once when the signal is already aborted', async () => {
    const l = limiter({ rpm: 60 });
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(l.acquire('m', 1, controller.signal)).rejects.toThrow('stop');
    l.close();
  });

  it('rejects every waiting acquire when closed', async () => {
    const l = limiter({ rpm: 60 });
    await l.acquire('m', 1);
    const waiting = [l.acquire('m', 1), l.acquire('m', 1)];
    l.close();
    for (const w of waiting) await expect(w).rejects.toMatchObject({ code: 'limiter_closed' });
  });

  it('counts requests in flight and waiting in its snapshot', async () => {
    const l = limiter({ rpm: 60 });
    const grant = await l.acquire('m', 1);
    queue(l, 'm', 1, 2);
    expect((await l.snapshot()).m).toMatchObject({ inFlight: 1, waiting: 2 });
    l.release(grant);
    expect((await l.snapshot()).m).toMatchObject({ inFlight: 0, waiting: 2 });
    l.close();
  });
});
