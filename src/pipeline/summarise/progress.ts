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
  /** Lines to finish this run: the input's records (or --limit of them); null while unknown. */
  linesToDo: number | null;
  /** Bytes read from the input, and its size when known. */
  bytesRead: number;
  bytesTotal: number | null;
  inFlight: number;
  queued: number;
  costUsd: number;
  concurrencyLimit: number;
  concurrencyBound: boolean;
  limits: Record<string, ModelLimitState>;
}

/**
 * The share done is lines finished ÷ lines to do (not bytes read, which runs
 * far ahead of the answers), and the ETA is the lines left at the recent
 * finish rate (lines an earlier run finished are done, but were not finished
 * at any rate of this run).
 */
export function progressOf(p: ProgressInputs): ProgressSnapshot {
  const s = p.stats;
  const done = s.succeeded + s.failed;
  const total = p.linesToDo === null ? null : Math.max(p.linesToDo, done);
  const fraction = total === null ? null : total === 0 ? 1 : done / total;
  const finishedPerSecond = s.requestsWindow.perMinute(p.now) / 60;
  const etaSeconds = total === null ? null : total - done === 0 ? 0 : finishedPerSecond > 0 ? (total - done) / finishedPerSecond : null;
  return {
    elapsedSeconds: (p.now - s.startedAt) / 1000,
    bytesRead: p.bytesRead,
    bytesTotal: p.bytesTotal,
    linesTotal: total,
    linesDone: done,
    fraction,
    etaSeconds,
    linesRead: s.lines,
    succeeded: s.succeeded,
    failed: s.failed,
    skipped: s.skipped,
    reused: s.savings.hits + s.savings.dedup,
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
