// limit: per-model request and token budgets (DESIGN.md §1 step 3).
//
// In:  acquire(model, charge) before each attempt; observe() each answer's
//      headers; penalise() on a 429.
// Out: grants paced to the budget; a snapshot for progress and the summary.
// Owns: the budgets, where they came from, pauses, the slow-down after a 429.
//
// The pipeline sees only the Limiter interface, so a limiter shared by many
// workers (over Redis, say) can replace this in-memory one without touching it.

import { OaiBatchError } from './errors.js';
import { parseRateLimitHeaders, type HeaderMap } from './headers.js';
import {
  createBucket,
  drain,
  refill,
  serverRate,
  serverWait,
  setRate,
  take,
  waitFor,
  type BucketState,
  type ServerView,
} from './bucket.js';
import type { LimitSource } from './types.js';

/** Permission to send one attempt. Hand it back to observe/penalise/release. */
export interface Grant {
  model: string;
  tokens: number;
  /** Sequence number of this grant for the model (1, 2, …). */
  seq: number;
  /** Cumulative tokens granted for the model, this grant included. */
  tokenSeq: number;
  grantedAt: number;
}

export interface ModelLimitState {
  /** Effective budgets now (after headroom and any slow-down), per minute; null = unlimited. */
  rpm: number | null;
  tpm: number | null;
  /** The budgets before slow-down: what flags or headers set. */
  baseRpm: number | null;
  baseTpm: number | null;
  source: LimitSource;
  /** Limits the server announced, if any. */
  headerRpm: number | null;
  headerTpm: number | null;
  /** Epoch ms until which the model is paused after a 429, or null. */
  pausedUntil: number | null;
  /** 1 = full budget; lower after 429s, recovering gradually. */
  rateFactor: number;
  inFlight: number;
  waiting: number;
}

export interface Limiter {
  /** Resolves when `model` may send an attempt charged `tokens`; rejects with RequestTooLargeError or the signal's reason. */
  acquire(model: string, tokens: number, signal?: AbortSignal): Promise<Grant>;
  /** An answer arrived (any status but a rate-limit 429): learn from its headers. */
  observe(grant: Grant, headers: HeaderMap): void;
  /** A 429 rate_limit_exceeded: pause the model for `waitMs` (or a default), then slow down. Returns the pause applied, ms. */
  penalise(grant: Grant, waitMs: number | null, headers: HeaderMap): number;
  /** The attempt is over (after observe/penalise, or without an answer). */
  release(grant: Grant): void;
  snapshot(): Record<string, ModelLimitState>;
  /** Stops timers; pending acquisitions reject. */
  close(): void;
}

export class RequestTooLargeError extends OaiBatchError {
  constructor(model: string, tokens: number, tpm: number) {
    super(
      `request charged ${tokens} tokens is larger than the whole token budget of ${model} (${tpm} tokens/min); reduce its input or output limit`,
      'request_too_large',
      1,
    );
  }
}

export interface MemoryLimiterOptions {
  /** --rpm: requests per minute per model. */
  rpm?: number | undefined;
  /** --tpm: tokens per minute per model. */
  tpm?: number | undefined;
  /** Share of header-announced limits to use when no flag sets them (default 0.9). */
  headroom?: number;
  /** Burst allowance in ms of the per-minute rate (default 500: half a second). */
  burstMs?: number;
  now?: () => number;
}

/** Multiplicative decrease on a 429 and additive increase per second after it. */
export const SLOWDOWN_FACTOR = 0.7;
export const RECOVERY_PER_SECOND = 0.02;
export const MIN_RATE_FACTOR = 0.1;

interface Waiter {
  tokens: number;
  resolve: (grant: Grant) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

class ModelBudget {
  readonly model: string;
  requests: BucketState;
  tokens: BucketState;
  headerRpm: number | null = null;
  headerTpm: number | null = null;
  serverRequests: ServerView | null = null;
  serverTokens: ServerView | null = null;
  lastObservedSeq = 0;
  seq = 0;
  tokenSeq = 0;
  inFlight = 0;
  answered = false;
  pausedUntil = 0;
  factor = 1;
  factorAt = 0;
  lastSlowdownAt = -Infinity;
  consecutivePenalties = 0;
  waiters: Waiter[] = [];
  timer: NodeJS.Timeout | null = null;
  timerAt = 0;

  constructor(model: string, now: number) {
    this.model = model;
    this.requests = createBucket(null, 1, now);
    this.tokens = createBucket(null, 1, now);
  }
}

export class MemoryLimiter implements Limiter {
  readonly #flagRpm: number | null;
  readonly #flagTpm: number | null;
  readonly #headroom: number;
  readonly #burstMs: number;
  readonly #now: () => number;
  readonly #models = new Map<string, ModelBudget>();
  #closed = false;

  constructor(options: MemoryLimiterOptions = {}) {
    this.#flagRpm = options.rpm ?? null;
    this.#flagTpm = options.tpm ?? null;
    this.#headroom = options.headroom ?? 0.9;
    this.#burstMs = options.burstMs ?? 500;
    this.#now = options.now ?? Date.now;
  }

  acquire(model: string, tokens: number, signal?: AbortSignal): Promise<Grant> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const budget = this.#budget(model);
    // Fast path: nobody queued and the budget admits it now.
    if (budget.waiters.length === 0) {
      const tooLarge = this.#tooLarge(budget, tokens);
      if (tooLarge) return Promise.reject(tooLarge);
      if (this.#wait(budget, tokens) === 0) return Promise.resolve(this.#grant(budget, tokens));
    }
    return new Promise<Grant>((resolve, reject) => {
      const waiter: Waiter = { tokens, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const index = budget.waiters.indexOf(waiter);
          if (index >= 0) budget.waiters.splice(index, 1);
          reject(signal.reason);
          this.#pump(budget);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      budget.waiters.push(waiter);
      this.#pump(budget);
    });
  }

  observe(grant: Grant, headers: HeaderMap): void {
    const budget = this.#budget(grant.model);
    const now = this.#now();
    budget.answered = true;
    budget.consecutivePenalties = 0;
    this.#learn(budget, grant, headers, now);
    this.#pump(budget);
  }

  penalise(grant: Grant, waitMs: number | null, headers: HeaderMap): number {
    const budget = this.#budget(grant.model);
    const now = this.#now();
    budget.answered = true;
    this.#learn(budget, grant, headers, now);
    budget.consecutivePenalties += 1;
    const pause = waitMs ?? Math.min(32_000, 1000 * 2 ** (budget.consecutivePenalties - 1));
    budget.pausedUntil = Math.max(budget.pausedUntil, now + pause);
    // One slow-down per episode: a burst of 429s from the same moment counts once.
    if (now - budget.lastSlowdownAt > Math.max(1000, pause)) {
      this.#recover(budget, now);
      budget.factor = Math.max(MIN_RATE_FACTOR, budget.factor * SLOWDOWN_FACTOR);
      budget.lastSlowdownAt = now;
      this.#applyRates(budget, now);
    }
    drain(budget.requests, budget.pausedUntil);
    drain(budget.tokens, budget.pausedUntil);
    this.#pump(budget);
    return pause;
  }

  release(grant: Grant): void {
    const budget = this.#models.get(grant.model);
    if (!budget) return;
    budget.inFlight = Math.max(0, budget.inFlight - 1);
    this.#pump(budget);
  }

  snapshot(): Record<string, ModelLimitState> {
    const now = this.#now();
    const out: Record<string, ModelLimitState> = {};
    for (const [model, budget] of this.#models) {
      this.#recover(budget, now);
      const base = this.#baseRates(budget);
      out[model] = {
        rpm: scaled(base.rpm, budget.factor),
        tpm: scaled(base.tpm, budget.factor),
        baseRpm: base.rpm,
        baseTpm: base.tpm,
        source: base.source,
        headerRpm: budget.headerRpm,
        headerTpm: budget.headerTpm,
        pausedUntil: budget.pausedUntil > now ? budget.pausedUntil : null,
        rateFactor: budget.factor,
        inFlight: budget.inFlight,
        waiting: budget.waiters.length,
      };
    }
    return out;
  }

  close(): void {
    this.#closed = true;
    for (const budget of this.#models.values()) {
      if (budget.timer) clearTimeout(budget.timer);
      budget.timer = null;
      for (const waiter of budget.waiters.splice(0)) {
        if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
        waiter.reject(new OaiBatchError('the limiter was closed', 'limiter_closed'));
      }
    }
  }

  #budget(model: string): ModelBudget {
    let budget = this.#models.get(model);
    if (!budget) {
      const now = this.#now();
      budget = new ModelBudget(model, now);
      budget.factorAt = now;
      this.#models.set(model, budget);
      this.#applyRates(budget, now);
      // Start with a full burst's worth.
      budget.requests.level = budget.requests.capacity;
      budget.tokens.level = budget.tokens.capacity;
    }
    return budget;
  }

  /** Budgets before slow-down: flags, headers, or both (the lower wins once a header is seen). */
  #baseRates(budget: ModelBudget): { rpm: number | null; tpm: number | null; source: LimitSource } {
    const pick = (flag: number | null, header: number | null): { value: number | null; from: 'flag' | 'header' | null } => {
      if (flag !== null && header !== null) return header < flag ? { value: header, from: 'header' } : { value: flag, from: 'flag' };
      if (flag !== null) return { value: flag, from: 'flag' };
      if (header !== null) return { value: header * this.#headroom, from: 'header' };
      return { value: null, from: null };
    };
    const rpm = pick(this.#flagRpm, budget.headerRpm);
    const tpm = pick(this.#flagTpm, budget.headerTpm);
    const froms = new Set([rpm.from, tpm.from].filter((from) => from !== null));
    const source: LimitSource = froms.size === 0 ? 'default' : froms.size === 2 ? 'mixed' : froms.has('flag') ? 'flags' : 'headers';
    return { rpm: rpm.value, tpm: tpm.value, source };
  }

  #applyRates(budget: ModelBudget, now: number): void {
    const base = this.#baseRates(budget);
    setRate(budget.requests, scaled(base.rpm, budget.factor), this.#burstMs, now);
    setRate(budget.tokens, scaled(base.tpm, budget.factor), this.#burstMs, now);
  }

  /** Additive increase: the slow-down factor climbs back towards 1 while no 429 arrives. */
  #recover(budget: ModelBudget, now: number): void {
    if (budget.factor >= 1) {
      budget.factorAt = now;
      return;
    }
    const seconds = (now - Math.max(budget.factorAt, budget.pausedUntil)) / 1000;
    if (seconds <= 0) return;
    budget.factor = Math.min(1, budget.factor + seconds * RECOVERY_PER_SECOND);
    budget.factorAt = now;
    this.#applyRates(budget, now);
  }

  #learn(budget: ModelBudget, grant: Grant, headers: HeaderMap, now: number): void {
    const parsed = parseRateLimitHeaders(headers);
    let changed = false;
    if (parsed.limitRequests !== null && parsed.limitRequests > 0 && parsed.limitRequests !== budget.headerRpm) {
      budget.headerRpm = parsed.limitRequests;
      changed = true;
    }
    if (parsed.limitTokens !== null && parsed.limitTokens > 0 && parsed.limitTokens !== budget.headerTpm) {
      budget.headerTpm = parsed.limitTokens;
      changed = true;
    }
    if (changed) this.#applyRates(budget, now);
    // Only the newest admission tells the server's current state; answers may arrive out of order.
    if (grant.seq < budget.lastObservedSeq) return;
    budget.lastObservedSeq = grant.seq;
    if (parsed.remainingRequests !== null && budget.headerRpm !== null) {
      budget.serverRequests = {
        limit: budget.headerRpm,
        remaining: parsed.remainingRequests,
        ratePerMs: serverRate(budget.headerRpm, parsed.remainingRequests, parsed.resetRequestsMs),
        observedAt: grant.grantedAt,
        sentAtObservation: grant.seq,
      };
    }
    if (parsed.remainingTokens !== null && budget.headerTpm !== null) {
      budget.serverTokens = {
        limit: budget.headerTpm,
        remaining: parsed.remainingTokens,
        ratePerMs: serverRate(budget.headerTpm, parsed.remainingTokens, parsed.resetTokensMs),
        observedAt: grant.grantedAt,
        sentAtObservation: grant.tokenSeq,
      };
    }
  }

  #tooLarge(budget: ModelBudget, tokens: number): RequestTooLargeError | null {
    const base = this.#baseRates(budget);
    const tpm = budget.headerTpm ?? base.tpm;
    return tpm !== null && tokens > tpm ? new RequestTooLargeError(budget.model, tokens, tpm) : null;
  }

  /** Milliseconds until `tokens` may be granted now (0 = now, Infinity = wait for an answer). */
  #wait(budget: ModelBudget, tokens: number): number {
    const now = this.#now();
    let wait = Math.max(0, budget.pausedUntil - now);
    // Cautious start: with nothing known about a model, one request goes first to learn its limits.
    const unknown = this.#flagRpm === null && this.#flagTpm === null && !budget.answered;
    if (unknown && budget.inFlight >= 1) return Infinity;
    this.#recover(budget, now);
    refill(budget.requests, now);
    refill(budget.tokens, now);
    wait = Math.max(wait, waitFor(budget.requests, 1), waitFor(budget.tokens, tokens));
    // Other clients may share the key: stay within what the server says is left,
    // keeping back a margin for what they may have sent since.
    if (budget.serverRequests) {
      const margin = Math.max(1, Math.ceil(budget.serverRequests.limit * 0.01));
      wait = Math.max(wait, serverWait(budget.serverRequests, now, budget.seq, 1, margin));
    }
    if (budget.serverTokens) {
      const margin = Math.ceil(budget.serverTokens.limit * 0.01);
      wait = Math.max(wait, serverWait(budget.serverTokens, now, budget.tokenSeq, tokens, margin));
    }
    return wait;
  }

  #grant(budget: ModelBudget, tokens: number): Grant {
    const now = this.#now();
    take(budget.requests, 1);
    take(budget.tokens, tokens);
    budget.seq += 1;
    budget.tokenSeq += tokens;
    budget.inFlight += 1;
    return { model: budget.model, tokens, seq: budget.seq, tokenSeq: budget.tokenSeq, grantedAt: now };
  }

  /** Grants queued acquisitions in order while the budget allows; sets one timer for the rest. */
  #pump(budget: ModelBudget): void {
    if (this.#closed) return;
    while (budget.waiters.length > 0) {
      const head = budget.waiters[0] as Waiter;
      const tooLarge = this.#tooLarge(budget, head.tokens);
      if (tooLarge) {
        budget.waiters.shift();
        this.#settle(head);
        head.reject(tooLarge);
        continue;
      }
      const wait = this.#wait(budget, head.tokens);
      if (wait > 0) {
        this.#schedule(budget, wait);
        return;
      }
      budget.waiters.shift();
      this.#settle(head);
      head.resolve(this.#grant(budget, head.tokens));
    }
  }

  #settle(waiter: Waiter): void {
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }

  #schedule(budget: ModelBudget, wait: number): void {
    if (wait === Infinity) return; // an answer (observe/release) will pump
    const at = this.#now() + wait;
    if (budget.timer && budget.timerAt <= at) return;
    if (budget.timer) clearTimeout(budget.timer);
    budget.timerAt = at;
    budget.timer = setTimeout(() => {
      budget.timer = null;
      this.#pump(budget);
    }, Math.max(1, wait));
  }
}

function scaled(value: number | null, factor: number): number | null {
  return value === null ? null : value * factor;
}
