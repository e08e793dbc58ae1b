// `oai-batch monitor`'s work (DESIGN.md §8): one poll of the Usage and Costs
// APIs, and the loop that polls every interval until stopped.
//
// In:  a Transport carrying the admin key; the interval, label bound, clock.
// Out: an OrgSnapshot per good poll, an error per failed one (to callbacks).
// Owns the schedule: polls start every interval (fixed rate, never two at
// once; a poll that overruns delays the next), each page through
// callWithRetry (the retry policy of `run`); a stop signal ends the wait or
// aborts the poll in flight, and the loop returns.

import { setTimeout as sleepTimer } from 'node:timers/promises';
import type { CallOptions } from '../pipeline/send.js';
import type { Transport } from '../pipeline/send/transport.js';
import { COSTS_SPEC, USAGE_SPECS, type ReportSpec } from './kinds.js';
import { monthBounds } from './forecast.js';
import { fetchAllBuckets, type ApiBucket } from './pages.js';
import { buildSnapshot, historyStartSec, type OrgSnapshot } from './snapshot.js';

/** Default `--interval`: the Usage API's finest useful cadence for daily figures without hammering it. */
export const DEFAULT_INTERVAL_MS = 5 * 60_000;

export interface PollOptions extends CallOptions {
  /** Label values kept per label (`--top`). */
  top: number;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Reads costs (line item × project) and completions and embeddings usage (model × project), daily, up to now. */
export async function pollOrganisation(transport: Transport, options: PollOptions): Promise<OrgSnapshot> {
  const now = options.now ?? Date.now;
  const nowSec = Math.floor(now() / 1000);
  const startSec = historyStartSec(nowSec);
  const read = (spec: ReportSpec, fromSec: number, groupBy: string[]): Promise<ApiBucket[]> =>
    fetchAllBuckets(
      transport,
      {
        path: spec.path,
        query: { start_time: fromSec, end_time: nowSec, bucket_width: '1d', group_by: groupBy, limit: spec.pageLimits['1d']?.max ?? 31 },
        timeoutMs: options.timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      options,
    );
  // One after the other: an admin key has its own rate limit, and a poll every few minutes is in no hurry.
  const costs = await read(COSTS_SPEC, startSec, ['line_item', 'project_id']);
  const completions = await read(USAGE_SPECS.completions, startSec, ['model', 'project_id']);
  // Embeddings feed only the month's gauges (no anomaly score): the month is enough.
  const embeddings = await read(USAGE_SPECS.embeddings, monthBounds(nowSec).startSec, ['model', 'project_id']);
  return buildSnapshot({ nowSec, top: options.top, costs, completions, embeddings });
}

export interface MonitorLoopOptions {
  intervalMs: number;
  /** One poll; receives a signal aborted when the loop is stopped. */
  poll: (signal: AbortSignal) => Promise<OrgSnapshot>;
  onSnapshot: (snapshot: OrgSnapshot, tookMs: number) => void;
  onError: (error: unknown) => void;
  /** Ends the loop: the wait is cut short and a poll in flight is aborted. */
  signal: AbortSignal;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Polls every `intervalMs` until `signal` aborts; resolves then (never rejects on a poll's failure). */
export async function runMonitorLoop(options: MonitorLoopOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => sleepTimer(ms, undefined, { signal }));
  const { signal } = options;
  let nextAt = now();
  while (!signal.aborted) {
    const started = now();
    try {
      const snapshot = await options.poll(signal);
      if (signal.aborted) break;
      options.onSnapshot(snapshot, now() - started);
    } catch (error) {
      if (signal.aborted) break;
      options.onError(error);
    }
    nextAt += options.intervalMs;
    // An overrun skips the missed slots rather than polling back to back to catch up.
    if (nextAt < now()) nextAt = now() + options.intervalMs - ((now() - nextAt) % options.intervalMs);
    try {
      await sleep(Math.max(0, nextAt - now()), signal);
    } catch {
      break; // stopped while waiting
    }
  }
}
