// Fault injection: which answered request fails, and how.
//
// In:  fault rates (`--faults 500=0.1,reset=0.02`), the seed, a request's
//      digest.  Out: a FaultKind or null for each attempt.
// Owns the attempt count per request body. By default only the first attempt
// of a body can fail, so every request eventually succeeds and a client's
// retry path is exercised exactly once per faulted body.

import { RequestHash, SALT } from './digest.js';

/**
 * - `500`, `503`: OpenAI's server_error bodies (retryable).
 * - `502`: an HTML page, as a proxy in front of the API sends (not JSON).
 * - `reset`: the connection is reset without an answer.
 * - `hang`: no answer; the socket is closed after `hangMs` (client timeouts).
 * - `malformed`: status 200 with a truncated JSON body.
 * - `400`, `404`, `403`: final errors with realistic bodies.
 */
export const FAULT_KINDS = ['500', '502', '503', 'reset', 'hang', 'malformed', '400', '404', '403'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type FaultRates = Partial<Record<FaultKind, number>>;

export function isFaultKind(value: string): value is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(value);
}

/**
 * Parses `500=0.1,503=0.02,reset=0.02,hang=0.01,malformed=0.02`.
 * Whitespace around items is ignored; an empty spec means no faults.
 */
export function parseFaults(spec: string): FaultRates {
  const rates: FaultRates = {};
  const trimmed = spec.trim();
  if (trimmed === '') return rates;
  for (const rawItem of trimmed.split(',')) {
    const item = rawItem.trim();
    const match = /^([^=\s]+)\s*=\s*(\S+)$/.exec(item);
    if (!match) {
      throw new Error(`Invalid fault "${item}" in "${spec}": expected kind=rate, e.g. 500=0.1`);
    }
    const kind = match[1] as string;
    const rateText = match[2] as string;
    if (!isFaultKind(kind)) {
      throw new Error(`Unknown fault kind "${kind}" in "${spec}": expected one of ${FAULT_KINDS.join(', ')}`);
    }
    if (kind in rates) throw new Error(`Fault kind "${kind}" is given twice in "${spec}"`);
    const rate = Number(rateText);
    if (!/^\d*\.?\d+(e-?\d+)?$/i.test(rateText) || !(rate >= 0 && rate <= 1)) {
      throw new Error(`Expected the rate of fault "${kind}" to be a number from 0 to 1, got "${rateText}"`);
    }
    rates[kind] = rate;
  }
  validateFaultRates(rates);
  return rates;
}

/** Throws when a rate is outside 0..1 or the rates add up to more than 1. */
export function validateFaultRates(rates: FaultRates): void {
  let sum = 0;
  for (const [kind, rate] of Object.entries(rates)) {
    if (!isFaultKind(kind)) throw new Error(`Unknown fault kind "${kind}": expected one of ${FAULT_KINDS.join(', ')}`);
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
      throw new Error(`Expected the rate of fault "${kind}" to be a number from 0 to 1, got ${String(rate)}`);
    }
    sum += rate;
  }
  // A little slack for decimal sums such as 0.1 + 0.2 + 0.7.
  if (sum > 1 + 1e-9) throw new Error(`Fault rates add up to ${sum}; they must add up to at most 1`);
}

export class FaultInjector {
  /** Cumulative thresholds in FAULT_KINDS order; a draw below one picks that kind. */
  private readonly thresholds: Array<[FaultKind, number]> = [];
  private readonly attempts = new Map<string, number>();
  readonly isActive: boolean;

  constructor(
    rates: FaultRates,
    private readonly everyAttempt: boolean,
  ) {
    validateFaultRates(rates);
    let cumulative = 0;
    for (const kind of FAULT_KINDS) {
      const rate = rates[kind] ?? 0;
      if (rate <= 0) continue;
      cumulative += rate;
      this.thresholds.push([kind, cumulative]);
    }
    this.isActive = this.thresholds.length > 0;
  }

  /**
   * Decides the fault of one attempt of a body that was admitted. Attempts are
   * counted only while faults are configured, so a fault-free simulator keeps
   * no per-body memory for them.
   */
  decide(digest: string, hash: RequestHash): FaultKind | null {
    if (!this.isActive) return null;
    const attempt = (this.attempts.get(digest) ?? 0) + 1;
    this.attempts.set(digest, attempt);
    if (!this.everyAttempt && attempt > 1) return null;
    const draw = hash.unit(SALT.fault, this.everyAttempt ? attempt : 0);
    for (const [kind, threshold] of this.thresholds) {
      if (draw < threshold) return kind;
    }
    return null;
  }

  /** Attempts that reached fault injection for this body so far. */
  attemptsOf(digest: string): number {
    return this.attempts.get(digest) ?? 0;
  }
}
