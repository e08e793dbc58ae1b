// Rate limits as OpenAI enforces them: requests and tokens per minute, per
// API key and model, checked when a request arrives.
//
// In:  (key, model, the request's admission charge, a monotonic time in ms).
// Out: an Admission — admitted, or which limit refused it and for how long —
//      plus the bucket state the x-ratelimit-* headers report.
// Owns the buckets. Pure apart from its own state: time is passed in, so the
// tests can drive it with a fake clock.
//
// Each limit is a bucket of capacity = the per-minute limit, refilled
// continuously at limit/60 per second and starting full. With `quantize`,
// a second bucket of capacity limit/60 (at least 1) is checked too, because
// "60,000 requests/minute may be enforced as 1,000 requests/second"
// (OpenAI help article 6891753).

import { formatGoDuration } from '../shared/headers.js';

export interface Bucket {
  readonly capacity: number;
  /** Refill per millisecond. */
  readonly ratePerMs: number;
  level: number;
  updatedMs: number;
}

export function createBucket(capacity: number, perMinute: number, nowMs: number): Bucket {
  return { capacity, ratePerMs: perMinute / 60_000, level: capacity, updatedMs: nowMs };
}

export function refill(bucket: Bucket, nowMs: number): void {
  if (nowMs <= bucket.updatedMs) return;
  bucket.level = Math.min(bucket.capacity, bucket.level + (nowMs - bucket.updatedMs) * bucket.ratePerMs);
  bucket.updatedMs = nowMs;
}

/**
 * Whether the bucket holds `need`. A relative slack of 1e-9 absorbs floating
 * point error, so that a client waiting exactly the whole milliseconds it was
 * told (`waitForMs`) finds the bucket refilled.
 */
export function holds(bucket: Bucket, need: number): boolean {
  return bucket.level >= need - 1e-9 * Math.max(1, need);
}

/** Time until the bucket holds `need`, in whole ms rounded up (0 when it already does). */
export function waitForMs(bucket: Bucket, need: number): number {
  return holds(bucket, need) ? 0 : Math.ceil((need - bucket.level) / bucket.ratePerMs - 1e-6);
}

/** Time until the bucket is full again, ms. */
export function untilFullMs(bucket: Bucket): number {
  return Math.max(0, (bucket.capacity - bucket.level) / bucket.ratePerMs);
}

export interface ModelLimits {
  /** Requests per minute. */
  rpm: number;
  /** Tokens per minute. */
  tpm: number;
}

/** What the six x-ratelimit-* headers report: the minute buckets after this request. */
export interface LimitState {
  limitRequests: number;
  limitTokens: number;
  remainingRequests: number;
  remainingTokens: number;
  resetRequestsMs: number;
  resetTokensMs: number;
}

/** A request refused for now: the RPM ('requests') or TPM ('tokens') budget is short. */
export interface LimitRefusal {
  kind: 'requests' | 'tokens';
  /** The per-minute limit the message names. */
  limit: number;
  /** "Used N": what the minute bucket has given out. */
  used: number;
  /** "Requested N": 1 request, or the admission charge in tokens. */
  requested: number;
  /** Whole ms until the request would be admitted, if nothing else arrives. */
  waitMs: number;
  state: LimitState;
}

export type Admission =
  | { kind: 'ok'; state: LimitState }
  /** The request alone is larger than the whole TPM limit: final, never admitted. */
  | { kind: 'too_large'; limit: number; requested: number; state: LimitState }
  | LimitRefusal;

/** The four buckets of one (key, model). */
export class ModelLimiter {
  private readonly requestsPerMinute: Bucket;
  private readonly tokensPerMinute: Bucket;
  /** Quantized per-second buckets, null when `quantize` is off. */
  private readonly requestsPerSecond: Bucket | null;
  private readonly tokensPerSecond: Bucket | null;

  constructor(
    readonly limits: ModelLimits,
    quantize: boolean,
    nowMs: number,
  ) {
    this.requestsPerMinute = createBucket(limits.rpm, limits.rpm, nowMs);
    this.tokensPerMinute = createBucket(limits.tpm, limits.tpm, nowMs);
    this.requestsPerSecond = quantize ? createBucket(Math.max(1, limits.rpm / 60), limits.rpm, nowMs) : null;
    this.tokensPerSecond = quantize ? createBucket(Math.max(1, limits.tpm / 60), limits.tpm, nowMs) : null;
  }

  /**
   * Admits a request of `charge` tokens, or says which limit refused it.
   * A refused request still uses up a request from the request buckets
   * ("unsuccessful requests contribute to your per-minute limit", OpenAI
   * cookbook), but never drives them below zero: a client that waits the
   * time it was told then gets through.
   */
  admit(charge: number, nowMs: number): Admission {
    const rpm = this.requestsPerMinute;
    const tpm = this.tokensPerMinute;
    const rps = this.requestsPerSecond;
    const tps = this.tokensPerSecond;
    refill(rpm, nowMs);
    refill(tpm, nowMs);
    if (rps) refill(rps, nowMs);
    if (tps) refill(tps, nowMs);

    if (charge > this.limits.tpm) {
      this.useRefusedRequest();
      return { kind: 'too_large', limit: this.limits.tpm, requested: charge, state: this.state() };
    }

    if (!holds(rpm, 1) || (rps !== null && !holds(rps, 1))) {
      this.useRefusedRequest();
      const waitMs = Math.max(waitForMs(rpm, 1), rps ? waitForMs(rps, 1) : 0);
      return { kind: 'requests', limit: this.limits.rpm, used: used(rpm), requested: 1, waitMs, state: this.state() };
    }

    // A charge above the per-second capacity is admitted from a full
    // per-second bucket, which then goes into debt: anything smaller than the
    // whole minute limit must be admittable.
    const secondNeed = tps ? Math.min(charge, tps.capacity) : 0;
    if (!holds(tpm, charge) || (tps !== null && !holds(tps, secondNeed))) {
      this.useRefusedRequest();
      const waitMs = Math.max(
        waitForMs(tpm, charge),
        tps ? waitForMs(tps, secondNeed) : 0,
        waitForMs(rpm, 1),
        rps ? waitForMs(rps, 1) : 0,
      );
      return { kind: 'tokens', limit: this.limits.tpm, used: used(tpm), requested: charge, waitMs, state: this.state() };
    }

    rpm.level -= 1;
    tpm.level -= charge;
    if (rps) rps.level -= 1;
    if (tps) tps.level -= charge;
    return { kind: 'ok', state: this.state() };
  }

  private useRefusedRequest(): void {
    this.requestsPerMinute.level = Math.max(0, this.requestsPerMinute.level - 1);
    if (this.requestsPerSecond) this.requestsPerSecond.level = Math.max(0, this.requestsPerSecond.level - 1);
  }

  private state(): LimitState {
    return {
      limitRequests: this.limits.rpm,
      limitTokens: this.limits.tpm,
      remainingRequests: Math.max(0, Math.floor(this.requestsPerMinute.level)),
      remainingTokens: Math.max(0, Math.floor(this.tokensPerMinute.level)),
      resetRequestsMs: untilFullMs(this.requestsPerMinute),
      resetTokensMs: untilFullMs(this.tokensPerMinute),
    };
  }
}

/** "Used N" in a 429 message: what the minute bucket has given out. */
function used(bucket: Bucket): number {
  return Math.min(bucket.capacity, Math.max(0, Math.ceil(bucket.capacity - bucket.level)));
}

export interface RateLimiterOptions {
  rpm: number;
  tpm: number;
  /** Per-model overrides, by requested model name. */
  limits: Record<string, { rpm?: number; tpm?: number }>;
  quantize: boolean;
}

/** All (key, model) limiters of one simulator. */
export class RateLimiter {
  private readonly limiters = new Map<string, ModelLimiter>();

  constructor(private readonly options: RateLimiterOptions) {}

  admit(apiKey: string, model: string, charge: number, nowMs: number): Admission {
    const id = `${apiKey}\n${model}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = new ModelLimiter(this.limitsOf(model), this.options.quantize, nowMs);
      this.limiters.set(id, limiter);
    }
    return limiter.admit(charge, nowMs);
  }

  limitsOf(model: string): ModelLimits {
    const override = this.options.limits[model];
    return { rpm: override?.rpm ?? this.options.rpm, tpm: override?.tpm ?? this.options.tpm };
  }
}

/** The six x-ratelimit-* headers, reset times as Go durations (`1s`, `6m0s`, `20ms`). */
export function rateLimitHeaders(state: LimitState): Record<string, string> {
  return {
    'x-ratelimit-limit-requests': String(state.limitRequests),
    'x-ratelimit-limit-tokens': String(state.limitTokens),
    'x-ratelimit-remaining-requests': String(state.remainingRequests),
    'x-ratelimit-remaining-tokens': String(state.remainingTokens),
    'x-ratelimit-reset-requests': formatGoDuration(wholeMs(state.resetRequestsMs)),
    'x-ratelimit-reset-tokens': formatGoDuration(wholeMs(state.resetTokensMs)),
  };
}

/**
 * Whole milliseconds, rounded up past floating-point noise: 59999.99999 ms
 * must print as `1m0s`, not as `60s`.
 */
function wholeMs(ms: number): number {
  return Math.ceil(ms - 1e-6);
}
