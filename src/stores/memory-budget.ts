// The in-memory BudgetStore: the budgets of one process (the default when no
// shared store is given). Synchronous inside; every answer is already settled.
//
// In/Out: the BudgetStore operations (budget-store.ts).
// Owns: per model, two buckets (pipeline/limit/bucket.ts arithmetic), the
//       pause and slow-down state, the lowest learned limits.

import { createBucket, drain, refill, setRate, take, waitFor, type BucketState } from './bucket.js';
import {
  applyPause,
  factorAt,
  lowestLimit,
  type BucketRates,
  type BudgetStore,
  type SharedModelState,
  type SlowdownState,
  type TakeManyResult,
  type TakeResult,
} from './budget-store.js';

interface ModelBudget {
  requests: BucketState;
  tokens: BucketState;
  /** The per-minute rates the buckets run at now (after the factor), to notice a change. */
  rpm: number | null;
  tpm: number | null;
  burstMs: number;
  limitRpm: number | null;
  limitTpm: number | null;
  slowdown: SlowdownState;
}

export interface MemoryBudgetStoreOptions {
  /** The store's clock (tests inject one). Default Date.now. */
  now?: () => number;
}

export class MemoryBudgetStore implements BudgetStore {
  readonly #now: () => number;
  readonly #models = new Map<string, ModelBudget>();

  constructor(options: MemoryBudgetStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  take(model: string, tokens: number, rates: BucketRates): Promise<TakeResult> {
    const { granted, waitMs, state } = this.#takeMany(model, [tokens], rates);
    return Promise.resolve(granted === 1 ? { granted: true, state } : { granted: false, waitMs, state });
  }

  takeMany(model: string, charges: readonly number[], rates: BucketRates): Promise<TakeManyResult> {
    return Promise.resolve(this.#takeMany(model, charges, rates));
  }

  #takeMany(model: string, charges: readonly number[], rates: BucketRates): TakeManyResult {
    const now = this.#now();
    const budget = this.#budget(model, rates, now);
    this.#runAt(budget, rates, now);
    refill(budget.requests, now);
    refill(budget.tokens, now);
    let granted = 0;
    for (const tokens of charges) {
      const waitMs = Math.max(budget.slowdown.pausedUntil - now, waitFor(budget.requests, 1), waitFor(budget.tokens, tokens), 0);
      if (waitMs > 0) return { granted, waitMs, state: stateOf(budget, now) };
      take(budget.requests, 1);
      take(budget.tokens, tokens);
      granted += 1;
    }
    return { granted, waitMs: 0, state: stateOf(budget, now) };
  }

  publishLimits(model: string, limits: { rpm: number | null; tpm: number | null }): Promise<SharedModelState> {
    const now = this.#now();
    const budget = this.#budget(model, null, now);
    budget.limitRpm = lowestLimit(budget.limitRpm, limits.rpm);
    budget.limitTpm = lowestLimit(budget.limitTpm, limits.tpm);
    return Promise.resolve(stateOf(budget, now));
  }

  pause(model: string, pauseMs: number): Promise<SharedModelState> {
    const now = this.#now();
    const budget = this.#budget(model, null, now);
    budget.slowdown = applyPause(budget.slowdown, now, pauseMs);
    drain(budget.requests, budget.slowdown.pausedUntil);
    drain(budget.tokens, budget.slowdown.pausedUntil);
    return Promise.resolve(stateOf(budget, now));
  }

  read(model: string): Promise<SharedModelState> {
    const now = this.#now();
    const budget = this.#models.get(model);
    return Promise.resolve(budget ? stateOf(budget, now) : { limitRpm: null, limitTpm: null, pausedForMs: 0, rateFactor: 1 });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The model's budget, created with full buckets at `rates` (unlimited until a take names them). */
  #budget(model: string, rates: BucketRates | null, now: number): ModelBudget {
    let budget = this.#models.get(model);
    if (!budget) {
      const burstMs = rates?.burstMs ?? 500;
      budget = {
        requests: createBucket(rates?.rpm ?? null, burstMs, now),
        tokens: createBucket(rates?.tpm ?? null, burstMs, now),
        rpm: rates?.rpm ?? null,
        tpm: rates?.tpm ?? null,
        burstMs,
        limitRpm: null,
        limitTpm: null,
        slowdown: { factor: 1, factorAt: now, pausedUntil: 0, lastSlowdownAt: -Infinity },
      };
      this.#models.set(model, budget);
    }
    return budget;
  }

  /** Runs the buckets at `rates` × the factor now, keeping their levels' meaning when that changes. */
  #runAt(budget: ModelBudget, rates: BucketRates, now: number): void {
    const factor = factorAt(budget.slowdown, now);
    const rpm = rates.rpm === null ? null : rates.rpm * factor;
    const tpm = rates.tpm === null ? null : rates.tpm * factor;
    if (rpm === budget.rpm && tpm === budget.tpm && rates.burstMs === budget.burstMs) return;
    setRate(budget.requests, rpm, rates.burstMs, now);
    setRate(budget.tokens, tpm, rates.burstMs, now);
    budget.rpm = rpm;
    budget.tpm = tpm;
    budget.burstMs = rates.burstMs;
  }
}

function stateOf(budget: ModelBudget, now: number): SharedModelState {
  return {
    limitRpm: budget.limitRpm,
    limitTpm: budget.limitTpm,
    pausedForMs: Math.max(0, budget.slowdown.pausedUntil - now),
    rateFactor: factorAt(budget.slowdown, now),
  };
}
