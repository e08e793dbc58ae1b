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
  // Less a nanosecond: float noise (0.99 + 0.01 ≠ 1) must not add a whole millisecond.
  return Math.ceil((needed - bucket.level) / bucket.ratePerMs - 1e-6);
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
