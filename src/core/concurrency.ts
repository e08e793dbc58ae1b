// How many requests to keep in flight, as a pure function so that table
// tests can drive it.
//
// In:  the current limit, --concurrency, what the budgets need, how busy the
//      process was.  Out: the next limit.
//
// Enough requests in flight to reach the budgets at the observed latency
// (rate × latency, doubled for slack), never more than --concurrency: that is
// what a server-bound run needs. But when this process itself is the
// bottleneck — answers arrive faster than it can record them, as against a
// fast local server — more requests in flight add nothing except memory: they
// wait in our own event loop and live long enough to reach V8's old
// generation (100,000 lines against a zero-latency server: 208 MB at 512 in
// flight, 160 MB at 32, in about the same time). So the limit starts at 64,
// halves while the event loop is saturated, and doubles while it has room,
// up to what the budgets need.

/** No fewer in flight than this when budgets call for fewer (a 100 ms API at 600 RPM needs 1, but answers vary). */
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
  /** Requests per millisecond the budgets allow, summed over models; null when a budget is unknown or unlimited. */
  budgetRatePerMs: number | null;
  /** Smoothed latency of answers, ms; 0 before the first answer. */
  latencyMs: number;
  /** Share of the last interval the event loop spent working (performance.eventLoopUtilization). */
  utilisation: number;
}

/** What the budgets need in flight at this latency, within MIN_CONCURRENCY and the cap. */
export function neededConcurrency(cap: number, budgetRatePerMs: number | null, latencyMs: number): number {
  if (budgetRatePerMs === null || !Number.isFinite(budgetRatePerMs) || latencyMs <= 0) return cap;
  return Math.max(Math.min(cap, MIN_CONCURRENCY), Math.min(cap, Math.ceil(budgetRatePerMs * latencyMs * 2) + 4));
}

export function nextConcurrency(inputs: ConcurrencyInputs): number {
  const ceiling = neededConcurrency(inputs.cap, inputs.budgetRatePerMs, inputs.latencyMs);
  if (inputs.utilisation < BUSY_UTILISATION) return Math.min(ceiling, Math.max(inputs.current * GROWTH, MIN_CONCURRENCY));
  const floor = Math.min(ceiling, BUSY_FLOOR);
  return Math.max(floor, Math.min(ceiling, Math.floor(inputs.current * BUSY_SHRINK)));
}
