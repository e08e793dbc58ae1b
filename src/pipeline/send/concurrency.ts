// How many requests to keep in flight, as a pure function so that table
// tests can drive it.
//
// In:  the current limit, --concurrency, the rate this process achieved and
//      its latency, how busy the process was.  Out: the next limit.
//
// Enough requests in flight to keep up this process's own achieved rate at
// the observed latency (rate × latency, doubled for slack: room to grow when
// the limit itself held the rate down), never more than --concurrency: that
// is what a server-bound run needs. The rate is the one this process got,
// not the whole budget: a worker that gets a quarter of a shared budget sizes
// itself for its quarter. But when this process itself is the
// bottleneck — answers arrive faster than it can record them, as against a
// fast local server — more requests in flight add nothing except memory: they
// wait in our own event loop and live long enough to reach V8's old
// generation (100,000 lines against a zero-latency server: 208 MB at 512 in
// flight, 160 MB at 32, in about the same time). So the limit starts at 64,
// halves while the event loop is saturated, and doubles while it has room,
// up to what the budgets need.

/** No fewer in flight than this when the achieved rate calls for fewer (a 100 ms API at 600 RPM needs 1, but answers vary). */
export const MIN_CONCURRENCY = 16;
/** A busy process shrinks its limit no further than this: enough to keep a fast server and this process both working. */
export const BUSY_FLOOR = 32;
/** The first limit, before anything is measured. */
export const INITIAL_CONCURRENCY = 64;
/** Event-loop utilisation (0–1) at and above which the process counts as the bottleneck. */
export const BUSY_UTILISATION = 0.9;
/** Per interval: halve while busy, double while not, so a wrong guess is undone in a few seconds. */
const BUSY_SHRINK = 0.5;
const GROWTH = 2;

export interface ConcurrencyInputs {
  current: number;
  /** --concurrency. */
  cap: number;
  /** Attempts per millisecond this process sent over the last interval. */
  achievedRatePerMs: number;
  /** Smoothed latency of answers, ms; 0 before the first answer. */
  latencyMs: number;
  /** Share of the last interval the event loop spent working (performance.eventLoopUtilization). */
  utilisation: number;
}

/** What the achieved rate needs in flight at this latency (twice it, plus 4), within MIN_CONCURRENCY and the cap; the cap before any latency is known. */
export function neededConcurrency(cap: number, achievedRatePerMs: number, latencyMs: number): number {
  if (!Number.isFinite(achievedRatePerMs) || latencyMs <= 0) return cap;
  return Math.max(Math.min(cap, MIN_CONCURRENCY), Math.min(cap, Math.ceil(achievedRatePerMs * latencyMs * 2) + 4));
}

export function nextConcurrency(inputs: ConcurrencyInputs): number {
  const ceiling = neededConcurrency(inputs.cap, inputs.achievedRatePerMs, inputs.latencyMs);
  if (inputs.utilisation < BUSY_UTILISATION) return Math.min(ceiling, Math.max(inputs.current * GROWTH, MIN_CONCURRENCY));
  const floor = Math.min(ceiling, BUSY_FLOOR);
  return Math.max(floor, Math.min(ceiling, Math.floor(inputs.current * BUSY_SHRINK)));
}

/**
 * Measures what nextConcurrency needs: attempts sent per ms since the last
 * tick, and a smoothed latency of answers.
 */
export class ConcurrencyTuner {
  #startedSinceTick = 0;
  #lastTickAt: number;
  #latencyEwmaMs = 0;

  constructor(now: number) {
    this.#lastTickAt = now;
  }

  /** An attempt left for the server. */
  attemptStarted(): void {
    this.#startedSinceTick += 1;
  }

  /** An attempt got its answer (or its transport error) after `latencyMs`. */
  attemptEnded(latencyMs: number): void {
    this.#latencyEwmaMs = this.#latencyEwmaMs === 0 ? latencyMs : this.#latencyEwmaMs * 0.9 + latencyMs * 0.1;
  }

  /** The next limit, from what happened since the previous tick. */
  tick(now: number, current: number, cap: number, utilisation: number): number {
    const elapsedMs = Math.max(1, now - this.#lastTickAt);
    const achievedRatePerMs = this.#startedSinceTick / elapsedMs;
    this.#startedSinceTick = 0;
    this.#lastTickAt = now;
    return nextConcurrency({ current, cap, achievedRatePerMs, latencyMs: this.#latencyEwmaMs, utilisation });
  }
}
