// Budget arithmetic for the limiter, as pure functions over plain state so
// that table tests can drive them with an injected clock.
//
// A bucket holds budget up to `capacity`, refills continuously at `ratePerMs`,
// and admits a charge when its level reaches min(charge, capacity). The level
// may then go negative (debt): a request larger than the burst still gets
// through, and the requests after it wait until the debt is paid off. That is
// what lets a small burst (OpenAI may enforce 60,000/min as 1,000/s) coexist
// with requests larger than one burst.

export interface BucketState {
  /** Refill per millisecond; Infinity = unlimited. */
  ratePerMs: number;
  capacity: number;
  level: number;
  updatedAt: number;
}

/** A bucket holding `burstMs` worth of `perMinute`, starting full. */
export function createBucket(perMinute: number | null, burstMs: number, now: number): BucketState {
  if (perMinute === null || !Number.isFinite(perMinute)) {
    return { ratePerMs: Infinity, capacity: Infinity, level: Infinity, updatedAt: now };
  }
  const ratePerMs = perMinute / 60_000;
  const capacity = Math.max(1, ratePerMs * burstMs);
  return { ratePerMs, capacity, level: capacity, updatedAt: now };
}

/**
 * Brings the level up to `now`. `updatedAt` never moves back: drain() may set
 * it in the future (the end of a pause), and no refill is due before then.
 */
export function refill(bucket: BucketState, now: number): void {
  if (bucket.ratePerMs === Infinity) return;
  if (now <= bucket.updatedAt) return;
  bucket.level = Math.min(bucket.capacity, bucket.level + (now - bucket.updatedAt) * bucket.ratePerMs);
  bucket.updatedAt = now;
}

/** Milliseconds from `now` until the bucket can admit `charge` (0 = now). Call after refill. */
export function waitFor(bucket: BucketState, charge: number): number {
  if (bucket.ratePerMs === Infinity) return 0;
  const needed = Math.min(charge, bucket.capacity);
  if (bucket.level >= needed) return 0;
  if (bucket.ratePerMs <= 0) return Infinity;
  return Math.ceil((needed - bucket.level) / bucket.ratePerMs);
}

export function take(bucket: BucketState, charge: number): void {
  if (bucket.ratePerMs !== Infinity) bucket.level -= charge;
}

/**
 * Changes the rate keeping the level's meaning: the capacity follows the new
 * rate, and the level is clipped to it (never raised).
 */
export function setRate(bucket: BucketState, perMinute: number | null, burstMs: number, now: number): void {
  refill(bucket, now);
  if (perMinute === null || !Number.isFinite(perMinute)) {
    bucket.ratePerMs = Infinity;
    bucket.capacity = Infinity;
    bucket.level = Infinity;
    return;
  }
  const wasUnlimited = bucket.ratePerMs === Infinity;
  bucket.ratePerMs = perMinute / 60_000;
  bucket.capacity = Math.max(1, bucket.ratePerMs * burstMs);
  bucket.level = wasUnlimited ? bucket.capacity : Math.min(bucket.level, bucket.capacity);
}

/** Empties the bucket: after a pause, traffic resumes at the steady rate instead of a burst. */
export function drain(bucket: BucketState, now: number): void {
  bucket.updatedAt = now;
  if (bucket.ratePerMs !== Infinity) bucket.level = Math.min(bucket.level, 0);
}

/**
 * The server's own budget as we last saw it (x-ratelimit-remaining-*), aged
 * to `now`: it refills linearly to `limit` over the reset time the server
 * named, and every request we sent after the observed one has taken from it.
 */
export interface ServerView {
  limit: number;
  remaining: number;
  /** Refill per ms as the reset header implies ((limit − remaining) / reset), or limit / 60 s. */
  ratePerMs: number;
  observedAt: number;
  /** Our cumulative sends (requests or tokens) at the observed request's grant. */
  sentAtObservation: number;
}

export function serverRemaining(view: ServerView, now: number, sentNow: number): number {
  const refilled = Math.min(view.limit, view.remaining + Math.max(0, now - view.observedAt) * view.ratePerMs);
  return refilled - (sentNow - view.sentAtObservation);
}

/**
 * Milliseconds until the server view holds `charge` plus `margin`. The need is
 * capped at the limit: the view never holds more, so a charge within `margin`
 * of the limit would otherwise wait forever.
 */
export function serverWait(view: ServerView, now: number, sentNow: number, charge: number, margin: number): number {
  const need = Math.min(charge + margin, view.limit);
  const have = serverRemaining(view, now, sentNow);
  if (have >= need) return 0;
  if (view.ratePerMs <= 0) return Infinity;
  return Math.ceil((need - have) / view.ratePerMs);
}

export function serverRate(limit: number, remaining: number, resetMs: number | null): number {
  const nominal = limit / 60_000;
  if (resetMs === null || resetMs <= 0 || remaining >= limit) return nominal;
  const implied = (limit - remaining) / resetMs;
  // Trust the reset header within reason; a garbled value falls back to the nominal refill.
  return implied > nominal / 4 && implied < nominal * 4 ? implied : nominal;
}
