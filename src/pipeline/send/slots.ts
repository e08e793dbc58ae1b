// Concurrency slots: at most `limit` requests between taking a slot and
// giving it back. A slot is taken before the rate grant and held through the
// attempt (and, after a success, until its answer is recorded), so grants are
// never handed out to requests that would then queue for a slot and leave
// together in a burst.
//
// p-queue holds the cap (its `concurrency` may change while it runs): a slot
// is a queue task that lasts until its holder gives it back.

import PQueue from 'p-queue';

export class Slots {
  readonly #queue: PQueue;

  constructor(limit: number) {
    this.#queue = new PQueue({ concurrency: limit });
  }

  /** Resolves with the function that gives the slot back; rejects with the signal's reason if it aborts first. */
  take(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<() => void>((resolve, reject) => {
      this.#queue
        .add(
          () =>
            new Promise<void>((giveBack) => {
              let isGivenBack = false;
              resolve(() => {
                if (isGivenBack) return;
                isGivenBack = true;
                giveBack();
              });
            }),
          { signal },
        )
        .catch(() => reject(signal.reason));
    });
  }

  get limit(): number {
    return this.#queue.concurrency;
  }

  set limit(value: number) {
    this.#queue.concurrency = value;
  }

  /** Slots held now. */
  get held(): number {
    return this.#queue.pending;
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.#queue.size;
  }
}
