// What the simulator saw and answered, for tests and benchmarks to assert on.
//
// In:  events from the request handlers (arrived, answered with status N,
//      billed, fault, …).  Out: a JSON-serialisable SimStats snapshot.
// Owns the counters. Updated synchronously before a response is written, so
// a client that has read its answer sees it counted.

import { FAULT_KINDS, type FaultKind } from './faults.js';
import type { AnswerUsage } from './responses.js';

export interface BilledTotals {
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
}

export interface SimStats {
  /** HTTP requests received on /v1 paths (the /sim/* control paths are not counted). */
  requests: number;
  /**
   * Responses by HTTP status ("200", "429", …), plus "reset" and "hang" for
   * faults that send none and "aborted" for clients that left before an
   * answer. Once nothing is in flight the counts add up to `requests`.
   */
  byStatus: Record<string, number>;
  /** 429s with code rate_limit_exceeded (request-too-large included). */
  rateLimited: number;
  /** Faults injected, by kind. */
  faults: Record<FaultKind, number>;
  /** Requests being handled now, hanging ones included until they end. */
  inFlight: number;
  maxInFlight: number;
  /** Usage of every success body written, by model as answered (malformed bodies are not billed). */
  billed: Record<string, BilledTotals>;
  /** Successful answers per request digest. */
  answered: Record<string, number>;
  /** Digests answered successfully more than once. */
  duplicates: number;
  /** Requests whose JSON body had a top-level `metadata` key. */
  withMetadata: number;
  /**
   * Requests that passed the rate limits, the tokens they were charged at
   * admission (characters / 4 + output limit), and the first and last
   * admission times (epoch ms, null before any): the rate a client achieved,
   * as the server measures it.
   */
  admitted: { requests: number; tokens: number; firstAt: number | null; lastAt: number | null };
}

export class StatsRecorder {
  requests = 0;
  rateLimited = 0;
  duplicates = 0;
  withMetadata = 0;
  inFlight = 0;
  maxInFlight = 0;
  private byStatus = new Map<string, number>();
  private faults = emptyFaults();
  private billed = new Map<string, BilledTotals>();
  private answered = new Map<string, number>();
  private admitted = { requests: 0, tokens: 0, firstAt: null as number | null, lastAt: null as number | null };

  countAdmission(charge: number, nowMs: number): void {
    this.admitted.requests++;
    this.admitted.tokens += charge;
    this.admitted.firstAt ??= nowMs;
    this.admitted.lastAt = nowMs;
  }

  requestStarted(): void {
    this.requests++;
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
  }

  requestEnded(): void {
    this.inFlight--;
  }

  countStatus(status: number | 'reset' | 'hang' | 'aborted'): void {
    const key = String(status);
    this.byStatus.set(key, (this.byStatus.get(key) ?? 0) + 1);
  }

  countFault(kind: FaultKind): void {
    this.faults[kind]++;
  }

  /** A success body was written for this digest. */
  countAnswer(digest: string, model: string, usage: AnswerUsage): void {
    const times = (this.answered.get(digest) ?? 0) + 1;
    this.answered.set(digest, times);
    if (times === 2) this.duplicates++;
    let totals = this.billed.get(model);
    if (!totals) {
      totals = { requests: 0, input_tokens: 0, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 0, reasoning_tokens: 0 };
      this.billed.set(model, totals);
    }
    totals.requests++;
    totals.input_tokens += usage.input_tokens;
    totals.cached_input_tokens += usage.cached_input_tokens;
    totals.cache_write_input_tokens += usage.cache_write_input_tokens;
    totals.output_tokens += usage.output_tokens;
    totals.reasoning_tokens += usage.reasoning_tokens;
  }

  snapshot(): SimStats {
    const billed: Record<string, BilledTotals> = {};
    for (const [model, totals] of this.billed) billed[model] = { ...totals };
    return {
      requests: this.requests,
      byStatus: Object.fromEntries(this.byStatus),
      rateLimited: this.rateLimited,
      faults: { ...this.faults },
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      billed,
      answered: Object.fromEntries(this.answered),
      duplicates: this.duplicates,
      withMetadata: this.withMetadata,
      admitted: { ...this.admitted },
    };
  }

  /** Zeroes every counter; requests still in flight stay counted in `inFlight`. */
  reset(): void {
    this.requests = 0;
    this.rateLimited = 0;
    this.duplicates = 0;
    this.withMetadata = 0;
    this.maxInFlight = this.inFlight;
    this.byStatus = new Map();
    this.faults = emptyFaults();
    this.billed = new Map();
    this.answered = new Map();
    this.admitted = { requests: 0, tokens: 0, firstAt: null, lastAt: null };
  }
}

function emptyFaults(): Record<FaultKind, number> {
  return Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
}
