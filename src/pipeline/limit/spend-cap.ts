// The spend caps (--max-cost for this run, --max-total-cost for the whole
// file across runs; DESIGN.md §3): each request reserves its
// worst-case cost before it is sent and settles to the real cost when its
// answer arrives; nothing is sent whose reservation would pass the cap.
//
// In:  a request (its charge, priced at the worst case); later its real cost.
// Out: a reservation, or null when the cap is reached (the request stays
//      pending and the run stops); warnings for the summary.
// Owns: the spend counted against each cap and the outstanding reservations. ("Budget" in this
// code means the RPM/TPM budgets; money is "spend".)

import { worstCaseCostUsd } from '../../pricing/cost.js';
import type { ResolvedPrice } from '../../pricing/prices.js';
import type { RequestItem } from '../../shared/types.js';

export type ReserveResult = 'ok' | 'wait' | 'full';

/** The arithmetic of one cap: spend + reservations ≤ cap. */
export class SpendCap {
  readonly capUsd: number;
  #spentUsd: number;
  #reservedUsd = 0;
  #outstanding = 0;
  #waiters: Array<() => void> = [];

  /** `spentUsd`: what counts against the cap before this run (--max-total-cost: earlier runs of the file). */
  constructor(capUsd: number, spentUsd = 0) {
    this.capUsd = capUsd;
    this.#spentUsd = spentUsd;
  }

  get spentUsd(): number {
    return this.#spentUsd;
  }

  get reservedUsd(): number {
    return this.#reservedUsd;
  }

  /** Whether `worstUsd` fits now ('ok'), may fit once in-flight reservations settle ('wait'), or never will ('full'). */
  check(worstUsd: number): ReserveResult {
    // A tiny tolerance so float sums of exact prices do not refuse the last cent.
    if (this.#spentUsd + this.#reservedUsd + worstUsd <= this.capUsd + 1e-12) return 'ok';
    return this.#outstanding > 0 && this.#spentUsd + worstUsd <= this.capUsd + 1e-12 ? 'wait' : 'full';
  }

  /** Reserves `worstUsd` if spend + reservations + it stay within the cap. */
  reserve(worstUsd: number): ReserveResult {
    const result = this.check(worstUsd);
    if (result === 'ok') {
      this.#reservedUsd += worstUsd;
      this.#outstanding += 1;
    }
    return result;
  }

  /** Resolves when some reservation has been settled or released. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The request was answered: its real cost replaces its reservation. */
  settle(reservedUsd: number, actualUsd: number): void {
    this.#spentUsd += actualUsd;
    this.release(reservedUsd);
  }

  /** The request was not billed (failed, or never sent): its reservation is freed. */
  release(reservedUsd: number): void {
    this.#reservedUsd = Math.max(0, this.#reservedUsd - reservedUsd);
    this.#outstanding = Math.max(0, this.#outstanding - 1);
    if (this.#outstanding === 0) this.#reservedUsd = 0;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** What one request holds under the cap; settled or released exactly once. */
export interface Reservation {
  usd: number;
  isOpen: boolean;
}

/** A cap the guard enforces, the flag that set it, and the reason the run stops with when it is reached. */
export interface CapSetting {
  flag: '--max-cost' | '--max-total-cost';
  reason: 'max_cost' | 'max_total_cost';
  capUsd: number;
  /** Already spent against it before this run (earlier runs, for --max-total-cost). */
  spentUsd: number;
}

export interface SpendGuardOptions {
  caps: CapSetting[];
  /** The listed price of a model, or null (a run under a cap refuses unpriced models before sending). */
  priceOf: (model: string) => ResolvedPrice | null;
  batchDiscount: number;
  /** Aborted when the run stops: waiting reservations give up. */
  stop: AbortSignal;
  /** A cap is reached: the run must stop. */
  onReached: (reason: CapSetting['reason'], message: string) => void;
}

/** The caps applied to requests: reserve before sending, settle on the answer. */
export class SpendGuard {
  readonly #caps: Array<{ setting: CapSetting; cap: SpendCap }>;
  readonly #o: SpendGuardOptions;
  #reservedDefaultOutput = false;
  #ambiguousAttempts = 0;
  #answersWithoutUsage = 0;

  constructor(options: SpendGuardOptions) {
    this.#o = options;
    this.#caps = options.caps.map((setting) => ({ setting, cap: new SpendCap(setting.capUsd, setting.spentUsd) }));
  }

  /** Reserves the request's worst-case cost, waiting for in-flight reservations to settle if needed. null = the cap is reached or the run stopped. */
  async reserve(item: RequestItem): Promise<Reservation | null> {
    const price = this.#o.priceOf(item.model);
    if (!price) return null;
    if (item.charge.maxOutputTokens === null) this.#reservedDefaultOutput = true;
    const tier = typeof item.body.service_tier === 'string' ? item.body.service_tier : null;
    const worst = worstCaseCostUsd(item.charge, price.price, { batchDiscount: this.#o.batchDiscount, serviceTier: tier });
    for (;;) {
      if (this.#o.stop.aborted) return null;
      const full = this.#caps.find(({ cap }) => cap.check(worst) === 'full');
      if (full) {
        const what = full.setting.flag === '--max-cost' ? "this run's spend" : "the file's total spend (earlier runs included)";
        this.#o.onReached(full.setting.reason, `${full.setting.flag} ${full.setting.capUsd} reached: stopping before ${what} could pass it`);
        return null;
      }
      const waiting = this.#caps.find(({ cap }) => cap.check(worst) === 'wait');
      if (!waiting) {
        for (const { cap } of this.#caps) cap.reserve(worst);
        return { usd: worst, isOpen: true };
      }
      await Promise.race([waiting.cap.changed(), abortPromise(this.#o.stop)]);
    }
  }

  /**
   * An attempt that timed out or lost its connection may still have been
   * answered (and billed) by the server: its worst case counts as spent, and
   * the retry reserves afresh, so the cap stays a hard one. false = the cap
   * is reached (the request stays pending).
   */
  async chargeAmbiguousAttempt(item: RequestItem, reservation: Reservation, message: string): Promise<boolean> {
    if (/^ECONNREFUSED/.test(message)) return true; // never reached the server
    this.#ambiguousAttempts += 1;
    this.settle(reservation, reservation.usd);
    const again = await this.reserve(item);
    if (again === null) return false;
    reservation.usd = again.usd;
    reservation.isOpen = true;
    return true;
  }

  /**
   * The answer arrived: its real cost replaces the reservation. An answer
   * without usage has an unknown cost: the whole reservation stays spent, so
   * the cap stays hard.
   */
  settle(reservation: Reservation, actualUsd: number | null): void {
    if (!reservation.isOpen) return;
    reservation.isOpen = false;
    if (actualUsd === null) this.#answersWithoutUsage += 1;
    for (const { cap } of this.#caps) cap.settle(reservation.usd, actualUsd ?? reservation.usd);
  }

  /** Not billed (a final failure, or never sent): the reservation is freed. */
  release(reservation: Reservation): void {
    if (!reservation.isOpen) return;
    reservation.isOpen = false;
    for (const { cap } of this.#caps) cap.release(reservation.usd);
  }

  warnings(): string[] {
    const warnings: string[] = [];
    if (this.#reservedDefaultOutput) warnings.push(`some requests set no output limit: ${this.#flags()} reserved the default allowance, so the cap is an estimate`);
    if (this.#ambiguousAttempts > 0) {
      warnings.push(
        `${this.#ambiguousAttempts} attempts timed out or lost their connection and may have been billed: ${this.#flags()} counted their worst case as spent`,
      );
    }
    if (this.#answersWithoutUsage > 0) {
      warnings.push(`${this.#answersWithoutUsage} answers carried no usage: ${this.#flags()} counted their worst case as spent`);
    }
    return warnings;
  }

  #flags(): string {
    return this.#caps.map(({ setting }) => setting.flag).join(' and ');
  }
}

function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
