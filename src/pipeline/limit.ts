// limit: per-model request and token budgets (DESIGN.md §1 step 3, §6).
//
// In:  acquire(model, charge) before each attempt; observe() each answer's
//      headers; penalise() on a 429; release() when the attempt is over.
// Out: grants paced to the budgets; a snapshot for progress and the summary.
// Owns the policy: budgets from --rpm/--tpm or from x-ratelimit-limit-* ×
// headroom (the lower of flag and header wins once a header is seen), the
// cautious first requests of a model nothing is known about, following
// x-ratelimit-remaining-* (other clients share the key), the pause after a
// 429. The budgets themselves live in a BudgetStore: this process's memory
// (the default) or a store several workers share (src/stores/). The policy
// is the same over either.
//
// Per model, one lane queues acquisitions in order; only its head asks the
// store, so a slow store costs one round trip per grant, not one per waiter.

import { OaiBatchError, RequestTooLargeError } from '../shared/errors.js';
import { parseRateLimitHeaders, type HeaderMap, type RateLimitHeaders } from '../shared/headers.js';
import type { LimitSource, ModelLimitState } from '../shared/types.js';
import type { BucketRates, BudgetStore, SharedModelState } from '../stores/budget-store.js';
import { MemoryBudgetStore } from '../stores/memory-budget.js';
import { defaultRateLimitWaitMs } from './send/retry.js';
import { serverRate, serverWait, type ServerView } from './limit/server-view.js';

declare const grantBrand: unique symbol;
/** Permission to send one attempt. Opaque: hand it back to observe, penalise or release. */
export interface Grant {
  readonly [grantBrand]: true;
}

/** What the limiter keeps of a grant. */
interface GrantRecord {
  model: string;
  tokens: number;
  /** Sequence number of this grant for the model in this process (1, 2, …). */
  seq: number;
  /** Tokens granted for the model in this process so far, this grant included. */
  tokenSeq: number;
  grantedAt: number;
}

export interface Limiter {
  /** Resolves when `model` may send an attempt charged `tokens`; rejects with RequestTooLargeError, the signal's reason, or the store's failure. */
  acquire(model: string, tokens: number, signal?: AbortSignal): Promise<Grant>;
  /** An answer arrived (any status but a rate-limit 429): learn from its headers. */
  observe(grant: Grant, headers: HeaderMap): Promise<void>;
  /** A 429 rate_limit_exceeded: pause the model for `waitMs` (or a default that grows), then slow down. Resolves to the pause, ms. */
  penalise(grant: Grant, waitMs: number | null, headers: HeaderMap): Promise<number>;
  /** The attempt is over (after observe/penalise, or without an answer). */
  release(grant: Grant): void;
  /** Budgets and state of every model seen. No side effects. */
  snapshot(): Promise<Record<string, ModelLimitState>>;
  /** Pending acquisitions reject; a store the limiter created is closed. */
  close(): Promise<void>;
}

export interface LimiterOptions {
  /** --rpm: requests per minute per model. */
  rpm?: number | undefined;
  /** --tpm: tokens per minute per model. */
  tpm?: number | undefined;
  /** Share of header-announced limits to use when no flag sets them (default 0.9). */
  headroom?: number;
  /** Burst allowance in ms of the per-minute rate (default 500: half a second). */
  burstMs?: number;
  /** Where the budgets live. Default: a MemoryBudgetStore of this limiter's own (closed with it). */
  store?: BudgetStore;
  /** With nothing known about a model (no flag, no header yet), at most this many of its requests go first. Default CAUTIOUS_IN_FLIGHT. */
  cautiousInFlight?: number;
  now?: () => number;
}

/**
 * With nothing known about a model, this many requests go first to learn its
 * limits from their headers; the rest wait for the first answer. One alone
 * made a run at 8 s latency show "0 done" for 8 s; four are still far below
 * any paid tier's per-second budget (the free tier's 3 RPM would see one 429,
 * waited out like any other).
 */
export const CAUTIOUS_IN_FLIGHT = 4;

interface Waiter {
  tokens: number;
  resolve: (grant: Grant) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** This process's view of one model: its queue, what it sent, what the server said. */
class Lane {
  readonly model: string;
  readonly waiters: Waiter[] = [];
  isPumping = false;
  /** Ends the lane's current wait early (something changed). */
  wake: (() => void) | null = null;
  shared: SharedModelState = { limitRpm: null, limitTpm: null, pausedForMs: 0, rateFactor: 1 };
  /** Whether an answer (or a 429) has arrived for the model in this process. */
  isAnswered = false;
  inFlight = 0;
  seq = 0;
  tokenSeq = 0;
  lastObservedSeq = 0;
  serverRequests: ServerView | null = null;
  serverTokens: ServerView | null = null;
  consecutivePenalties = 0;

  constructor(model: string) {
    this.model = model;
  }
}

export class RateLimiter implements Limiter {
  readonly #flagRpm: number | null;
  readonly #flagTpm: number | null;
  readonly #headroom: number;
  readonly #burstMs: number;
  readonly #now: () => number;
  readonly #store: BudgetStore;
  readonly #ownsStore: boolean;
  readonly #cautiousInFlight: number;
  readonly #lanes = new Map<string, Lane>();
  #isClosed = false;

  constructor(options: LimiterOptions = {}) {
    this.#flagRpm = options.rpm ?? null;
    this.#flagTpm = options.tpm ?? null;
    this.#headroom = options.headroom ?? 0.9;
    this.#burstMs = options.burstMs ?? 500;
    this.#now = options.now ?? Date.now;
    this.#ownsStore = options.store === undefined;
    this.#cautiousInFlight = options.cautiousInFlight ?? CAUTIOUS_IN_FLIGHT;
    this.#store = options.store ?? new MemoryBudgetStore({ now: this.#now });
  }

  acquire(model: string, tokens: number, signal?: AbortSignal): Promise<Grant> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#isClosed) return Promise.reject(closedError());
    const lane = this.#lane(model);
    return new Promise<Grant>((resolve, reject) => {
      const waiter: Waiter = { tokens, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const index = lane.waiters.indexOf(waiter);
          if (index >= 0) lane.waiters.splice(index, 1);
          reject(signal.reason);
          if (index === 0) this.#nudge(lane);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      lane.waiters.push(waiter);
      void this.#pump(lane);
    });
  }

  async observe(grant: Grant, headers: HeaderMap): Promise<void> {
    const record = grant as unknown as GrantRecord;
    const lane = this.#lane(record.model);
    lane.isAnswered = true;
    lane.consecutivePenalties = 0;
    await this.#learn(lane, record, headers);
    this.#nudge(lane);
  }

  async penalise(grant: Grant, waitMs: number | null, headers: HeaderMap): Promise<number> {
    const record = grant as unknown as GrantRecord;
    const lane = this.#lane(record.model);
    lane.isAnswered = true;
    await this.#learn(lane, record, headers);
    lane.consecutivePenalties += 1;
    const pauseMs = waitMs ?? defaultRateLimitWaitMs(lane.consecutivePenalties);
    this.#remember(lane, await this.#store.pause(lane.model, pauseMs));
    this.#nudge(lane);
    return pauseMs;
  }

  release(grant: Grant): void {
    const lane = this.#lanes.get((grant as unknown as GrantRecord).model);
    if (!lane) return;
    lane.inFlight = Math.max(0, lane.inFlight - 1);
    this.#nudge(lane);
  }

  async snapshot(): Promise<Record<string, ModelLimitState>> {
    const now = this.#now();
    const out: Record<string, ModelLimitState> = {};
    for (const lane of this.#lanes.values()) {
      const shared = await this.#store.read(lane.model);
      const base = this.#baseRates(shared);
      out[lane.model] = {
        rpm: scaled(base.rpm, shared.rateFactor),
        tpm: scaled(base.tpm, shared.rateFactor),
        baseRpm: base.rpm,
        baseTpm: base.tpm,
        source: base.source,
        headerRpm: shared.limitRpm,
        headerTpm: shared.limitTpm,
        pausedUntil: shared.pausedForMs > 0 ? now + shared.pausedForMs : null,
        rateFactor: shared.rateFactor,
        inFlight: lane.inFlight,
        waiting: lane.waiters.length,
      };
    }
    return out;
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    for (const lane of this.#lanes.values()) {
      for (const waiter of lane.waiters.splice(0)) {
        settle(waiter);
        waiter.reject(closedError());
      }
      lane.wake?.();
    }
    if (this.#ownsStore) await this.#store.close();
  }

  #lane(model: string): Lane {
    let lane = this.#lanes.get(model);
    if (!lane) {
      lane = new Lane(model);
      this.#lanes.set(model, lane);
    }
    return lane;
  }

  /** Grants the lane's waiters in order, asking the store for the head's budget, until none is left or it must wait for an answer. */
  async #pump(lane: Lane): Promise<void> {
    if (lane.isPumping) return;
    lane.isPumping = true;
    try {
      while (lane.waiters.length > 0 && !this.#isClosed) {
        const head = lane.waiters[0] as Waiter;
        const tooLarge = this.#tooLarge(lane, head.tokens);
        if (tooLarge) {
          lane.waiters.shift();
          settle(head);
          head.reject(tooLarge);
          continue;
        }
        const localWaitMs = this.#localWaitMs(lane, head.tokens);
        if (localWaitMs === Infinity) return; // an answer or a release wakes the lane
        if (localWaitMs > 0) {
          await this.#sleep(lane, localWaitMs);
          continue;
        }
        let result;
        try {
          result = await this.#store.take(lane.model, head.tokens, this.#rates(lane.shared));
        } catch (error) {
          // The store is gone for good (a shared store that did not come back): nothing more can be granted.
          for (const waiter of lane.waiters.splice(0)) {
            settle(waiter);
            waiter.reject(error);
          }
          return;
        }
        this.#remember(lane, result.state);
        if (lane.waiters[0] !== head) continue; // aborted while asking: the next one goes
        if (!result.granted) {
          await this.#sleep(lane, result.waitMs);
          continue;
        }
        lane.waiters.shift();
        settle(head);
        lane.inFlight += 1;
        lane.seq += 1;
        lane.tokenSeq += head.tokens;
        const record: GrantRecord = { model: lane.model, tokens: head.tokens, seq: lane.seq, tokenSeq: lane.tokenSeq, grantedAt: this.#now() };
        head.resolve(record as unknown as Grant);
      }
    } finally {
      lane.isPumping = false;
    }
  }

  /** Something changed that may let the head go sooner: end its wait, or start the lane again if it stopped to wait for an answer. */
  #nudge(lane: Lane): void {
    if (lane.wake) lane.wake();
    else if (!lane.isPumping && lane.waiters.length > 0) void this.#pump(lane);
  }

  /** Waits `ms`, or less when the lane is woken (an answer, a release, an abort, close). */
  #sleep(lane: Lane, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(1, ms));
      function done(): void {
        clearTimeout(timer);
        lane.wake = null;
        resolve();
      }
      lane.wake = done;
    });
  }

  /** Budgets before slow-down: flags, learned limits, or both (the lower wins once a header is seen). */
  #baseRates(shared: SharedModelState): { rpm: number | null; tpm: number | null; source: LimitSource } {
    const pick = (flag: number | null, header: number | null): { value: number | null; from: 'flag' | 'header' | null } => {
      if (flag !== null && header !== null) return header < flag ? { value: header, from: 'header' } : { value: flag, from: 'flag' };
      if (flag !== null) return { value: flag, from: 'flag' };
      if (header !== null) return { value: header * this.#headroom, from: 'header' };
      return { value: null, from: null };
    };
    const rpm = pick(this.#flagRpm, shared.limitRpm);
    const tpm = pick(this.#flagTpm, shared.limitTpm);
    const froms = new Set([rpm.from, tpm.from].filter((from) => from !== null));
    const source: LimitSource = froms.size === 0 ? 'default' : froms.size === 2 ? 'mixed' : froms.has('flag') ? 'flags' : 'headers';
    return { rpm: rpm.value, tpm: tpm.value, source };
  }

  #rates(shared: SharedModelState): BucketRates {
    const base = this.#baseRates(shared);
    return { rpm: base.rpm, tpm: base.tpm, burstMs: this.#burstMs };
  }

  #remember(lane: Lane, state: SharedModelState): void {
    lane.shared = state;
  }

  /** Learns limits (published to the store when lower than what it holds) and what the server says is left. */
  async #learn(lane: Lane, grant: GrantRecord, headers: HeaderMap): Promise<void> {
    const parsed = parseRateLimitHeaders(headers);
    this.#followRemaining(lane, grant, parsed);
    const lowerRpm = isLower(parsed.limitRequests, lane.shared.limitRpm);
    const lowerTpm = isLower(parsed.limitTokens, lane.shared.limitTpm);
    if (lowerRpm || lowerTpm) {
      this.#remember(lane, await this.#store.publishLimits(lane.model, { rpm: parsed.limitRequests, tpm: parsed.limitTokens }));
    }
  }

  #followRemaining(lane: Lane, grant: GrantRecord, parsed: RateLimitHeaders): void {
    // Only the newest admission tells the server's current state; answers may arrive out of order.
    if (grant.seq < lane.lastObservedSeq) return;
    lane.lastObservedSeq = grant.seq;
    const limitRpm = parsed.limitRequests !== null && parsed.limitRequests > 0 ? parsed.limitRequests : lane.shared.limitRpm;
    const limitTpm = parsed.limitTokens !== null && parsed.limitTokens > 0 ? parsed.limitTokens : lane.shared.limitTpm;
    if (parsed.remainingRequests !== null && limitRpm !== null) {
      lane.serverRequests = {
        limit: limitRpm,
        remaining: parsed.remainingRequests,
        ratePerMs: serverRate(limitRpm, parsed.remainingRequests, parsed.resetRequestsMs),
        observedAt: grant.grantedAt,
        sentAtObservation: grant.seq,
      };
    }
    if (parsed.remainingTokens !== null && limitTpm !== null) {
      lane.serverTokens = {
        limit: limitTpm,
        remaining: parsed.remainingTokens,
        ratePerMs: serverRate(limitTpm, parsed.remainingTokens, parsed.resetTokensMs),
        observedAt: grant.grantedAt,
        sentAtObservation: grant.tokenSeq,
      };
    }
  }

  #tooLarge(lane: Lane, tokens: number): RequestTooLargeError | null {
    // The server's own limit, not the headroom share of it: that is what it would refuse.
    const tpm = lane.shared.limitTpm ?? this.#flagTpm;
    return tpm !== null && tokens > tpm ? new RequestTooLargeError(lane.model, tokens, tpm) : null;
  }

  /** What this process alone makes the head wait, ms: the cautious start (Infinity: until an answer) and the server's remaining budget. */
  #localWaitMs(lane: Lane, tokens: number): number {
    const isUnknown =
      this.#flagRpm === null && this.#flagTpm === null && !lane.isAnswered && lane.shared.limitRpm === null && lane.shared.limitTpm === null;
    if (isUnknown && lane.inFlight >= this.#cautiousInFlight) return Infinity;
    const now = this.#now();
    let wait = 0;
    // Other clients may share the key: stay within what the server says is left,
    // keeping back a margin for what they may have sent since.
    if (lane.serverRequests) {
      const margin = Math.max(1, Math.ceil(lane.serverRequests.limit * 0.01));
      wait = Math.max(wait, serverWait(lane.serverRequests, now, lane.seq, 1, margin));
    }
    if (lane.serverTokens) {
      const margin = Math.ceil(lane.serverTokens.limit * 0.01);
      wait = Math.max(wait, serverWait(lane.serverTokens, now, lane.tokenSeq, tokens, margin));
    }
    return wait;
  }
}

/** The policy over this process's own memory: the limiter of a single run. */
export class MemoryLimiter extends RateLimiter {
  constructor(options: Omit<LimiterOptions, 'store'> = {}) {
    super(options);
  }
}

function isLower(published: number | null, known: number | null): boolean {
  return published !== null && published > 0 && (known === null || published < known);
}

function settle(waiter: Waiter): void {
  if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
}

function closedError(): OaiBatchError {
  return new OaiBatchError('the limiter was closed', 'limiter_closed');
}

function scaled(value: number | null, factor: number): number | null {
  return value === null ? null : value * factor;
}
