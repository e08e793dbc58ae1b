// The budget cap (--max-cost, DESIGN.md §3): each request reserves its
// worst-case cost before it is sent and settles to the real cost when its
// answer arrives; nothing is sent whose reservation would pass the cap.
//
// In:  a request's worst-case cost; later its real cost.
// Out: reserve() → 'ok' (reserved), 'wait' (in-flight reservations may free
//      room) or 'full' (the cap is reached: stop).
// Owns: this run's spend and the outstanding reservations.

export type ReserveResult = 'ok' | 'wait' | 'full';

export class CostCap {
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
