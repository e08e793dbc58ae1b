// The BudgetStore contract: one table of behaviours, each a script of steps on
// an injected clock, that every store must pass (src/stores/budget-store.ts).
// test/budget-store.test.ts runs it against the in-memory store; the shared
// store's test runs the very same table.

import { describe, expect, it } from 'vitest';
import type { BucketRates, BudgetStore, SharedModelState } from '../../src/stores/budget-store.js';
import { RECOVERY_PER_SECOND, SLOWDOWN_FACTOR } from '../../src/stores/budget-store.js';

/** Makes a fresh store whose clock is `now` (ms); closed after each case. */
export type StoreFactory = (now: () => number) => Promise<BudgetStore>;

type Step =
  /** Take `tokens` for `model` at `rates`, `times` times in a row; each must give `expect`. */
  | { at: number; take: string; tokens?: number; rates: BucketRates; times?: number; expect: { granted: true } | { granted: false; waitMs: number } }
  | { at: number; publish: string; limits: { rpm: number | null; tpm: number | null }; state?: Partial<SharedModelState> }
  | { at: number; pause: string; ms: number; state?: Partial<SharedModelState> }
  | { at: number; read: string; state: Partial<SharedModelState> }
  /** takeMany (a store that offers it): how many of `charges` were granted, and the wait for the next. */
  | { at: number; takeMany: string; charges: number[]; rates: BucketRates; expect: { granted: number; waitMs: number } };

const rpm = (perMinute: number | null, burstMs = 500): BucketRates => ({ rpm: perMinute, tpm: null, burstMs });
const tpm = (perMinute: number | null, burstMs = 500): BucketRates => ({ rpm: null, tpm: perMinute, burstMs });
const GRANTED = { granted: true } as const;
const wait = (waitMs: number) => ({ granted: false, waitMs }) as const;

export const CONTRACT: Array<[string, Step[]]> = [
  [
    'grants a full burst (burstMs of the per-minute rate) at once, then one per refill',
    [
      { at: 0, take: 'm', rates: rpm(600), times: 5, expect: GRANTED },
      { at: 0, take: 'm', rates: rpm(600), expect: wait(100) },
      { at: 99, take: 'm', rates: rpm(600), expect: wait(1) },
      { at: 100, take: 'm', rates: rpm(600), expect: GRANTED },
      { at: 100, take: 'm', rates: rpm(600), expect: wait(100) },
    ],
  ],
  [
    'admits a charge larger than the burst from a full bucket and makes the next ones wait off the debt',
    [
      { at: 0, take: 'm', tokens: 5000, rates: tpm(60_000), expect: GRANTED },
      { at: 0, take: 'm', tokens: 100, rates: tpm(60_000), expect: wait(4600) },
      { at: 4600, take: 'm', tokens: 100, rates: tpm(60_000), expect: GRANTED },
    ],
  ],
  [
    'takes requests and tokens in one step: a take short of tokens takes no request either',
    [
      { at: 0, take: 'm', tokens: 5001, rates: { rpm: 600, tpm: 600_000, burstMs: 500 }, expect: GRANTED },
      { at: 0, take: 'm', tokens: 1, rates: { rpm: 600, tpm: 600_000, burstMs: 500 }, expect: wait(1) },
      // Four requests were left after the first take, and the refused one took none of them.
      { at: 1, take: 'm', tokens: 1, rates: { rpm: 600, tpm: 600_000, burstMs: 500 }, times: 4, expect: GRANTED },
      { at: 1, take: 'm', tokens: 1, rates: { rpm: 600, tpm: 600_000, burstMs: 500 }, expect: wait(99) },
    ],
  ],
  [
    'never keeps an unlimited budget waiting',
    [{ at: 0, take: 'm', tokens: 1_000_000, rates: rpm(null), times: 1000, expect: GRANTED }],
  ],
  [
    'starts a limited bucket full when the rate was unlimited before',
    [
      { at: 0, take: 'm', rates: rpm(null), times: 3, expect: GRANTED },
      { at: 0, take: 'm', rates: rpm(600), times: 5, expect: GRANTED },
      { at: 0, take: 'm', rates: rpm(600), expect: wait(100) },
    ],
  ],
  [
    'keeps the level when the rate changes, its capacity following the new rate',
    [
      { at: 0, take: 'm', rates: rpm(600), times: 5, expect: GRANTED },
      { at: 0, take: 'm', rates: rpm(1200), expect: wait(50) },
      { at: 50, take: 'm', rates: rpm(1200), expect: GRANTED },
    ],
  ],
  [
    'holds a paused model until the pause ends; the latest end wins',
    [
      { at: 0, pause: 'm', ms: 5000, state: { pausedForMs: 5000 } },
      { at: 100, take: 'm', rates: rpm(null), expect: wait(4900) },
      { at: 200, pause: 'm', ms: 1000, state: { pausedForMs: 4800 } },
      { at: 300, pause: 'm', ms: 8000, state: { pausedForMs: 8000 } },
      { at: 8299, take: 'm', rates: rpm(null), expect: wait(1) },
      { at: 8300, take: 'm', rates: rpm(null), expect: GRANTED },
    ],
  ],
  [
    'resumes after a pause at the steady (slowed) rate, not with a burst',
    [
      { at: 0, take: 'm', rates: rpm(600), expect: GRANTED },
      { at: 0, pause: 'm', ms: 1000 },
      // 0.7 × 600/min = 0.007/ms from an empty bucket: 143 ms for the first request.
      { at: 1000, take: 'm', rates: rpm(600), expect: wait(143) },
      { at: 1143, take: 'm', rates: rpm(600), expect: GRANTED },
    ],
  ],
  [
    'slows down once per episode, however many 429s arrive together',
    [
      { at: 0, pause: 'm', ms: 2000, state: { rateFactor: SLOWDOWN_FACTOR } },
      { at: 10, pause: 'm', ms: 2000, state: { rateFactor: SLOWDOWN_FACTOR } },
      { at: 500, pause: 'm', ms: 2000, state: { rateFactor: SLOWDOWN_FACTOR } },
      { at: 2500, read: 'm', state: { rateFactor: SLOWDOWN_FACTOR, pausedForMs: 0 } },
    ],
  ],
  [
    'slows down again for a new episode, from the factor recovered so far',
    [
      { at: 0, pause: 'm', ms: 1000 },
      { at: 1500, pause: 'm', ms: 1000, state: { rateFactor: (SLOWDOWN_FACTOR + 0.5 * RECOVERY_PER_SECOND) * SLOWDOWN_FACTOR } },
    ],
  ],
  [
    'recovers the factor additively once the pause is over, up to 1',
    [
      { at: 0, pause: 'm', ms: 2000 },
      { at: 2000, read: 'm', state: { rateFactor: SLOWDOWN_FACTOR } },
      { at: 7000, read: 'm', state: { rateFactor: SLOWDOWN_FACTOR + 5 * RECOVERY_PER_SECOND } },
      { at: 100_000, read: 'm', state: { rateFactor: 1 } },
    ],
  ],
  [
    'keeps the lowest learned limits; a null or non-positive one changes nothing',
    [
      { at: 0, read: 'm', state: { limitRpm: null, limitTpm: null } },
      { at: 0, publish: 'm', limits: { rpm: 600, tpm: 150_000 }, state: { limitRpm: 600, limitTpm: 150_000 } },
      { at: 1, publish: 'm', limits: { rpm: 1000, tpm: null }, state: { limitRpm: 600, limitTpm: 150_000 } },
      { at: 2, publish: 'm', limits: { rpm: 500, tpm: 200_000 }, state: { limitRpm: 500, limitTpm: 150_000 } },
      { at: 3, publish: 'm', limits: { rpm: 0, tpm: -1 }, state: { limitRpm: 500, limitTpm: 150_000 } },
      { at: 4, read: 'm', state: { limitRpm: 500, limitTpm: 150_000, pausedForMs: 0, rateFactor: 1 } },
    ],
  ],
  [
    'reads without side effects',
    [
      { at: 0, read: 'fresh', state: { limitRpm: null, limitTpm: null, pausedForMs: 0, rateFactor: 1 } },
      { at: 0, take: 'm', rates: rpm(600), times: 5, expect: GRANTED },
      { at: 50, read: 'm', state: { pausedForMs: 0, rateFactor: 1 } },
      { at: 50, read: 'm', state: { pausedForMs: 0, rateFactor: 1 } },
      { at: 50, take: 'm', rates: rpm(600), expect: wait(50) },
      { at: 60, take: 'fresh', rates: rpm(600), times: 5, expect: GRANTED },
    ],
  ],
  [
    'takes for several requests in one step as the same takes in a row would',
    [
      { at: 0, takeMany: 'm', charges: [1, 1, 1, 1, 1, 1, 1], rates: rpm(600), expect: { granted: 5, waitMs: 100 } },
      { at: 100, takeMany: 'm', charges: [1, 1], rates: rpm(600), expect: { granted: 1, waitMs: 100 } },
      // Tokens: 500 ms of 60,000/min holds 500; the second 300 waits for the 100 it lacks.
      { at: 100, takeMany: 't', charges: [300, 300], rates: tpm(60_000), expect: { granted: 1, waitMs: 100 } },
      { at: 200, take: 't', tokens: 300, rates: tpm(60_000), expect: GRANTED },
      { at: 200, pause: 'p', ms: 1000 },
      { at: 210, takeMany: 'p', charges: [1, 1], rates: rpm(null), expect: { granted: 0, waitMs: 990 } },
      { at: 1200, takeMany: 'p', charges: [1, 1], rates: rpm(null), expect: { granted: 2, waitMs: 0 } },
    ],
  ],
  [
    'keeps models apart',
    [
      { at: 0, take: 'a', rates: rpm(600), times: 5, expect: GRANTED },
      { at: 0, take: 'a', rates: rpm(600), expect: wait(100) },
      { at: 0, take: 'b', rates: rpm(600), times: 5, expect: GRANTED },
      { at: 0, pause: 'a', ms: 60_000 },
      { at: 10, read: 'b', state: { pausedForMs: 0, rateFactor: 1 } },
      { at: 200, take: 'b', rates: rpm(600), expect: GRANTED },
    ],
  ],
];

/** Runs the contract table against stores made by `factory`. */
export function describeBudgetStoreContract(name: string, factory: StoreFactory): void {
  describe(`BudgetStore contract: ${name}`, () => {
    it.each(CONTRACT)('%s', async (_title, steps) => {
      let clock = 0;
      const store = await factory(() => clock);
      try {
        for (const [index, step] of steps.entries()) {
          clock = step.at;
          const where = `step ${index + 1} at ${step.at} ms`;
          if ('take' in step) {
            for (let i = 0; i < (step.times ?? 1); i++) {
              const result = await store.take(step.take, step.tokens ?? 1, step.rates);
              const got = result.granted ? { granted: true } : { granted: false, waitMs: result.waitMs };
              expect(got, `${where}, take ${i + 1}`).toEqual(step.expect);
            }
          } else if ('takeMany' in step) {
            if (!store.takeMany) continue; // optional: a store without it takes one at a time
            const result = await store.takeMany(step.takeMany, step.charges, step.rates);
            expect({ granted: result.granted, waitMs: result.waitMs }, where).toEqual(step.expect);
          } else if ('publish' in step) {
            const state = await store.publishLimits(step.publish, step.limits);
            if (step.state) expect(state, where).toMatchObject(step.state);
          } else if ('pause' in step) {
            const state = await store.pause(step.pause, step.ms);
            if (step.state) expectState(state, step.state, where);
          } else {
            expectState(await store.read(step.read), step.state, where);
          }
        }
      } finally {
        await store.close();
      }
    });
  });
}

/** Shared state as expected; factors compared to 9 digits (a shared store may keep them as text). */
function expectState(state: SharedModelState, expected: Partial<SharedModelState>, where: string): void {
  const { rateFactor, ...rest } = expected;
  expect(state, where).toMatchObject(rest);
  if (rateFactor !== undefined) expect(state.rateFactor, `${where}: rateFactor`).toBeCloseTo(rateFactor, 9);
}
