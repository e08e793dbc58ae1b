// Time series of a run for its HTML report (--report), in bounded memory.
//
// In:  run events, stamped with the clock as they arrive.
// Out: series() — per-bucket rates against the budgets, 429s and retries —
//      and latency() — the distribution of successful requests' latency.
// Owns the bucketing: `capacity` fixed buckets, 1 s wide at first; when the
// run outgrows them, neighbours merge and the width doubles (2 s, 4 s, …),
// so a ten-hour run takes the same memory as a ten-second one.

import type { RunEvent } from '../shared/events.js';

export interface TimelineOptions {
  /** Buckets kept; the width doubles whenever the run outgrows them. Default 720. */
  capacity?: number;
  /** Width of a bucket at the start, ms. Default 1,000. */
  initialBucketMs?: number;
  /** Clock, epoch ms (tests inject one). Default Date.now. */
  now?: () => number;
}

/** Counted per bucket: merging two buckets adds them. */
const COUNTS = ['attempts', 'finished', 'failed', 'tokens', 'rateLimited', 'retries'] as const;
/** Sampled from progress events: a bucket keeps their sum and number, so merged buckets keep the time-average. */
const GAUGES = ['rpmBudget', 'tpmBudget', 'inFlight'] as const;
type CountName = (typeof COUNTS)[number];
type GaugeName = (typeof GAUGES)[number];

export interface TimelineSeries {
  /** Width of each bucket now, seconds. */
  bucketSeconds: number;
  /** Start of each bucket, Unix seconds (uPlot's time axis). */
  time: number[];
  /** HTTP attempts (429s and retries included: what the RPM budget counts), per minute over the trailing minute. */
  attemptsPerMinute: number[];
  /** Requests that reached a final outcome, per minute over the trailing minute. */
  finishedPerMinute: number[];
  /** Tokens the API reported (input + output), per minute over the trailing minute. */
  tokensPerMinute: number[];
  /** Sum over models of the RPM / TPM budget the limiter enforced (time-average); null while unknown or unlimited. */
  rpmBudget: Array<number | null>;
  tpmBudget: Array<number | null>;
  /** Per bucket: 429 rate-limit answers, retries (5xx, timeouts, resets…), final failures. */
  rateLimited: number[];
  retries: number[];
  failed: number[];
  /** Requests in flight (time-average). */
  inFlight: Array<number | null>;
}

export interface LatencyDistribution {
  /** Upper edge of each bin, ms (bins are log-spaced, ×√2 apart, from 10 ms). */
  upperMs: number[];
  counts: number[];
}

/** Latency bins: ≤10 ms, then ×√2 up to about 20 minutes: 36 bins cover every timeout. */
const LATENCY_BINS = 36;
const LATENCY_FIRST_MS = 10;
const LATENCY_GROWTH = Math.SQRT2;
/** A rate is measured over the trailing minute (as the progress display does). */
const RATE_WINDOW_MS = 60_000;

export class RunTimeline {
  readonly #capacity: number;
  readonly #now: () => number;
  #bucketMs: number;
  #startMs: number | null = null;
  /** Index of the last bucket that saw an event (series end there). */
  #last = -1;
  readonly #counts: Record<CountName, Float64Array>;
  readonly #gaugeSums: Record<GaugeName, Float64Array>;
  readonly #gaugeSamples: Record<GaugeName, Float64Array>;
  readonly #latency = new Float64Array(LATENCY_BINS);

  constructor(options: TimelineOptions = {}) {
    this.#capacity = options.capacity ?? 720;
    this.#bucketMs = options.initialBucketMs ?? 1000;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#capacity) || this.#capacity < 2) throw new Error(`Expected \`capacity\` to be an integer ≥ 2, got \`${this.#capacity}\``);
    if (!(this.#bucketMs > 0)) throw new Error(`Expected \`initialBucketMs\` to be a number > 0, got \`${this.#bucketMs}\``);
    const make = (): Float64Array => new Float64Array(this.#capacity);
    this.#counts = Object.fromEntries(COUNTS.map((name) => [name, make()])) as Record<CountName, Float64Array>;
    this.#gaugeSums = Object.fromEntries(GAUGES.map((name) => [name, make()])) as Record<GaugeName, Float64Array>;
    this.#gaugeSamples = Object.fromEntries(GAUGES.map((name) => [name, make()])) as Record<GaugeName, Float64Array>;
  }

  readonly onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case 'started':
        this.#bucket();
        break;
      case 'attempt':
        this.#add('attempts', 1);
        break;
      case 'rate_limited':
        this.#add('rateLimited', 1);
        break;
      case 'retry':
        this.#add('retries', 1);
        break;
      case 'request_finished':
        this.#add('finished', 1);
        if (event.status === 'failed') this.#add('failed', 1);
        if (event.usage) this.#add('tokens', event.usage.input_tokens + event.usage.output_tokens);
        if (event.status === 'succeeded') this.#latency[latencyBin(event.latencyMs)]! += 1;
        break;
      case 'input_problem':
        this.#add('finished', 1);
        this.#add('failed', 1);
        break;
      case 'progress': {
        const limits = Object.values(event.progress.limits);
        const sum = (pick: (l: (typeof limits)[number]) => number | null): number | null =>
          limits.length === 0 || limits.some((l) => pick(l) === null) ? null : limits.reduce((total, l) => total + (pick(l) as number), 0);
        this.#sample('rpmBudget', sum((l) => l.rpm));
        this.#sample('tpmBudget', sum((l) => l.tpm));
        this.#sample('inFlight', event.progress.inFlight);
        break;
      }
      default:
        break;
    }
  };

  series(): TimelineSeries {
    const n = this.#last + 1;
    const start = this.#startMs ?? this.#now();
    const bucketMs = this.#bucketMs;
    const windowBuckets = Math.max(1, Math.round(RATE_WINDOW_MS / bucketMs));
    const perMinute = (name: CountName): number[] => {
      const counts = this.#counts[name];
      const out: number[] = [];
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += counts[i]!;
        if (i >= windowBuckets) sum -= counts[i - windowBuckets]!;
        const spanMs = Math.min(i + 1, windowBuckets) * bucketMs;
        out.push(round((sum / spanMs) * 60_000, 2));
      }
      return out;
    };
    const gauge = (name: GaugeName): Array<number | null> => {
      const out: Array<number | null> = [];
      for (let i = 0; i < n; i++) {
        const samples = this.#gaugeSamples[name][i]!;
        out.push(samples > 0 ? round(this.#gaugeSums[name][i]! / samples, 2) : null);
      }
      return out;
    };
    const counts = (name: CountName): number[] => Array.from(this.#counts[name].subarray(0, n));
    return {
      bucketSeconds: bucketMs / 1000,
      time: Array.from({ length: n }, (_, i) => (start + i * bucketMs) / 1000),
      attemptsPerMinute: perMinute('attempts'),
      finishedPerMinute: perMinute('finished'),
      tokensPerMinute: perMinute('tokens'),
      rpmBudget: gauge('rpmBudget'),
      tpmBudget: gauge('tpmBudget'),
      rateLimited: counts('rateLimited'),
      retries: counts('retries'),
      failed: counts('failed'),
      inFlight: gauge('inFlight'),
    };
  }

  latency(): LatencyDistribution {
    return {
      upperMs: Array.from({ length: LATENCY_BINS }, (_, i) => Math.round(LATENCY_FIRST_MS * LATENCY_GROWTH ** i)),
      counts: Array.from(this.#latency),
    };
  }

  /** The bucket of now, merging neighbours (and doubling the width) as often as the run needs. */
  #bucket(): number {
    const now = this.#now();
    this.#startMs ??= now;
    let index = Math.max(0, Math.floor((now - this.#startMs) / this.#bucketMs));
    while (index >= this.#capacity) {
      this.#halve();
      index = Math.floor((now - this.#startMs) / this.#bucketMs);
    }
    if (index > this.#last) this.#last = index;
    return index;
  }

  #halve(): void {
    const half = this.#capacity / 2;
    const merge = (array: Float64Array): void => {
      for (let i = 0; i < this.#capacity; i++) {
        const a = array[2 * i] ?? 0;
        const b = array[2 * i + 1] ?? 0;
        array[i] = i < Math.ceil(half) ? a + b : 0;
      }
    };
    for (const name of COUNTS) merge(this.#counts[name]);
    for (const name of GAUGES) {
      merge(this.#gaugeSums[name]);
      merge(this.#gaugeSamples[name]);
    }
    this.#bucketMs *= 2;
    this.#last = Math.floor(this.#last / 2);
  }

  #add(name: CountName, amount: number): void {
    const i = this.#bucket();
    this.#counts[name][i]! += amount;
  }

  #sample(name: GaugeName, value: number | null): void {
    const i = this.#bucket();
    if (value === null) return;
    this.#gaugeSums[name][i]! += value;
    this.#gaugeSamples[name][i]! += 1;
  }
}

function latencyBin(latencyMs: number): number {
  if (latencyMs <= LATENCY_FIRST_MS) return 0;
  const bin = Math.ceil(Math.log(latencyMs / LATENCY_FIRST_MS) / Math.log(LATENCY_GROWTH) - 1e-9);
  return Math.min(LATENCY_BINS - 1, bin);
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
