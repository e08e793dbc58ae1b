// One API call with the same retry policy as `run`, for the commands that are
// not the pipeline (organisation reports, Batch API, compare's helpers).
//
// In:  a Transport and an HttpRequest.  Out: the successful HttpResponse;
// throws the APIError subclass for a final failure (AuthError, QuotaError, …)
// or ConnectionError/TimeoutError when attempts run out.
// Owns: the sleep between attempts for these one-off calls.

import { setTimeout as sleepTimer } from 'node:timers/promises';
import { APIError, ConnectionError, OaiBatchError, TimeoutError } from './errors.js';
import {
  MAX_RATE_LIMIT_WAIT_MS,
  classifyAttempt,
  defaultRateLimitWaitMs,
  retryDelayMs,
  shouldRetry,
  type AttemptOutcome,
} from './retry.js';
import type { HttpRequest, HttpResponse, Transport } from './transport.js';

export interface CallOptions {
  /** Attempts for transient failures (429 waits not counted). Default 6. */
  maxAttempts?: number;
  /** The answer is not JSON (a file's content): any 2xx is a success. Default false. */
  isRawBody?: boolean;
  /** Most 429 waits before giving up. Default 50. */
  maxRateLimitWaits?: number;
  /** Called before each wait, for progress displays and logs. */
  onRetry?: (info: { reason: string; waitMs: number; attempt: number }) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  sleepTimer(ms, undefined, signal ? { signal } : undefined);

export async function callWithRetry(
  transport: Transport,
  request: HttpRequest,
  options: CallOptions = {},
): Promise<HttpResponse> {
  const maxAttempts = options.maxAttempts ?? 6;
  const maxWaits = options.maxRateLimitWaits ?? 50;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  let attempts = 0;
  let rateLimitWaits = 0;

  for (;;) {
    let outcome: AttemptOutcome;
    try {
      outcome = { kind: 'response', response: await transport.request(request) };
    } catch (error) {
      if (error instanceof ConnectionError || error instanceof TimeoutError) outcome = { kind: 'error', error };
      else throw error;
    }
    const verdict = classifyAttempt(outcome, now());
    if (verdict.action === 'success' && outcome.kind === 'response') return outcome.response;
    if (options.isRawBody && outcome.kind === 'response' && outcome.response.status >= 200 && outcome.response.status < 300) {
      return outcome.response;
    }

    if (verdict.action === 'rate_limited' && outcome.kind === 'response') {
      rateLimitWaits += 1;
      const waitMs = verdict.waitMs ?? defaultRateLimitWaitMs(rateLimitWaits);
      if (rateLimitWaits > maxWaits || waitMs > MAX_RATE_LIMIT_WAIT_MS) {
        const r = outcome.response;
        throw APIError.generate(r.status, r.json, r.headers, r.requestId);
      }
      options.onRetry?.({ reason: 'rate_limited', waitMs, attempt: attempts + 1 });
      await sleep(waitMs, request.signal);
      continue;
    }

    attempts += 1;
    if (shouldRetry(verdict, attempts, maxAttempts) && verdict.action === 'retry') {
      const waitMs = retryDelayMs(attempts, verdict.serverDelayMs, random);
      options.onRetry?.({ reason: verdict.reason, waitMs, attempt: attempts + 1 });
      await sleep(waitMs, request.signal);
      continue;
    }

    if (outcome.kind === 'error') throw outcome.error;
    const r = outcome.response;
    if (verdict.action === 'retry' && verdict.reason === 'invalid_response') {
      throw new OaiBatchError(verdict.message, 'invalid_response');
    }
    throw APIError.generate(r.status, r.json, r.headers, r.requestId);
  }
}
