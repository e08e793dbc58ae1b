// BudgetStore: where the rate budgets live (DESIGN.md §6). The seam between
// the limit policy (pipeline/limit.ts) and its storage: the in-memory store
// (memory-budget.ts, the default) keeps them in this process; a shared store
// keeps them where several workers on one key can draw from one budget.
//
// In:  per model, the budgets the policy wants (requests and tokens per
//      minute, before any slow-down), a request's token charge, limits
//      learned from headers, 429 pauses.
// Out: grants or how long to wait; the shared state of each model.
// Owns: the buckets' levels, the pause, the slow-down episode and its
//       recovery, the lowest learned limits. Every operation is one atomic
//       step, so two workers can never both take the last permit.
//
// Times are durations from the store's own clock (`waitMs`, `pausedForMs`),
// never moments: workers' clocks need not agree with the store's or each other's.
// Every implementation passes the same contract suite (test/budget-store.contract.ts).

/** The budgets the policy asks a take to respect, before the store's slow-down factor. */
export interface BucketRates {
  /** Requests per minute; null = unlimited. */
  rpm: number | null;
  /** Tokens per minute; null = unlimited. */
  tpm: number | null;
  /** How much of the per-minute rate may go at once, in ms of it (OpenAI may enforce 60,000/min as 1,000/s). */
  burstMs: number;
}

/** What every worker sharing a store sees of one model. */
export interface SharedModelState {
  /** The lowest x-ratelimit-limit-* any worker has published, or null. */
  limitRpm: number | null;
  limitTpm: number | null;
  /** Milliseconds until the model's 429 pause ends; 0 when it is not paused. */
  pausedForMs: number;
  /** 1 = full budget; lower after a 429 episode, recovering as time passes. */
  rateFactor: number;
}

export type TakeResult =
  /** One request and `tokens` tokens were taken from the model's buckets. */
  | { granted: true; state: SharedModelState }
  /** Not now: ask again in `waitMs` (the pause, or until the buckets refill). */
  | { granted: false; waitMs: number; state: SharedModelState };

export interface TakeManyResult {
  /** How many of the charges, from the first, were granted. */
  granted: number;
  /** When not all were granted: ask again for the next one in `waitMs`. */
  waitMs: number;
  state: SharedModelState;
}

export interface BudgetStore {
  /**
   * In one atomic step: brings the model's request and token buckets up to
   * now at `rates` × the slow-down factor, and unless the model is paused or
   * a bucket is short, takes one request and `tokens` tokens. A charge larger
   * than a whole burst is admitted once the bucket is full, leaving debt.
   */
  take(model: string, tokens: number, rates: BucketRates): Promise<TakeResult>;
  /**
   * Optional: takes for several requests in one atomic step, exactly as the
   * same takes in a row at one moment would: in order, stopping at the first
   * that must wait. A store a round trip away offers it so that a busy worker
   * does not pay one round trip per request.
   */
  takeMany?(model: string, charges: readonly number[], rates: BucketRates): Promise<TakeManyResult>;
  /** Limits a worker learned from headers; the lowest wins (null leaves a limit as it is). */
  publishLimits(model: string, limits: { rpm: number | null; tpm: number | null }): Promise<SharedModelState>;
  /**
   * A 429: pauses the model for `pauseMs` from now (the latest end wins) and
   * empties its buckets so traffic resumes at the steady rate, not a burst.
   * A pause that starts within SLOWDOWN_EPISODE_MS (or the pause itself, if
   * longer) of the last slow-down belongs to the same episode; only a new
   * episode multiplies the factor by SLOWDOWN_FACTOR: a burst of 429s seen by
   * several workers slows the fleet once.
   */
  pause(model: string, pauseMs: number): Promise<SharedModelState>;
  /** The model's shared state now. No side effects. */
  read(model: string): Promise<SharedModelState>;
  close(): Promise<void>;
}

/** Multiplicative decrease on a new 429 episode. */
export const SLOWDOWN_FACTOR = 0.7;
/** Additive increase of the factor per second after the pause ends. */
export const RECOVERY_PER_SECOND = 0.02;
/** The factor never drops below this. */
export const MIN_RATE_FACTOR = 0.1;
/** 429s within this long of the last slow-down (or within its pause, if longer) are one episode. */
export const SLOWDOWN_EPISODE_MS = 1000;

/** The slow-down of a model as stored: the factor at `factorAt`, recovering after `pausedUntil`. */
export interface SlowdownState {
  factor: number;
  factorAt: number;
  pausedUntil: number;
  lastSlowdownAt: number;
}

/** The factor at `now`: it climbs back RECOVERY_PER_SECOND a second once the pause is over. */
export function factorAt(state: SlowdownState, now: number): number {
  if (state.factor >= 1) return 1;
  const seconds = (now - Math.max(state.factorAt, state.pausedUntil)) / 1000;
  return seconds <= 0 ? state.factor : Math.min(1, state.factor + seconds * RECOVERY_PER_SECOND);
}

/** A 429 pause at `now`: the latest end wins; a new episode multiplies the (recovered) factor. */
export function applyPause(state: SlowdownState, now: number, pauseMs: number): SlowdownState {
  const pausedUntil = Math.max(state.pausedUntil, now + pauseMs);
  if (now - state.lastSlowdownAt <= Math.max(SLOWDOWN_EPISODE_MS, pauseMs)) return { ...state, pausedUntil };
  const recovered = factorAt(state, now);
  return {
    factor: Math.max(MIN_RATE_FACTOR, recovered * SLOWDOWN_FACTOR),
    factorAt: now,
    pausedUntil,
    lastSlowdownAt: now,
  };
}

/** The lower of a stored limit and a published one (null and non-positive values do not count). */
export function lowestLimit(stored: number | null, published: number | null): number | null {
  if (published === null || !(published > 0)) return stored;
  return stored === null ? published : Math.min(stored, published);
}
