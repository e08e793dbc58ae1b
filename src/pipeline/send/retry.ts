// The retry policy, as pure functions (DESIGN.md §1 step 4).
//
// In:  the outcome of one attempt (an HTTP answer or a transport error), the clock.
// Out: a Verdict saying what to do next, and how long to wait.
// Owns: which failures are retried, which spend an attempt, which stop the run.
// The loop that sleeps is the send stage (send.ts); these functions never sleep.

import { ConnectionError, TimeoutError, errorObjectOf } from '../../shared/errors.js';
import { parseRateLimitHeaders, retryAfterMs, tryAgainInMs } from '../../shared/headers.js';
import { maskQuotedKeys } from '../../shared/redact.js';
import type { HttpResponse } from './transport.js';

export type AttemptOutcome =
  | { kind: 'response'; response: HttpResponse }
  | { kind: 'error'; error: ConnectionError | TimeoutError };

export type RetryReason = 'server_error' | 'timeout' | 'connection_error' | 'invalid_response' | 'http_408' | 'http_409';

export type Verdict =
  /** A 2xx with a JSON body. */
  | { action: 'success' }
  /** 429 rate_limit_exceeded: pause the model until `waitMs` from now and retry without spending an attempt. */
  | { action: 'rate_limited'; waitMs: number | null; limitType: 'requests' | 'tokens' | null }
  /** Transient: back off and retry, spending an attempt. */
  | { action: 'retry'; reason: RetryReason; serverDelayMs: number | null; code: string; message: string }
  /** Final for this request: it goes to the errors file. */
  | { action: 'final'; code: string; message: string }
  /** The whole run must stop: retrying will not help. */
  | { action: 'stop'; reason: 'auth_failed' | 'quota_exhausted' | 'rate_limit_wait'; code: string; message: string };

export function classifyAttempt(outcome: AttemptOutcome, nowMs: number): Verdict {
  if (outcome.kind === 'error') {
    const error = outcome.error;
    if (error instanceof TimeoutError) {
      return { action: 'retry', reason: 'timeout', serverDelayMs: null, code: 'timeout', message: error.message };
    }
    return { action: 'retry', reason: 'connection_error', serverDelayMs: null, code: 'connection_error', message: error.message };
  }

  const { response } = outcome;
  const { status, headers } = response;
  const apiError = errorObjectOf(response.json);
  const code = typeof apiError?.code === 'string' && apiError.code ? apiError.code : `http_${status}`;
  const message = typeof apiError?.message === 'string' ? maskQuotedKeys(apiError.message) : describeBody(status, response.text);

  if (status >= 200 && status < 300) {
    if (response.json === undefined || typeof response.json !== 'object' || response.json === null) {
      return {
        action: 'retry',
        reason: 'invalid_response',
        serverDelayMs: null,
        code: 'invalid_response',
        message: `status ${status} with a body that is not JSON (${response.text.length} bytes)`,
      };
    }
    return { action: 'success' };
  }

  if (status === 401) return { action: 'stop', reason: 'auth_failed', code, message };

  if (status === 429) {
    if (apiError?.code === 'insufficient_quota' || apiError?.type === 'insufficient_quota') {
      return { action: 'stop', reason: 'quota_exhausted', code: 'insufficient_quota', message };
    }
    if (isRequestTooLarge(message)) return { action: 'final', code, message };
    const limitType = apiError?.type === 'requests' || apiError?.type === 'tokens' ? apiError.type : null;
    const waitMs = rateLimitWaitMs(response, nowMs);
    if (waitMs !== null && waitMs > MAX_RATE_LIMIT_WAIT_MS) {
      return { action: 'stop', reason: 'rate_limit_wait', code, message: `the server asked for a pause of ${Math.round(waitMs / 1000)} s` };
    }
    return { action: 'rate_limited', waitMs, limitType };
  }

  // The server may say outright whether to retry (the official SDK honours this header too).
  const shouldRetry = headers['x-should-retry'];
  if (shouldRetry === 'false') return { action: 'final', code, message };

  const serverDelayMs = retryAfterMs(headers, nowMs);
  if (status >= 500) return { action: 'retry', reason: 'server_error', serverDelayMs, code, message };
  if (status === 408) return { action: 'retry', reason: 'http_408', serverDelayMs, code, message };
  if (status === 409) return { action: 'retry', reason: 'http_409', serverDelayMs, code, message };
  if (shouldRetry === 'true') return { action: 'retry', reason: 'server_error', serverDelayMs, code, message };
  return { action: 'final', code, message };
}

/** A 429 that no wait can cure: the request alone is larger than the whole token limit. */
export function isRequestTooLarge(message: string): boolean {
  return /^request too large/i.test(message);
}

/**
 * How long the server asked a rate-limited client to wait, in ms: retry-after-ms,
 * retry-after, the "Please try again in 1.2s" text, then the reset headers of
 * the exhausted budget. null when it named nothing (a real 429 may carry no headers).
 */
export function rateLimitWaitMs(response: HttpResponse, nowMs: number): number | null {
  const fromHeader = retryAfterMs(response.headers, nowMs);
  if (fromHeader !== null) return fromHeader;
  const fromText = tryAgainInMs(errorObjectOf(response.json)?.message);
  if (fromText !== null) return fromText;
  const limits = parseRateLimitHeaders(response.headers);
  const waits: number[] = [];
  if (limits.remainingRequests === 0 && limits.resetRequestsMs !== null) waits.push(limits.resetRequestsMs);
  if (limits.remainingTokens !== null && limits.resetTokensMs !== null && limits.remainingTokens < (limits.limitTokens ?? Infinity) * 0.01) {
    waits.push(limits.resetTokensMs);
  }
  return waits.length > 0 ? Math.max(...waits) : null;
}

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;
/** Longest server-named delay we follow for a retryable (non-429) failure. */
export const SERVER_DELAY_CAP_MS = 60_000;

/**
 * Delay before the next attempt after a retryable failure: exponential backoff
 * with full jitter (a uniform draw in [0, min(cap, base·2^(n−1))]), where n is
 * the number of attempts already spent. A delay the server named wins when it is
 * sane (0–60 s).
 */
export function retryDelayMs(attemptsSpent: number, serverDelayMs: number | null, random: () => number): number {
  if (serverDelayMs !== null && Number.isFinite(serverDelayMs) && serverDelayMs >= 0 && serverDelayMs <= SERVER_DELAY_CAP_MS) {
    return serverDelayMs;
  }
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attemptsSpent - 1));
  return Math.floor(random() * ceiling);
}

/** Whether a retryable failure may be tried again: attempts are spent only by retryable failures, never by 429 waits. */
export function shouldRetry(verdict: Verdict, attemptsSpent: number, maxAttempts: number): boolean {
  return verdict.action === 'retry' && attemptsSpent < maxAttempts;
}

/** When no wait was named for a 429: a short pause that grows with consecutive 429s (1 s, 2 s, 4 s … 32 s). */
export function defaultRateLimitWaitMs(consecutive429s: number): number {
  return Math.min(32_000, 1000 * 2 ** Math.max(0, consecutive429s - 1));
}

/** A server asking for a pause longer than this stops the run (exit 3, stopped_reason "rate_limit_wait"). */
export const MAX_RATE_LIMIT_WAIT_MS = 10 * 60_000;

function describeBody(status: number, text: string): string {
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return snippet ? `status ${status}: ${snippet}` : `status ${status} with an empty body`;
}
