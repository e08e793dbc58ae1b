// The progress arithmetic of a run: how much is done, how fast, and when it
// will end, as a pure function of the counters so it can be table-tested.
//
// In:  the run's counters, bytes read, in-flight and queued counts, budgets.
// Out: a ProgressSnapshot (shared/events.ts) for the display, logs, metrics.

import type { ProgressSnapshot } from '../../shared/events.js';
import type { ModelLimitState } from '../../shared/types.js';
import type { RunStats } from '../summarise.js';

export interface ProgressInputs {
  now: number;
  stats: RunStats;
  /** Bytes read from the input when the last line was taken, and now; the input's size when known. */
  bytesAtLastLine: number;
  bytesRead: number;
  bytesTotal: number | null;
  inFlight: number;
  queued: number;
  costUsd: number;
  concurrencyLimit: number;
  concurrencyBound: boolean;
  limits: Record<string, ModelLimitState>;
}

export function progressOf(p: ProgressInputs): ProgressSnapshot {
  const s = p.stats;
  const done = s.succeeded + s.failed;
  const readShare = p.bytesTotal ? Math.min(1, p.bytesAtLastLine / p.bytesTotal) : null;
  const fraction = readShare === null ? null : s.lines > 0 ? readShare * (done / s.lines) : 0;
  const elapsedSeconds = (p.now - s.startedAt) / 1000;
  const doneThisRun = done - s.skipped;
  const fractionThisRun = fraction === null || readShare === null ? null : fraction - (s.lines > 0 ? readShare * (s.skipped / s.lines) : 0);
  const etaSeconds =
    fraction !== null && fractionThisRun !== null && fractionThisRun > 0 && doneThisRun > 0
      ? (elapsedSeconds * (1 - fraction)) / fractionThisRun
      : null;
  return {
    elapsedSeconds,
    bytesRead: p.bytesRead,
    bytesTotal: p.bytesTotal,
    fraction,
    etaSeconds,
    linesRead: s.lines,
    succeeded: s.succeeded,
    failed: s.failed,
    skipped: s.skipped,
    inFlight: p.inFlight,
    queued: p.queued,
    retries: s.retries,
    rateLimited: s.rateLimited,
    costUsd: p.costUsd,
    requestsPerMinute: s.requestsWindow.perMinute(p.now),
    tokensPerMinute: s.tokensWindow.perMinute(p.now),
    chargedTokensPerMinute: s.chargedWindow.perMinute(p.now),
    concurrencyLimit: p.concurrencyLimit,
    concurrencyBound: p.concurrencyBound,
    limits: p.limits,
  };
}
