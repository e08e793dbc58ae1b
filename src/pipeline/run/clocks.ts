// The run's clocks: fsync at least every second, the summary every 5 s, and
// every second the progress event and the next in-flight limit.
//
// In:  the stages to tick.  Out: the timers (the run clears them when it ends).

import { performance } from 'node:perf_hooks';
import type { RunEvent, ProgressSnapshot } from '../../shared/events.js';
import type { Summary } from '../../shared/types.js';
import type { ResolvedRunOptions } from '../options.js';
import type { JsonlWriter } from '../record/writer.js';
import type { ConcurrencyTuner } from '../send/concurrency.js';
import type { Slots } from '../send/slots.js';
import type { RunStats } from '../summarise.js';

export interface Clocked {
  results: JsonlWriter;
  errors: JsonlWriter;
  slots: Slots;
  tuner: ConcurrencyTuner;
  stats: RunStats;
  now: () => number;
  fail: (error: unknown) => void;
  writeSummary: (finished: boolean) => Promise<Summary>;
  progress: () => Promise<ProgressSnapshot>;
  emit: (event: RunEvent) => void;
}

/** The run's clocks: fsync at least every second, the summary every 5 s, progress and the in-flight limit every second. */
export function startClocks(o: Pick<ResolvedRunOptions, 'syncIntervalMs' | 'summaryIntervalMs' | 'progressIntervalMs' | 'concurrency'>, c: Clocked): NodeJS.Timeout[] {
  let isSyncing = false;
  const sync = setInterval(() => {
    if (isSyncing) return;
    isSyncing = true;
    Promise.all([c.results.sync(), c.errors.sync()])
      .catch(c.fail)
      .finally(() => (isSyncing = false));
  }, o.syncIntervalMs);
  const summary = setInterval(() => void c.writeSummary(false).catch(c.fail), o.summaryIntervalMs);
  let lastUtilisation = performance.eventLoopUtilization();
  let lastTick = c.now();
  const tick = setInterval(() => {
    const now = c.now();
    if (c.slots.waiting > 0 && c.slots.held >= o.concurrency) c.stats.concurrencyBoundMs += now - lastTick;
    lastTick = now;
    const current = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(current, lastUtilisation).utilization;
    lastUtilisation = current;
    c.slots.limit = c.tuner.tick(now, c.slots.limit, o.concurrency, busy);
    void c.progress().then((progress) => c.emit({ type: 'progress', progress }), c.fail);
  }, o.progressIntervalMs);
  return [sync, summary, tick];
}
