// Events the core emits while it runs. The progress display, Prometheus
// metrics and JSON logs subscribe to them; the core knows none of those.

import type { Endpoint, InputProblemCode, ModelLimitState, StoppedReason, Summary, Usage } from './types.js';

export interface ProgressSnapshot {
  elapsedSeconds: number;
  /** Bytes read from the input, and its size when known (for % without a pre-pass). */
  bytesRead: number;
  bytesTotal: number | null;
  /** Lines this run has to finish (the input's records, or --limit), or null while unknown (stdin still being read). */
  linesTotal: number | null;
  /** Lines finished: succeeded (earlier runs' included) plus failed. */
  linesDone: number;
  /** 0..1: linesDone ÷ linesTotal, or null while linesTotal is unknown. */
  fraction: number | null;
  /** From the recent finish rate (the last minute): the lines left at that pace; null before anything finished. */
  etaSeconds: number | null;
  linesRead: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** Answers not bought this run or earlier (--cache hits and dedup). */
  reused: number;
  inFlight: number;
  /** Read but not finished and not in flight: waiting for budget, a slot or a retry. */
  queued: number;
  retries: number;
  rateLimited: number;
  costUsd: number;
  /** Over the last minute (or the run so far, if shorter). */
  requestsPerMinute: number;
  tokensPerMinute: number;
  chargedTokensPerMinute: number;
  /** Most requests allowed in flight now (follows the budgets, up to --concurrency). */
  concurrencyLimit: number;
  /** True while --concurrency, not the budget, holds the rate down. */
  concurrencyBound: boolean;
  limits: Record<string, ModelLimitState>;
}

export type RunEvent =
  | { type: 'started'; input: string; resumed: boolean; skippedAlready: number; at: string }
  | { type: 'input_problem'; line: number; customId: string; code: InputProblemCode; message: string }
  /** An attempt leaves; `chargedTokens`: what the rate limiter counted for it. */
  | { type: 'request_started'; customId: string; line: number; model: string; endpoint: Endpoint; attempt: number; chargedTokens: number }
  /** One HTTP attempt ended: `code` is the status ("200", "429", "500") or timeout / connection_error. */
  | { type: 'attempt'; customId: string; model: string; endpoint: Endpoint; code: string; latencyMs: number; requestId: string | null }
  | { type: 'retry'; customId: string; line: number; model: string; reason: string; code: string; waitMs: number; attempt: number; requestId: string | null }
  | { type: 'rate_limited'; customId: string; model: string; waitMs: number; pausedUntil: string; requestId: string | null }
  | {
      type: 'request_finished';
      customId: string;
      line: number;
      model: string;
      endpoint: Endpoint;
      status: 'succeeded' | 'failed';
      httpStatus: number | null;
      code: string | null;
      attempts: number;
      latencyMs: number;
      usage: Usage | null;
      costUsd: number | null;
      requestId: string | null;
      /** The response body (only delivered to subscribers; never logged unless asked). */
      body?: unknown;
      /** Answered without buying it: from the response cache (`hit`) or by an identical request of this run (`dedup`). `usage` is then what was saved, `costUsd` 0. */
      cache?: 'hit' | 'dedup';
      /** What the reused answer would have cost, USD (null when its model has no price). */
      savedUsd?: number | null;
    }
  | { type: 'progress'; progress: ProgressSnapshot }
  | { type: 'stopping'; reason: StoppedReason; message: string }
  | { type: 'finished'; summary: Summary };

export type EventListener = (event: RunEvent) => void;
