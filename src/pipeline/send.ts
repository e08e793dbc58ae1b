// send: one request's journey, and the only retry loop (DESIGN.md §1 step 4).
//
// In:  a request (the pipeline's RequestItem, or a one-off HttpRequest).
// Out: a SendResult: answered (the success, its slot still held until the
//      answer is recorded), failed for good, or stopped (pending).
// Owns, per attempt and in this order: a concurrency slot, the rate grant,
// the HTTP exchange (send/transport.ts), the verdict (send/retry.ts: pure),
// and what follows it: learn from the headers, wait out a 429 without
// spending an attempt, back off and retry, fail, or stop the run. With
// --max-cost it also reserves the request's worst case first.
//
// The Batch API and organisation reports send through the same loop
// (callWithRetry below): one policy, one set of tests.

import { setTimeout as sleepTimer } from 'node:timers/promises';
import { APIError, BudgetStoreUnavailableError, ConnectionError, InvalidResponseError, OaiBatchError, RequestTooLargeError, TimeoutError } from '../shared/errors.js';
import type { RunEvent } from '../shared/events.js';
import type { RequestItem } from '../shared/types.js';
import type { Grant, Limiter } from './limit.js';
import type { Reservation, SpendGuard } from './limit/spend-cap.js';
import { ConcurrencyTuner } from './send/concurrency.js';
import type { Reachability } from './send/reachability.js';
import { classifyAttempt, defaultRateLimitWaitMs, retryDelayMs, type AttemptOutcome, type Verdict } from './send/retry.js';
import type { Slots } from './send/slots.js';
import type { HttpRequest, HttpResponse, Transport } from './send/transport.js';

export type SendResult =
  /** A 2xx with a JSON body. Its concurrency slot is held until `done()`: answers not yet on disk never exceed the slots. */
  | { kind: 'answered'; response: HttpResponse; attempts: number; latencyMs: number; done: () => void }
  /** Failed for good: the last answer (or transport error) and its code. */
  | {
      kind: 'failed';
      response: HttpResponse | null;
      transportError: ConnectionError | TimeoutError | null;
      verdict: Verdict | null;
      code: string;
      message: string;
      attempts: number;
      latencyMs: number;
    }
  /**
   * Not finished: the run stopped (an interrupt, the cap, a stop verdict), or
   * the request was abandoned in flight (`abandoned`: the server may have
   * answered, and billed, it).
   */
  | { kind: 'stopped'; attempts: number; response: HttpResponse | null; verdict: Verdict | null; abandoned?: boolean };

/** Where attempts wait before they leave, and what they report. */
export interface Journey {
  /** The request as sent (its body already serialised for the pipeline's hot path). */
  request: HttpRequest;
  /** The model whose budget an attempt draws on, and its charge in tokens. */
  model: string;
  tokens: number;
  /** Attempts for transient failures; 429 waits do not spend one. */
  maxAttempts: number;
  /** 429 waits before the last 429 counts as a failure (one-off calls give up; the pipeline waits as long as the server asks). */
  maxRateLimitWaits: number;
  /** Any 2xx is a success, JSON or not (file contents). */
  acceptsRawBody: boolean;
}

export interface SendDeps {
  transport: Transport;
  limiter: Limiter;
  /** Concurrency slots (the pipeline); null for one-off calls. */
  slots: Slots | null;
  /** Aborted when the run stops: no new attempt leaves; waits end. */
  stop: AbortSignal;
  /** Aborted when requests in flight are abandoned: their answers no longer count. */
  abandon?: AbortSignal;
  random: () => number;
  now: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Told about each step of the journey (the pipeline turns these into run events). */
  watch?: JourneyWatcher;
  tuner?: ConcurrencyTuner;
  /** Notices when nothing connects (the pipeline); absent for one-off calls, which report their own errors. */
  reachability?: Reachability;
}

/** The steps of a journey, for events and logs. */
export interface JourneyWatcher {
  attemptStarted?(attempt: number): void;
  attemptEnded?(outcome: AttemptOutcome, latencyMs: number): void;
  rateLimited?(pauseMs: number, response: HttpResponse): void;
  retrying?(verdict: Extract<Verdict, { action: 'retry' }>, waitMs: number, nextAttempt: number, response: HttpResponse | null): void;
  /** Before a retry after a timeout or a lost connection (the attempt may have been billed); false = stop (pending). */
  beforeAmbiguousRetry?(message: string): Promise<boolean>;
  /** A stop verdict (401, insufficient_quota, a pause too long), told before the grant goes back so nothing more leaves on its strength. */
  stopping?(verdict: Extract<Verdict, { action: 'stop' }>): void;
  /** The shared budget store was lost for too long: nothing can be granted, the run must stop (resumable). */
  storeLost?(error: BudgetStoreUnavailableError): void;
  /** Nothing connects to the server (Reachability): the run must stop, this request stays pending. */
  unreachable?(error: ConnectionError): void;
}

/** Sends until success, a final failure or a stop. */
export async function sendWithRetry(journey: Journey, deps: SendDeps): Promise<SendResult> {
  const { limiter, slots, stop, watch } = deps;
  let spent = 0; // attempts spent by retryable failures
  let attempts = 0; // every HTTP attempt
  let rateLimitWaits = 0;
  let last: { response: HttpResponse | null; verdict: Verdict | null } = { response: null, verdict: null };
  /** Answers the server had given (to anyone) when this request's connection failures began; null while it has none. */
  let answersAtFirstConnectionFailure: number | null = null;
  const stopped = (): Extract<SendResult, { kind: 'stopped' }> => ({ kind: 'stopped', attempts, ...last });

  for (;;) {
    if (stop.aborted) return stopped();
    let giveBackSlot: () => void = () => {};
    if (slots) {
      try {
        giveBackSlot = await slots.take(stop);
      } catch {
        return stopped();
      }
    }
    let isSlotKept = false;
    try {
      let grant: Grant;
      try {
        grant = await limiter.acquire(journey.model, journey.tokens, stop);
      } catch (error) {
        if (error instanceof RequestTooLargeError) {
          return { kind: 'failed', response: null, transportError: null, verdict: null, code: error.code, message: error.message, attempts, latencyMs: 0 };
        }
        if (stop.aborted) return stopped();
        if (error instanceof BudgetStoreUnavailableError) {
          watch?.storeLost?.(error);
          return stopped();
        }
        throw error;
      }
      if (stop.aborted) {
        // Granted in the same turn the run stopped (a 401 elsewhere, an interrupt): nothing more leaves.
        limiter.release(grant);
        return stopped();
      }

      attempts += 1;
      watch?.attemptStarted?.(attempts);
      deps.tuner?.attemptStarted();
      const startedAt = deps.now();
      let outcome: AttemptOutcome;
      try {
        outcome = { kind: 'response', response: await deps.transport.request(journey.request) };
      } catch (error) {
        if (deps.abandon?.aborted || (journey.request.signal?.aborted ?? false)) {
          limiter.release(grant);
          if (deps.abandon?.aborted) return { ...stopped(), abandoned: true };
          throw error;
        }
        if (!(error instanceof ConnectionError || error instanceof TimeoutError)) {
          limiter.release(grant);
          throw error;
        }
        outcome = { kind: 'error', error };
      }
      const latencyMs = deps.now() - startedAt;
      deps.tuner?.attemptEnded(latencyMs);
      watch?.attemptEnded?.(outcome, latencyMs);
      const response = outcome.kind === 'response' ? outcome.response : null;
      if (deps.reachability) {
        if (response) deps.reachability.answered();
        else if (outcome.kind === 'error' && outcome.error instanceof ConnectionError) {
          answersAtFirstConnectionFailure ??= deps.reachability.answers;
          if (deps.reachability.connectionFailed()) {
            limiter.release(grant);
            watch?.unreachable?.(outcome.error);
            return stopped();
          }
        }
      }
      let verdict = classifyAttempt(outcome, deps.now());
      if (journey.acceptsRawBody && response && response.status >= 200 && response.status < 300) verdict = { action: 'success' };
      last = { response, verdict };

      if (verdict.action === 'rate_limited' && response) {
        rateLimitWaits += 1;
        if (rateLimitWaits > journey.maxRateLimitWaits) {
          limiter.release(grant);
          return failedWith(response, null, verdict, attempts, latencyMs);
        }
        const pauseMs = await limiter.penalise(grant, verdict.waitMs, response.headers);
        limiter.release(grant);
        watch?.rateLimited?.(pauseMs, response);
        continue; // no attempt spent; the slot is given back while the model is paused
      }
      if (verdict.action === 'stop') {
        watch?.stopping?.(verdict);
        limiter.release(grant);
        return stopped();
      }
      if (response) await limiter.observe(grant, response.headers);
      limiter.release(grant);

      switch (verdict.action) {
        case 'success':
          isSlotKept = true;
          return { kind: 'answered', response: response as HttpResponse, attempts, latencyMs, done: giveBackSlot };
        case 'final':
          return failedWith(response, outcome.kind === 'error' ? outcome.error : null, verdict, attempts, latencyMs);
        case 'retry': {
          spent += 1;
          if (
            spent >= journey.maxAttempts &&
            outcome.kind === 'error' &&
            outcome.error instanceof ConnectionError &&
            deps.reachability?.answers === answersAtFirstConnectionFailure
          ) {
            // Out of attempts, and not one answer from the server since this request began failing: not this request's fault.
            watch?.unreachable?.(outcome.error);
            return stopped();
          }
          if (spent >= journey.maxAttempts) {
            return failedWith(response, outcome.kind === 'error' ? outcome.error : null, verdict, attempts, latencyMs);
          }
          const waitMs = retryDelayMs(spent, verdict.serverDelayMs, deps.random);
          watch?.retrying?.(verdict, waitMs, attempts + 1, response);
          giveBackSlot();
          if (verdict.reason === 'timeout' || verdict.reason === 'connection_error') {
            if (watch?.beforeAmbiguousRetry && !(await watch.beforeAmbiguousRetry(verdict.message))) return stopped();
          }
          try {
            await deps.sleep(waitMs, stop);
          } catch {
            return stopped();
          }
          continue;
        }
      }
    } finally {
      if (!isSlotKept) giveBackSlot();
    }
  }
}

function failedWith(
  response: HttpResponse | null,
  transportError: ConnectionError | TimeoutError | null,
  verdict: Verdict,
  attempts: number,
  latencyMs: number,
): SendResult {
  const code = 'code' in verdict ? verdict.code : response ? `http_${response.status}` : 'error';
  const message = 'message' in verdict ? verdict.message : `status ${response?.status ?? 'none'}`;
  return { kind: 'failed', response, transportError, verdict, code, message, attempts, latencyMs };
}

/** The default sleep: a timer that a stop cuts short (rejecting). */
export function sleepUnlessStopped(ms: number, signal: AbortSignal): Promise<void> {
  return sleepTimer(ms, undefined, { signal });
}

// ---------------------------------------------------------------------------
// The pipeline's send stage: the journey of one RequestItem, as run events.

export interface SendStageOptions {
  transport: Transport;
  limiter: Limiter;
  slots: Slots;
  tuner: ConcurrencyTuner;
  spend: SpendGuard | null;
  maxAttempts: number;
  timeoutMs: number;
  stop: AbortSignal;
  abandon: AbortSignal;
  random: () => number;
  now: () => number;
  emit: (event: RunEvent) => void;
  reachability: Reachability;
  /** The server as messages name it: its base URL and the proxy in use, if any. */
  target: { baseUrl: string; proxy: string | null };
  /** A stop verdict (401, insufficient_quota, a pause too long), the budget store's failure, or nothing connects: the run must stop. */
  requestStop: (reason: 'auth_failed' | 'quota_exhausted' | 'rate_limit_wait' | 'budget_store_unavailable' | 'unreachable', message: string) => void;
}

/** What the record stage needs of a request's journey. */
export type ItemResult = SendResult & { reservation: Reservation | null };

export class SendStage {
  readonly #o: SendStageOptions;
  #abandoned = 0;

  constructor(options: SendStageOptions) {
    this.#o = options;
  }

  /** The whole journey of one request. A success's reservation is left open for the record stage to settle. */
  async send(item: RequestItem): Promise<ItemResult> {
    const o = this.#o;
    const reservation = o.spend ? await o.spend.reserve(item) : null;
    if (o.spend && reservation === null) return { kind: 'stopped', attempts: 0, response: null, verdict: null, reservation: null };
    let result: SendResult | undefined;
    try {
      result = await sendWithRetry(
        {
          request: { method: 'POST', path: item.url.replace(/^\/v1/, ''), bodyText: JSON.stringify(item.body), timeoutMs: o.timeoutMs },
          model: item.model,
          tokens: item.charge.total,
          maxAttempts: o.maxAttempts,
          maxRateLimitWaits: Infinity,
          acceptsRawBody: false,
        },
        {
          transport: o.transport,
          limiter: o.limiter,
          slots: o.slots,
          stop: o.stop,
          abandon: o.abandon,
          random: o.random,
          now: o.now,
          sleep: sleepUnlessStopped,
          tuner: o.tuner,
          reachability: o.reachability,
          watch: this.#watcher(item, reservation),
        },
      );
    } finally {
      if (reservation && result?.kind === 'stopped' && result.abandoned) o.spend?.settle(reservation, reservation.usd);
      else if (reservation && result?.kind !== 'answered') o.spend?.release(reservation);
    }
    if (result.kind === 'stopped' && result.abandoned) this.#abandoned += 1;
    return { ...result, reservation };
  }

  /** Warnings for the summary: requests abandoned in flight (after --drain-timeout or a second signal) may have been billed. */
  warnings(): string[] {
    if (this.#abandoned === 0) return [];
    return [
      `${this.#abandoned} requests were abandoned in flight (--drain-timeout or a second signal): the server may have answered and billed them; ` +
        'they are pending, and --resume sends them again',
    ];
  }

  #watcher(item: RequestItem, reservation: Reservation | null): JourneyWatcher {
    const { emit, now, spend, requestStop, target } = this.#o;
    return {
      unreachable: (error) =>
        requestStop(
          'unreachable',
          // A proxy that refuses is named by the error itself.
          `nothing connects to ${target.baseUrl}${target.proxy && !error.message.includes('proxy') ? ` through the proxy ${target.proxy}` : ''} ` +
            `(${error.message}); the lines left are pending: --resume continues once it answers`,
        ),
      storeLost: (error) => requestStop('budget_store_unavailable', error.message),
      stopping: (verdict) =>
        requestStop(verdict.reason, verdict.reason === 'rate_limit_wait' ? `${verdict.message} on ${item.model}: stopping; --resume later` : verdict.message),
      attemptStarted: (attempt) =>
        emit({ type: 'request_started', customId: item.customId, line: item.line, model: item.model, endpoint: item.url, attempt, chargedTokens: item.charge.total }),
      attemptEnded: (outcome, latencyMs) => {
        const response = outcome.kind === 'response' ? outcome.response : null;
        emit({
          type: 'attempt',
          customId: item.customId,
          model: item.model,
          endpoint: item.url,
          code: response ? String(response.status) : outcome.kind === 'error' ? outcome.error.code : 'error',
          latencyMs,
          requestId: response?.requestId ?? null,
        });
      },
      rateLimited: (pauseMs, response) =>
        emit({
          type: 'rate_limited',
          customId: item.customId,
          model: item.model,
          waitMs: pauseMs,
          pausedUntil: new Date(now() + pauseMs).toISOString(),
          requestId: response.requestId,
        }),
      retrying: (verdict, waitMs, nextAttempt, response) =>
        emit({
          type: 'retry',
          customId: item.customId,
          line: item.line,
          model: item.model,
          reason: verdict.reason,
          code: verdict.code,
          waitMs,
          attempt: nextAttempt,
          requestId: response?.requestId ?? null,
        }),
      beforeAmbiguousRetry: spend && reservation ? (message) => spend.chargeAmbiguousAttempt(item, reservation, message) : undefined,
    };
  }
}

// ---------------------------------------------------------------------------
// One-off calls (Batch API, organisation reports): the same loop, no slots,
// a limiter of their own that only waits out 429 pauses.

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

/**
 * One API call with the same retry policy as `run`. Resolves to the
 * successful HttpResponse; throws the APIError subclass of a final failure
 * (AuthError, QuotaError, …), ConnectionError/TimeoutError when attempts run
 * out on them, InvalidResponseError for a 2xx body that never parsed.
 */
export async function callWithRetry(transport: Transport, request: HttpRequest, options: CallOptions = {}): Promise<HttpResponse> {
  const sleep = options.sleep ?? ((ms: number, signal?: AbortSignal) => sleepTimer(ms, undefined, signal ? { signal } : undefined));
  const stop = request.signal ?? new AbortController().signal;
  const limiter = new PauseOnlyLimiter(sleep);
  const result = await sendWithRetry(
    {
      request,
      model: '',
      tokens: 0,
      maxAttempts: options.maxAttempts ?? 6,
      maxRateLimitWaits: options.maxRateLimitWaits ?? 50,
      acceptsRawBody: options.isRawBody ?? false,
    },
    {
      transport,
      limiter,
      slots: null,
      stop,
      random: options.random ?? Math.random,
      now: options.now ?? Date.now,
      sleep,
      watch: {
        rateLimited: (waitMs, _response) => options.onRetry?.({ reason: 'rate_limited', waitMs, attempt: 0 }),
        retrying: (verdict, waitMs, attempt) => options.onRetry?.({ reason: verdict.reason, waitMs, attempt }),
      },
    },
  );
  if (result.kind === 'answered') {
    result.done();
    return result.response;
  }
  if (result.kind === 'stopped' && result.response === null) throw stop.reason ?? new OaiBatchError('the call was stopped', 'interrupted');
  if (result.kind === 'failed' && result.transportError) throw result.transportError;
  const response = result.response as HttpResponse;
  if (result.verdict?.action === 'retry' && result.verdict.reason === 'invalid_response') {
    throw new InvalidResponseError(response.status, response.requestId, result.verdict.message);
  }
  throw APIError.generate(response.status, response.json, response.headers, response.requestId);
}

/** A limiter with no budgets: it only makes the next attempt wait out a 429's pause (through the call's own sleep). */
class PauseOnlyLimiter implements Limiter {
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #pauseMs = 0;
  #consecutive429s = 0;

  constructor(sleep: (ms: number, signal?: AbortSignal) => Promise<void>) {
    this.#sleep = sleep;
  }

  async acquire(_model: string, _tokens: number, signal?: AbortSignal): Promise<Grant> {
    const pauseMs = this.#pauseMs;
    this.#pauseMs = 0;
    if (pauseMs > 0) await this.#sleep(pauseMs, signal);
    return {} as Grant;
  }

  async observe(): Promise<void> {
    this.#consecutive429s = 0;
  }

  async penalise(_grant: Grant, waitMs: number | null): Promise<number> {
    this.#consecutive429s += 1;
    this.#pauseMs = waitMs ?? defaultRateLimitWaitMs(this.#consecutive429s);
    return this.#pauseMs;
  }

  release(): void {}

  async snapshot(): Promise<Record<string, never>> {
    return {};
  }

  async close(): Promise<void> {}
}
