// Latency percentiles from a fixed log-scale histogram: memory does not grow
// with the run. Buckets are 2% wide, so a percentile is within 2% of the truth.

const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1200; // up to ~1.02^1200 ms: far beyond any timeout

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS + 1);
  #count = 0;
  #max = 0;

  get count(): number {
    return this.#count;
  }

  record(valueMs: number): void {
    const v = Math.max(0, valueMs);
    const index = v < 1 ? 0 : Math.min(BUCKETS, 1 + Math.floor(Math.log(v) / LOG_GROWTH));
    this.#counts[index] = (this.#counts[index] as number) + 1;
    this.#count += 1;
    if (v > this.#max) this.#max = v;
  }

  /** The value at quantile q (0..1): the upper edge of its bucket, never above the max seen. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i <= BUCKETS; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) {
        const upper = i === 0 ? 1 : GROWTH ** i;
        return Math.round(Math.min(upper, this.#max));
      }
    }
    return Math.round(this.#max);
  }

  get max(): number {
    return Math.round(this.#max);
  }

  summary(): { p50: number; p90: number; p95: number; p99: number; max: number } {
    return { p50: this.quantile(0.5), p90: this.quantile(0.9), p95: this.quantile(0.95), p99: this.quantile(0.99), max: this.max };
  }
}
