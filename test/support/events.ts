// Run events for tests of what consumes them (progress display, metrics, report).

import type { ProgressSnapshot } from '../../src/shared/events.js';
import type { ModelLimitState } from '../../src/shared/types.js';

/** A progress snapshot partway through a run; override what the test is about. */
export function progressSnapshot(overrides: Partial<ProgressSnapshot> = {}): ProgressSnapshot {
  return {
    elapsedSeconds: 12,
    bytesRead: 500,
    bytesTotal: 1000,
    linesTotal: 100,
    linesDone: 50,
    fraction: 0.5,
    etaSeconds: 75,
    linesRead: 100,
    succeeded: 48,
    failed: 2,
    skipped: 0,
    reused: 0,
    inFlight: 7,
    queued: 3,
    retries: 4,
    rateLimited: 1,
    costUsd: 0.01234,
    requestsPerMinute: 1200,
    tokensPerMinute: 45_000,
    chargedTokensPerMinute: 60_000,
    concurrencyLimit: 16,
    concurrencyBound: false,
    limits: {},
    ...overrides,
  };
}

/** A model's limiter state with budgets set by flags, nothing paused or waiting. */
export function limitState(rpm: number | null, tpm: number | null): ModelLimitState {
  return {
    rpm,
    tpm,
    baseRpm: rpm,
    baseTpm: tpm,
    source: 'flags',
    headerRpm: null,
    headerTpm: null,
    pausedUntil: null,
    rateFactor: 1,
    inFlight: 0,
    waiting: 0,
  };
}
