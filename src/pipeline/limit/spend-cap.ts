// The spend cap (--max-cost, DESIGN.md §3): each request reserves its
// worst-case cost before it is sent and settles to the real cost when its
// answer arrives; nothing is sent whose reservation would pass the cap.
//
// In:  a request (its charge, priced at the worst case); later its real cost.
// Out: a reservation, or null when the cap is reached (the request stays
//      pending and the run stops); warnings for the summary.
// Owns: this run's spend and the outstanding reservations. ("Budget" in this
// code means the RPM/TPM budgets; money is "spend".)

import { worstCaseCostUsd } from '../../pricing/cost.js';
import type { ResolvedPrice } from '../../pricing/prices.js';
import type { RequestItem } from '../../shared/types.js';

export type ReserveResult = 'ok' | 'wait' | 'full';

/** The arithmetic of one cap: spend + reservations ≤ cap. */
export class SpendCap {
  readonly capUsd: number;
  #spentUsd = 0;
  #reservedUsd = 0;
  #outstanding = 0;
  #waiters: Array<() => void> = [];

  constructor(capUsd: number) {
    this.capUsd = capUsd;
  }

  get spentUsd(): number {
    return this.#spentUsd;
  }

  get reservedUsd(): number {
    return this.#reservedUsd;
  }

  /** Reserves `worstUsd` if spend + reservations + it stay within the cap. */
  reserve(worstUsd: number): ReserveResult {
    // A tiny tolerance so float sums of exact prices do not refuse the last cent.
    if (this.#spentUsd + this.#reservedUsd + worstUsd <= this.capUsd + 1e-12) {
      this.#reservedUsd += worstUsd;
      this.#outstanding += 1;
      return 'ok';
    }
    return this.#outstanding > 0 && this.#spentUsd + worstUsd <= this.capUsd + 1e-12 ? 'wait' : 'full';
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

export interface SpendGuardOptions {
  capUsd: number;
  /** The listed price of a model, or null (a run under a cap refuses unpriced models before sending). */
  priceOf: (model: string) => ResolvedPrice | null;
  batchDiscount: number;
  /** Aborted when the run stops: waiting reservations give up. */
  stop: AbortSignal;
  /** The cap is reached: the run must stop. */
  onReached: (message: string) => void;
}

/** The cap applied to requests: reserve before sending, settle on the answer. */
export class SpendGuard {
  readonly cap: SpendCap;
  readonly #o: SpendGuardOptions;
  #reservedDefaultOutput = false;
  #ambiguousAttempts = 0;
  #answersWithoutUsage = 0;

  constructor(options: SpendGuardOptions) {
    this.#o = options;
    this.cap = new SpendCap(options.capUsd);
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
      const result = this.cap.reserve(worst);
      if (result === 'ok') return { usd: worst, isOpen: true };
      if (result === 'full') {
        this.#o.onReached(`--max-cost ${this.cap.capUsd} reached: stopping before the spend could pass it`);
        return null;
      }
      await Promise.race([this.cap.changed(), abortPromise(this.#o.stop)]);
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
    this.cap.settle(reservation.usd, actualUsd ?? reservation.usd);
  }

  /** Not billed (a final failure, or never sent): the reservation is freed. */
  release(reservation: Reservation): void {
    if (!reservation.isOpen) return;
    reservation.isOpen = false;
    this.cap.release(reservation.usd);
  }

  warnings(): string[] {
    const warnings: string[] = [];
    if (this.#reservedDefaultOutput) warnings.push('some requests set no output limit: --max-cost reserved the default allowance, so the cap is an estimate');
    if (this.#ambiguousAttempts > 0) {
      warnings.push(
        `${this.#ambiguousAttempts} attempts timed out or lost their connection and may have been billed: --max-cost counted their worst case as spent`,
      );
    }
    if (this.#answersWithoutUsage > 0) {
      warnings.push(`${this.#answersWithoutUsage} answers carried no usage: --max-cost counted their worst case as spent`);
    }
    return warnings;
  }
}

function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
