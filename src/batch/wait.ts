// batch wait: poll the manifest's batches until every part has ended,
// creating the parts that wait for enqueued-token capacity as it frees.
//
// In:  a BatchSession, WaitOptions.  Out: 'ended', 'timeout' or 'interrupted';
//      progress snapshots for the display.
// Owns the polling rhythm: a short interval while things change, growing
// 1.5× per quiet poll up to a ceiling (the API's batches take minutes to hours).

import { setTimeout as sleepTimer } from 'node:timers/promises';
import { ConnectionError, RateLimitError, ServerError, TimeoutError } from '../shared/errors.js';
import type { Manifest } from './manifest.js';
import { isPartEnded, type BatchSession } from './session.js';

export interface WaitOptions {
  /** Stop waiting after this long, ms (the batches keep running). Default: no limit. */
  timeoutMs?: number;
  /** First poll interval, ms. Default 5,000. */
  pollMs?: number;
  /** Longest poll interval, ms. Default min(60,000, 20 × pollMs). */
  maxPollMs?: number;
  /** Aborting stops the wait (the batches keep running). */
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
  /** A poll failed for a reason that may pass (connection, timeout, 5xx, 429 after its retries); the wait goes on. */
  onPollError?: (error: Error) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export type WaitOutcome = 'ended' | 'timeout' | 'interrupted';

export interface BatchProgress {
  parts: number;
  /** Parts by API status; parts not yet created count as "waiting" (or "cancelled"). */
  byStatus: Record<string, number>;
  /** Sums of the parts' request_counts (total counts only parts past validation). */
  requests: { total: number; completed: number; failed: number };
  /** Requests in the input that can be sent (bad lines excluded). */
  planned: number;
  elapsedSeconds: number;
  isEnded: boolean;
}

export function progressOf(manifest: Manifest, elapsedSeconds: number): BatchProgress {
  const byStatus: Record<string, number> = {};
  const requests = { total: 0, completed: 0, failed: 0 };
  let planned = 0;
  for (const part of manifest.parts) {
    const key = part.state === 'submitted' ? (part.status ?? 'submitted') : part.state === 'cancelled' ? 'cancelled' : 'waiting';
    byStatus[key] = (byStatus[key] ?? 0) + 1;
    planned += part.requests;
    if (part.request_counts) {
      requests.total += part.request_counts.total;
      requests.completed += part.request_counts.completed;
      requests.failed += part.request_counts.failed;
    }
  }
  return { parts: manifest.parts.length, byStatus, requests, planned, elapsedSeconds, isEnded: manifest.parts.every(isPartEnded) };
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  sleepTimer(ms, undefined, signal ? { signal } : undefined).catch(() => {});

export async function waitForBatches(session: BatchSession, options: WaitOptions = {}): Promise<WaitOutcome> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const pollMs = options.pollMs ?? 5_000;
  const maxPollMs = options.maxPollMs ?? Math.min(60_000, 20 * pollMs);
  const startedAt = now();
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : startedAt + options.timeoutMs;
  let intervalMs = pollMs;
  for (;;) {
    let changed = false;
    try {
      changed = await session.refresh();
      await session.createReady();
    } catch (error) {
      // Batches run for hours: an outage longer than one call's retries must not end the wait.
      if (!isPassing(error)) throw error;
      options.onPollError?.(error as Error);
      intervalMs = maxPollMs;
    }
    const progress = progressOf(session.manifest, (now() - startedAt) / 1000);
    options.onProgress?.(progress);
    if (progress.isEnded) return 'ended';
    if (options.signal?.aborted) return 'interrupted';
    const left = deadline - now();
    if (left <= 0) return 'timeout';
    intervalMs = changed ? pollMs : Math.min(maxPollMs, intervalMs * 1.5);
    await sleep(Math.min(intervalMs, left), options.signal);
    if (options.signal?.aborted) return 'interrupted';
  }
}

function isPassing(error: unknown): boolean {
  return error instanceof ConnectionError || error instanceof TimeoutError || error instanceof ServerError || error instanceof RateLimitError;
}
