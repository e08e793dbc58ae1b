// How a run stops: a soft stop (no new request leaves; those in flight may
// finish) and, after --drain-timeout or a second signal, a hard one (requests
// in flight are abandoned and stay pending). Also the reason the summary
// names: a fatal reason (bad key, no quota) outranks any other.
//
// In:  the caller's signals, stop requests from the stages.
// Out: `stop` and `abandon` signals the stages watch; the stopped reason.

import { setMaxListeners } from 'node:events';
import type { RunEvent } from '../../shared/events.js';
import type { StoppedReason } from '../../shared/types.js';

const FATAL_REASONS: ReadonlySet<StoppedReason> = new Set(['auth_failed', 'quota_exhausted', 'write_failed', 'unreachable']);

export class RunStopping {
  readonly #stop = new AbortController();
  readonly #abandon = new AbortController();
  readonly #drainTimeoutMs: number;
  readonly #emit: (event: RunEvent) => void;
  #reason: StoppedReason | null = null;
  #detach: () => void = () => {};

  constructor(options: { drainTimeoutMs: number; emit: (event: RunEvent) => void }) {
    this.#drainTimeoutMs = options.drainTimeoutMs;
    this.#emit = options.emit;
    // Every waiting request listens on these: not a leak.
    setMaxListeners(0, this.#stop.signal, this.#abandon.signal);
  }

  /** Aborted when the run stops: queued work ends as pending. */
  get stop(): AbortSignal {
    return this.#stop.signal;
  }

  /** Aborted when requests in flight must be abandoned (second signal, drain timeout). */
  get abandon(): AbortSignal {
    return this.#abandon.signal;
  }

  get reason(): StoppedReason | null {
    return this.#reason;
  }

  /** The caller's first signal stops the run; a second one abandons what is in flight. */
  attach(signal: AbortSignal | undefined, force: AbortSignal | undefined): void {
    const onStop = (): void => this.request('interrupted', 'interrupted: finishing requests in flight');
    const onForce = (): void => this.#abandon.abort();
    signal?.addEventListener('abort', onStop, { once: true });
    force?.addEventListener('abort', onForce, { once: true });
    this.#detach = () => {
      signal?.removeEventListener('abort', onStop);
      force?.removeEventListener('abort', onForce);
    };
    if (signal?.aborted) onStop();
  }

  detach(): void {
    this.#detach();
  }

  /** Stops the run; the first reason is kept unless a fatal one comes after it. */
  request(reason: StoppedReason, message: string): void {
    const current = this.#reason;
    if (current === null || (FATAL_REASONS.has(reason) && !FATAL_REASONS.has(current))) this.#reason = reason;
    if (this.#stop.signal.aborted) return;
    this.#emit({ type: 'stopping', reason, message });
    this.#stop.abort(new Error(message));
    const timer = setTimeout(() => this.#abandon.abort(), this.#drainTimeoutMs);
    timer.unref();
  }
}
