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
// store, for itself and (when the store can take for several at once) the
// waiters right behind it: a store a round trip away costs one round trip per
// batch of grants, not one per request.

import { BudgetStoreUnavailableError, OaiBatchError, RequestTooLargeError } from '../shared/errors.js';
import { parseRateLimitHeaders, type HeaderMap, type RateLimitHeaders } from '../shared/headers.js';
import type { LimitSource, ModelLimitState } from '../shared/types.js';
import { lowestLimit, type BucketRates, type BudgetStore, type SharedModelState, type TakeManyResult } from '../stores/budget-store.js';
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
  /**
   * With nothing known about a model (no flag, no header yet), at most this many of its requests go first.
   * Default CAUTIOUS_IN_FLIGHT; over a store passed in (presumably shared by a fleet) CAUTIOUS_IN_FLIGHT_SHARED.
   */
  cautiousInFlight?: number;
  now?: () => number;
}

/** Over a shared store with nothing known about a model, the fleet's first requests go at this rate (one a second). */
export const PROBE_RPM = 60;

/** Most waiters one take asks the store for at once (a store that offers takeMany). */
const MAX_BATCH = 64;

/**
 * With nothing known about a model, this many requests go first to learn its
 * limits from their headers; the rest wait for the first answer. One alone
 * made a run at 8 s latency show "0 done" for 8 s; four are still far below
 * any paid tier's per-second budget (the free tier's 3 RPM would see one 429,
 * waited out like any other).
 */
export const CAUTIOUS_IN_FLIGHT = 4;
/**
 * The same over a shared store, per worker: a fleet starting at once sends
 * this many per worker before anyone knows the limits, and 8 workers × 4
 * would be 32 requests at once on a key that may admit 10 a second (600 RPM
 * enforced per second).
 */
export const CAUTIOUS_IN_FLIGHT_SHARED = 1;

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
    this.#cautiousInFlight = options.cautiousInFlight ?? (options.store ? CAUTIOUS_IN_FLIGHT_SHARED : CAUTIOUS_IN_FLIGHT);
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
    try {
      this.#remember(lane, await this.#store.pause(lane.model, pauseMs));
    } catch (error) {
      // A shared store that is away cannot hold the pause; the next take waits for it (or reports it lost).
      if (!(error instanceof BudgetStoreUnavailableError)) throw error;
    }
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
      const shared = await this.#store.read(lane.model).catch((error: unknown) => {
        // A shared store that is away: show what this process last knew (a snapshot must not stop the run).
        if (error instanceof BudgetStoreUnavailableError) return lane.shared;
        throw error;
      });
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
        if (this.#isProbing(lane)) {
          // Other workers may have learned the model's limits meanwhile: ask at those rates, not at the
          // probe's (a take at other rates re-rates the shared buckets for the whole fleet).
          try {
            this.#remember(lane, await this.#store.read(lane.model));
          } catch (error) {
            if (!(error instanceof BudgetStoreUnavailableError)) throw error;
          }
          if (lane.waiters.length === 0 || this.#isClosed) break;
        }
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
        const batch = this.#batch(lane, head);
        let result: TakeManyResult;
        try {
          result = await this.#take(lane, batch);
        } catch (error) {
          // The store is gone for good (a shared store that did not come back): nothing more can be granted.
          for (const waiter of lane.waiters.splice(0)) {
            settle(waiter);
            waiter.reject(error);
          }
          return;
        }
        this.#remember(lane, result.state);
        // In order, the granted ones still waiting go (the permit of one aborted meanwhile is lost).
        let isHeadGone = false;
        for (const [i, waiter] of batch.entries()) {
          const index = lane.waiters.indexOf(waiter);
          if (index < 0) {
            isHeadGone ||= i === 0;
            continue;
          }
          if (i >= result.granted) break;
          lane.waiters.splice(index, 1);
          settle(waiter);
          lane.inFlight += 1;
          lane.seq += 1;
          lane.tokenSeq += waiter.tokens;
          const record: GrantRecord = { model: lane.model, tokens: waiter.tokens, seq: lane.seq, tokenSeq: lane.tokenSeq, grantedAt: this.#now() };
          waiter.resolve(record as unknown as Grant);
        }
        if (result.granted === 0 && isHeadGone) continue; // aborted while asking: the next one goes
        if (result.granted < batch.length) await this.#sleep(lane, result.waitMs);
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

  /**
   * The head and the waiters right behind it that this process would let go
   * too (not too large, no local wait counting those before them), when the
   * store can take for several at once: one round trip for a busy lane.
   */
  #batch(lane: Lane, head: Waiter): Waiter[] {
    const batch = [head];
    if (!this.#store.takeMany) return batch;
    let tokensAhead = head.tokens;
    for (let i = 1; i < lane.waiters.length && batch.length < MAX_BATCH; i++) {
      const waiter = lane.waiters[i] as Waiter;
      if (this.#tooLarge(lane, waiter.tokens) || this.#localWaitMs(lane, waiter.tokens, batch.length, tokensAhead) > 0) break;
      batch.push(waiter);
      tokensAhead += waiter.tokens;
    }
    return batch;
  }

  async #take(lane: Lane, batch: Waiter[]): Promise<TakeManyResult> {
    const rates = this.#rates(lane);
    if (batch.length > 1 && this.#store.takeMany) return this.#store.takeMany(lane.model, batch.map((w) => w.tokens), rates);
    const result = await this.#store.take(lane.model, (batch[0] as Waiter).tokens, rates);
    return result.granted ? { granted: 1, waitMs: 0, state: result.state } : { granted: 0, waitMs: result.waitMs, state: result.state };
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

  #rates(lane: Lane): BucketRates {
    // Nothing known yet, over a store other workers share: the fleet probes at one request a second
    // until some worker's first answer tells the limits (each worker's cautious cap alone would let N go at once).
    if (this.#isProbing(lane)) return { rpm: PROBE_RPM, tpm: null, burstMs: this.#burstMs };
    const base = this.#baseRates(lane.shared);
    return { rpm: base.rpm, tpm: base.tpm, burstMs: this.#burstMs };
  }

  /** Over a store others share, with no flag, no learned limit and no answer of its own yet. */
  #isProbing(lane: Lane): boolean {
    if (this.#ownsStore || lane.isAnswered) return false;
    const base = this.#baseRates(lane.shared);
    return base.rpm === null && base.tpm === null;
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
      const limits = { rpm: parsed.limitRequests, tpm: parsed.limitTokens };
      try {
        this.#remember(lane, await this.#store.publishLimits(lane.model, limits));
      } catch (error) {
        // A shared store that is away: keep the limits here (an answer is never lost for it); the next take waits for the store.
        if (!(error instanceof BudgetStoreUnavailableError)) throw error;
        lane.shared = { ...lane.shared, limitRpm: lowestLimit(lane.shared.limitRpm, limits.rpm), limitTpm: lowestLimit(lane.shared.limitTpm, limits.tpm) };
      }
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
  #localWaitMs(lane: Lane, tokens: number, requestsAhead = 0, tokensAhead = 0): number {
    const isUnknown =
      this.#flagRpm === null && this.#flagTpm === null && !lane.isAnswered && lane.shared.limitRpm === null && lane.shared.limitTpm === null;
    if (isUnknown && lane.inFlight + requestsAhead >= this.#cautiousInFlight) return Infinity;
    const now = this.#now();
    let wait = 0;
    // Other clients may share the key: stay within what the server says is left,
    // keeping back a margin for what they may have sent since.
    if (lane.serverRequests) {
      const margin = Math.max(1, Math.ceil(lane.serverRequests.limit * 0.01));
      wait = Math.max(wait, serverWait(lane.serverRequests, now, lane.seq + requestsAhead, 1, margin));
    }
    if (lane.serverTokens) {
      const margin = Math.ceil(lane.serverTokens.limit * 0.01);
      wait = Math.max(wait, serverWait(lane.serverTokens, now, lane.tokenSeq + tokensAhead, tokens, margin));
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
