// runBatch: the pipeline composed — read → plan → limit → send → record → summarise.
//
// In:  RunOptions.  Out: the Summary and the exit code it implies.
// Owns: the order of the stages, backpressure between them, stopping
// (interrupts, fatal answers, the budget cap), the periodic fsync, summary
// and progress ticks. Each stage is its own module; this file only joins them.
//
// Memory stays O(concurrency): a line is read only when fewer than
// `maxOutstanding` requests are between read and recorded.

import { setMaxListeners } from 'node:events';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { CostLedger } from '../pricing/ledger.js';
import { worstCaseCostUsd } from '../pricing/cost.js';
import { CostCap } from './budget.js';
import { INITIAL_CONCURRENCY, nextConcurrency } from './concurrency.js';
import { ConfigError, ConnectionError, TimeoutError } from './errors.js';
import type { EventListener, ProgressSnapshot } from './events.js';
import { fingerprintFile } from './fingerprint.js';
import { MemoryLimiter, RequestTooLargeError, type Grant, type Limiter } from './limiter.js';
import { resolveRunOptions, type ResolvedRunOptions, type RunOptions } from './options.js';
import { createPlanContext, isInputProblem, modelOfRecord, planRecord } from './plan.js';
import { openInput, readRecords, type InputSource } from './read.js';
import { openJsonlWriter, writeFileAtomic, type JsonlWriter } from './record.js';
import { checkOutputs, exists, prepareResume } from './outputs.js';
import { problemRecord, recordIds } from './records.js';
import type { ResumeIndex } from './resume.js';
import { MAX_RATE_LIMIT_WAIT_MS, classifyAttempt, retryDelayMs, type AttemptOutcome } from './retry.js';
import { RunStats, buildSummary, exitCodeOf } from './summary.js';
import { createTransport, type HttpResponse, type Transport } from './transport.js';
import type { Endpoint, ErrorRecord, InputProblem, RequestItem, StoppedReason, Summary, Usage } from './types.js';
import { modelOf, serviceTierOf, usageFromBody } from './usage.js';

export interface RunResult {
  summary: Summary;
  exitCode: number;
}

export async function runBatch(options: RunOptions): Promise<RunResult> {
  const resolved = resolveRunOptions(options);
  await checkOutputs(resolved);
  const source = await openInput(resolved.input, resolved.stdin);
  try {
    const run = new BatchRun(resolved, source);
    return await run.execute();
  } finally {
    source.close();
  }
}

const FATAL_REASONS: ReadonlySet<StoppedReason> = new Set(['auth_failed', 'quota_exhausted']);

class BatchRun {
  readonly #o: ResolvedRunOptions;
  readonly #source: InputSource;
  readonly #emit: EventListener;
  readonly #now = Date.now;
  readonly #stats: RunStats;
  readonly #ledger: CostLedger;
  readonly #limiter: Limiter;
  readonly #transport: Transport;
  readonly #queue: PQueue;
  readonly #cap: CostCap | null;
  readonly #warnings: string[] = [];
  /** Aborted when the run stops: queued work ends as pending. */
  readonly #stop = new AbortController();
  /** Aborted when in-flight requests must be abandoned (second signal, drain timeout). */
  readonly #hard = new AbortController();
  readonly #nextId = recordIds();
  #stoppedReason: StoppedReason | null = null;
  #fingerprint = 'stdin';
  #results!: JsonlWriter;
  #errors!: JsonlWriter;
  #outstanding = 0;
  #capacityWaiters: Array<() => void> = [];
  #tasks = new Set<Promise<void>>();
  #latencyEwmaMs = 0;
  #lastUtilisation!: EventLoopUtilization;
  #summaryWriting: Promise<void> = Promise.resolve();
  #bytesAtLastLine = 0;

  constructor(options: ResolvedRunOptions, source: InputSource) {
    this.#o = options;
    this.#source = source;
    this.#emit = options.onEvent ?? (() => {});
    this.#stats = new RunStats(this.#now());
    this.#ledger = new CostLedger(options.prices);
    this.#limiter = options.limiter ?? new MemoryLimiter({ rpm: options.rpm, tpm: options.tpm, headroom: options.headroom });
    this.#transport = createTransport(
      { ...options.transport, connections: Math.min(options.concurrency, 256) },
      options.transportKind,
    );
    this.#queue = new PQueue({ concurrency: Math.min(options.concurrency, INITIAL_CONCURRENCY) });
    this.#cap = options.maxCostUsd === undefined ? null : new CostCap(options.maxCostUsd);
    // Every waiting request listens on these: not a leak.
    setMaxListeners(0, this.#stop.signal, this.#hard.signal);
  }

  async execute(): Promise<RunResult> {
    const o = this.#o;
    if (o.input !== '-' && this.#source.sizeBytes !== null) this.#fingerprint = await fingerprintFile(o.input);
    let resume: ResumeIndex | null = null;
    if (o.resume && (await exists(o.output))) resume = await this.#prepareResume();
    this.#done = resume?.done ?? null;
    if (this.#cap && o.input !== '-') await this.#checkPricesBeforeSending();

    this.#results = await openJsonlWriter(o.output, { append: resume !== null });
    this.#errors = await openJsonlWriter(o.errors, { append: false });
    const onAbort = (): void => this.#requestStop('interrupted', 'interrupted: finishing requests in flight');
    const onForce = (): void => this.#hard.abort();
    // A hard stop abandons the requests in flight: they stay pending.
    this.#hard.signal.addEventListener('abort', () => void this.#transport.destroy().catch(() => {}), { once: true });
    o.signal?.addEventListener('abort', onAbort, { once: true });
    o.forceSignal?.addEventListener('abort', onForce, { once: true });
    if (o.signal?.aborted) onAbort();

    this.#emit({
      type: 'started',
      input: o.input,
      resumed: resume !== null,
      skippedAlready: resume?.succeeded ?? 0,
      at: new Date(this.#stats.startedAt).toISOString(),
    });
    await this.#writeSummary(false);
    const timers = this.#startTimers();
    let failure: unknown = null;
    try {
      await this.#readAndDispatch();
    } catch (error) {
      failure = error;
      this.#requestStop('interrupted', `stopping: ${(error as Error).message}`);
    }
    try {
      await this.#drain();
    } catch (error) {
      failure ??= error;
    } finally {
      for (const timer of timers) clearInterval(timer);
      o.signal?.removeEventListener('abort', onAbort);
      o.forceSignal?.removeEventListener('abort', onForce);
      // A limiter passed in may be shared with other runs still going (compare): its owner closes it.
      if (!o.limiter) this.#limiter.close();
      await Promise.allSettled([this.#results.close(), this.#errors.close()]);
      await this.#transport.close().catch(() => {});
    }
    const summary = await this.#writeSummary(true);
    if (failure !== null) throw failure;
    this.#emit({ type: 'progress', progress: this.#progress() });
    this.#emit({ type: 'finished', summary });
    return { summary, exitCode: exitCodeOf(summary) };
  }

  #prepareResume(): Promise<ResumeIndex> {
    return prepareResume({ ...this.#o, fingerprint: this.#fingerprint, ledger: this.#ledger, warnings: this.#warnings });
  }

  /** Under --max-cost, every model must have a price before anything is sent. */
  async #checkPricesBeforeSending(): Promise<void> {
    const source = await openInput(this.#o.input);
    const unpriced = new Set<string>();
    try {
      // Only the model of each line matters here: no full planning (the charge tokenizes the prompt).
      for await (const record of readRecords(source.stream, this.#o.maxLineBytes)) {
        const model = modelOfRecord(record);
        if (model !== null && this.#ledger.priceOf(model) === null) unpriced.add(model);
      }
    } finally {
      source.close();
    }
    if (unpriced.size > 0) {
      throw new ConfigError(
        `--max-cost needs a price for every model, and ${[...unpriced].sort().join(', ')} has none: add it with --prices FILE`,
      );
    }
  }

  /**
   * Requests read but not yet recorded: those in flight plus a small lead, so
   * the next request is ready when a slot frees. Kept tight on purpose: what
   * waits here lives long enough to reach V8's old generation.
   */
  #maxOutstanding(): number {
    return this.#queue.concurrency + 64;
  }

  async #readAndDispatch(): Promise<void> {
    const o = this.#o;
    const context = createPlanContext(o.endpoint, o.maxLineBytes);
    const records = readRecords(this.#source.stream, o.maxLineBytes);
    let counting = false;
    for await (const record of records) {
      if (o.limit !== undefined && this.#stats.lines >= o.limit) break;
      if (this.#hard.signal.aborted) break;
      this.#stats.lines += 1;
      this.#bytesAtLastLine = this.#source.bytesRead();
      if (counting || this.#stop.signal.aborted) {
        // Stopped: the rest of the file is only counted, so that `pending` says
        // how much is left (lines an earlier run finished still count as done).
        counting = true;
        if (o.input === '-') break;
        if (this.#done) {
          const planned = planRecord(record, context);
          if (!isInputProblem(planned)) this.#skipIfDone(planned);
        }
        continue;
      }
      const planned = planRecord(record, context);
      if (isInputProblem(planned)) {
        await this.#recordProblem(planned);
        continue;
      }
      if (this.#skipIfDone(planned)) continue;
      if (this.#cap && this.#ledger.priceOf(planned.model) === null) {
        throw new ConfigError(`--max-cost needs a price for every model, and ${planned.model} has none: add it with --prices FILE`);
      }
      while (this.#outstanding >= this.#maxOutstanding() && !this.#stop.signal.aborted) {
        await new Promise<void>((resolve) => this.#capacityWaiters.push(resolve));
      }
      if (this.#stop.signal.aborted) {
        counting = true;
        continue;
      }
      this.#launch(planned);
    }
  }

  #done: ResumeIndex['done'] | null = null;

  #skipIfDone(item: RequestItem): boolean {
    if (!this.#done?.has(item.customId)) return false;
    this.#stats.skipped += 1;
    this.#stats.succeeded += 1;
    return true;
  }

  #launch(item: RequestItem): void {
    this.#outstanding += 1;
    const task = this.#process(item)
      .catch((error: unknown) => this.#fail(error))
      .finally(() => {
        this.#outstanding -= 1;
        this.#tasks.delete(task);
        const waiter = this.#capacityWaiters.shift();
        waiter?.();
      });
    this.#tasks.add(task);
  }

  /** An unexpected error inside a task (disk full, a bug): stop the run and surface it. */
  #taskError: unknown = null;
  #fail(error: unknown): void {
    if (this.#taskError === null) this.#taskError = error;
    this.#requestStop('interrupted', `stopping: ${(error as Error).message}`);
  }

  async #drain(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    if (this.#taskError !== null) throw this.#taskError;
  }

  #requestStop(reason: StoppedReason, message: string): void {
    const current = this.#stoppedReason;
    if (current === null || (FATAL_REASONS.has(reason) && !FATAL_REASONS.has(current))) this.#stoppedReason = reason;
    if (this.#stop.signal.aborted) return;
    this.#emit({ type: 'stopping', reason, message });
    this.#stop.abort(new Error(message));
    for (const wake of this.#capacityWaiters.splice(0)) wake();
    const timer = setTimeout(() => this.#hard.abort(), this.#o.drainTimeoutMs);
    timer.unref();
  }

  async #process(item: RequestItem): Promise<void> {
    const reservation = { usd: 0 };
    if (this.#cap) {
      const reserved = await this.#reserve(item);
      if (reserved === null) return; // the cap is reached: pending
      reservation.usd = reserved;
    }
    try {
      await this.#attemptUntilDone(item, reservation);
    } finally {
      if (reservation.usd > 0) this.#cap?.release(reservation.usd);
    }
  }

  /**
   * An attempt that timed out or lost its connection may still have been
   * answered (and billed) by the server. Under --max-cost its worst case is
   * counted as spent, and the retry reserves afresh: the cap stays a hard one.
   * false = the cap is reached (the request stays pending).
   */
  async #chargeAmbiguousAttempt(item: RequestItem, reservation: { usd: number }, message: string): Promise<boolean> {
    const cap = this.#cap;
    if (!cap || /^ECONNREFUSED/.test(message)) return true; // never reached the server
    cap.settle(reservation.usd, reservation.usd);
    reservation.usd = 0;
    this.#ambiguousAttempts += 1;
    const again = await this.#reserve(item);
    if (again === null) return false;
    reservation.usd = again;
    return true;
  }

  #ambiguousAttempts = 0;

  /** Reserves the request's worst-case cost, waiting for in-flight reservations to settle if needed. null = stop. */
  async #reserve(item: RequestItem): Promise<number | null> {
    const cap = this.#cap as CostCap;
    const resolved = this.#ledger.priceOf(item.model);
    if (!resolved) return null;
    const tier = typeof item.body.service_tier === 'string' ? item.body.service_tier : null;
    if (item.charge.maxOutputTokens === null) this.#capWarnedNoLimit = true;
    const worst = worstCaseCostUsd(item.charge, resolved.price, {
      batchDiscount: this.#o.prices.batch_discount,
      serviceTier: tier,
    });
    for (;;) {
      if (this.#stop.signal.aborted) return null;
      const result = cap.reserve(worst);
      if (result === 'ok') return worst;
      if (result === 'full') {
        this.#requestStop('max_cost', `--max-cost ${cap.capUsd} reached: stopping before the spend could pass it`);
        return null;
      }
      await Promise.race([cap.changed(), abortPromise(this.#stop.signal)]);
    }
  }

  /** Sends until success, a final failure or a stop; settles the cost reservation on success. */
  async #attemptUntilDone(item: RequestItem, reservation: { usd: number }): Promise<void> {
    const o = this.#o;
    let spent = 0; // attempts spent by retryable failures
    let attempts = 0; // every HTTP attempt
    const bodyText = JSON.stringify(item.body);
    for (;;) {
      if (this.#stop.signal.aborted) return;
      let grant: Grant;
      try {
        grant = await this.#limiter.acquire(item.model, item.charge.total, this.#stop.signal);
      } catch (error) {
        if (error instanceof RequestTooLargeError) {
          await this.#recordFailure(item, null, error.code, error.message, attempts, 0);
          return;
        }
        return; // stopped while waiting: pending
      }
      if (this.#stop.signal.aborted) {
        // Granted in the same tick the run stopped (a 401 elsewhere, an interrupt): send nothing more.
        this.#limiter.release(grant);
        return;
      }
      attempts += 1;
      this.#stats.attempts += 1;
      if (attempts === 1) this.#stats.sent += 1;
      this.#stats.chargedTokens += item.charge.total;
      this.#stats.chargedWindow.add(this.#now(), item.charge.total);
      this.#emit({ type: 'request_started', customId: item.customId, line: item.line, model: item.model, endpoint: item.url, attempt: attempts });

      const sent = await this.#sendAttempt(item, bodyText);
      if (sent === null) {
        this.#limiter.release(grant);
        return; // abandoned in flight: pending
      }
      const { outcome, latencyMs, releaseSlot } = sent;
      if (outcome.kind === 'error') this.#limiter.release(grant);
      try {
        const response = outcome.kind === 'response' ? outcome.response : null;
        const verdict = classifyAttempt(outcome, this.#now());
        this.#emit({
          type: 'attempt',
          customId: item.customId,
          model: item.model,
          endpoint: item.url,
          code: response ? String(response.status) : outcome.kind === 'error' ? outcome.error.code : 'error',
          latencyMs,
          requestId: response?.requestId ?? null,
        });

        if (verdict.action === 'rate_limited' && response) {
          this.#stats.rateLimited += 1;
          const pauseMs = this.#limiter.penalise(grant, verdict.waitMs, response.headers);
          this.#limiter.release(grant);
          this.#emit({
            type: 'rate_limited',
            customId: item.customId,
            model: item.model,
            waitMs: pauseMs,
            pausedUntil: new Date(this.#now() + pauseMs).toISOString(),
            requestId: response.requestId,
          });
          if (pauseMs > MAX_RATE_LIMIT_WAIT_MS) {
            this.#requestStop('rate_limit_wait', `the server asked for a pause of ${Math.round(pauseMs / 1000)} s on ${item.model}: stopping; --resume later`);
            return;
          }
          continue; // no attempt spent
        }
        if (verdict.action === 'stop') {
          // Stop before the limiter hands out more grants on the strength of this answer.
          this.#requestStop(verdict.reason, verdict.message);
          this.#limiter.release(grant);
          return;
        }
        if (response) {
          this.#limiter.observe(grant, response.headers);
          this.#limiter.release(grant);
        }

        switch (verdict.action) {
          case 'success':
            await this.#recordSuccess(item, response as HttpResponse, attempts, latencyMs, reservation.usd);
            reservation.usd = 0;
            return;
          case 'retry': {
            if (verdict.reason === 'server_error') this.#stats.serverErrors += 1;
            if (verdict.reason === 'timeout') this.#stats.timeouts += 1;
            spent += 1;
            if (spent >= o.maxAttempts) {
              await this.#recordFailure(item, response, verdict.code, verdict.message, attempts, latencyMs);
              return;
            }
            const waitMs = retryDelayMs(spent, verdict.serverDelayMs, o.random);
            this.#emit({
              type: 'retry',
              customId: item.customId,
              line: item.line,
              model: item.model,
              reason: verdict.reason,
              code: verdict.code,
              waitMs,
              attempt: attempts + 1,
              requestId: response?.requestId ?? null,
            });
            releaseSlot();
            if (verdict.reason === 'timeout' || verdict.reason === 'connection_error') {
              if (!(await this.#chargeAmbiguousAttempt(item, reservation, verdict.message))) return;
            }
            try {
              await sleep(waitMs, undefined, { signal: this.#stop.signal });
            } catch {
              return; // stopped while waiting: pending
            }
            continue;
          }
          case 'final':
            await this.#recordFailure(item, response, verdict.code, verdict.message, attempts, latencyMs);
            return;
          case 'rate_limited':
            return; // handled above (a 429 always has a response)
        }
      } finally {
        releaseSlot();
      }
    }
  }

  /**
   * One HTTP attempt in a concurrency slot. The slot is held until the caller
   * releases it: after a success that is once the answer is recorded, so that
   * answers received but not yet on disk never exceed --concurrency (a kill
   * then pays twice for at most that many). null = abandoned (hard stop).
   */
  async #sendAttempt(
    item: RequestItem,
    bodyText: string,
  ): Promise<{ outcome: AttemptOutcome; latencyMs: number; releaseSlot: () => void } | null> {
    let releaseSlot!: () => void;
    const held = new Promise<void>((resolve) => (releaseSlot = resolve));
    let startedAt = this.#now();
    let outcome: AttemptOutcome;
    try {
      const response = await new Promise<HttpResponse>((resolve, reject) => {
        this.#queue
          .add(async () => {
            // Latency counts from the moment a slot is free and the request leaves.
            startedAt = this.#now();
            try {
              resolve(
                await this.#transport.request({
                  method: 'POST',
                  path: item.url.replace(/^\/v1/, ''),
                  bodyText,
                  timeoutMs: this.#o.timeoutMs,
                }),
              );
            } catch (error) {
              reject(error);
              return;
            }
            await held;
          })
          .catch(reject);
      });
      outcome = { kind: 'response', response };
    } catch (error) {
      releaseSlot();
      if (this.#hard.signal.aborted) return null; // destroyed in flight by a hard stop
      if (error instanceof ConnectionError || error instanceof TimeoutError) outcome = { kind: 'error', error };
      else throw error;
    }
    return { outcome, latencyMs: this.#now() - startedAt, releaseSlot };
  }

  async #recordSuccess(item: RequestItem, response: HttpResponse, attempts: number, latencyMs: number, reservedUsd: number): Promise<void> {
    const body = response.json;
    const usage = usageFromBody(item.url, body);
    const model = modelOf(body) ?? item.model;
    const options = { serviceTier: serviceTierOf(body) };
    let costUsd: number | null = null;
    if (usage) {
      this.#ledger.add(model, usage, options);
      costUsd = this.#ledger.lineCostUsd(model, usage, options);
      const billed = usage.input_tokens + usage.output_tokens;
      this.#stats.billedTokens += billed;
      this.#stats.tokensWindow.add(this.#now(), billed);
    }
    if (this.#cap) this.#cap.settle(reservedUsd, costUsd ?? 0);
    this.#stats.succeeded += 1;
    this.#stats.requestsWindow.add(this.#now(), 1);
    this.#stats.latency.record(latencyMs);
    this.#latencyEwmaMs = this.#latencyEwmaMs === 0 ? latencyMs : this.#latencyEwmaMs * 0.9 + latencyMs * 0.1;
    await this.#results.writeRaw(serializeResult(this.#nextId(), item, response, attempts, latencyMs, costUsd));
    this.#emitFinished(item, 'succeeded', response, null, attempts, latencyMs, usage, costUsd);
  }

  /** `latencyMs`: of the last attempt (0 when nothing was sent). */
  async #recordFailure(
    item: RequestItem,
    response: HttpResponse | null,
    code: string,
    message: string,
    attempts: number,
    latencyMs: number,
  ): Promise<void> {
    this.#stats.failed += 1;
    if (attempts === 0) this.#stats.failedUnsent += 1;
    this.#stats.requestsWindow.add(this.#now(), 1);
    const record: ErrorRecord = {
      id: this.#nextId(),
      custom_id: item.customId,
      line: item.line,
      response: response ? { status_code: response.status, request_id: response.requestId, body: response.json ?? response.text } : null,
      error: { code, message },
      attempts,
    };
    if (item.metadata !== undefined) record.metadata = item.metadata;
    await this.#errors.write(record);
    this.#emitFinished(item, 'failed', response, code, attempts, latencyMs, null, null);
  }

  async #recordProblem(problem: InputProblem): Promise<void> {
    this.#stats.failed += 1;
    this.#stats.inputProblems += 1;
    const record = problemRecord(problem, this.#nextId());
    await this.#errors.write(record);
    this.#emit({ type: 'input_problem', line: problem.line, customId: problem.customId, code: problem.code, message: problem.message });
  }

  #emitFinished(
    item: RequestItem,
    status: 'succeeded' | 'failed',
    response: HttpResponse | null,
    code: string | null,
    attempts: number,
    latencyMs: number,
    usage: Usage | null,
    costUsd: number | null,
  ): void {
    this.#emit({
      type: 'request_finished',
      customId: item.customId,
      line: item.line,
      model: item.model,
      endpoint: item.url,
      status,
      httpStatus: response?.status ?? null,
      code,
      attempts,
      latencyMs,
      usage,
      costUsd,
      requestId: response?.requestId ?? null,
      body: response?.json,
    });
  }

  #startTimers(): NodeJS.Timeout[] {
    const o = this.#o;
    this.#lastUtilisation = performance.eventLoopUtilization();
    let syncing = false;
    const sync = setInterval(() => {
      if (syncing) return;
      syncing = true;
      Promise.all([this.#results.sync(), this.#errors.sync()])
        .catch((error: unknown) => this.#fail(error))
        .finally(() => (syncing = false));
    }, o.syncIntervalMs);
    const summary = setInterval(() => {
      this.#writeSummary(false).catch((error: unknown) => this.#fail(error));
    }, o.summaryIntervalMs);
    let lastTick = this.#now();
    const progress = setInterval(() => {
      const now = this.#now();
      if (this.#queue.size > 0 && this.#queue.pending >= o.concurrency) this.#stats.concurrencyBoundMs += now - lastTick;
      lastTick = now;
      this.#adaptConcurrency();
      this.#emit({ type: 'progress', progress: this.#progress() });
    }, o.progressIntervalMs);
    return [sync, summary, progress];
  }

  /** Requests in flight: what the budgets need at the observed latency, less while this process is the bottleneck (concurrency.ts). */
  #adaptConcurrency(): void {
    const current = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(current, this.#lastUtilisation);
    this.#lastUtilisation = current;
    let budgetRatePerMs: number | null = 0;
    for (const state of Object.values(this.#limiter.snapshot())) {
      if (state.rpm === null) budgetRatePerMs = null;
      else if (budgetRatePerMs !== null) budgetRatePerMs += state.rpm / 60_000;
    }
    this.#queue.concurrency = nextConcurrency({
      current: this.#queue.concurrency,
      cap: this.#o.concurrency,
      budgetRatePerMs,
      latencyMs: this.#latencyEwmaMs,
      utilisation: elu.utilization,
    });
  }

  #progress(): ProgressSnapshot {
    const now = this.#now();
    const s = this.#stats;
    const size = this.#source.sizeBytes;
    const done = s.succeeded + s.failed;
    const readShare = size ? Math.min(1, this.#bytesAtLastLine / size) : null;
    const fraction = readShare === null ? null : s.lines > 0 ? readShare * (done / s.lines) : 0;
    const elapsedSeconds = (now - s.startedAt) / 1000;
    const doneThisRun = done - s.skipped;
    const fractionThisRun = fraction === null ? null : fraction - (s.lines > 0 ? readShare! * (s.skipped / s.lines) : 0);
    const etaSeconds =
      fraction !== null && fractionThisRun !== null && fractionThisRun > 0 && doneThisRun > 0
        ? (elapsedSeconds * (1 - fraction)) / fractionThisRun
        : null;
    const limits = this.#limiter.snapshot();
    return {
      elapsedSeconds,
      bytesRead: this.#source.bytesRead(),
      bytesTotal: size,
      fraction,
      etaSeconds,
      linesRead: s.lines,
      succeeded: s.succeeded,
      failed: s.failed,
      skipped: s.skipped,
      inFlight: this.#queue.pending,
      queued: Math.max(0, this.#outstanding - this.#queue.pending),
      retries: s.retries,
      rateLimited: s.rateLimited,
      costUsd: this.#ledger.totals().cost_usd.total,
      requestsPerMinute: s.requestsWindow.perMinute(now),
      tokensPerMinute: s.tokensWindow.perMinute(now),
      chargedTokensPerMinute: s.chargedWindow.perMinute(now),
      concurrencyLimit: this.#queue.concurrency,
      concurrencyBound: this.#queue.size > 0 && this.#queue.pending >= this.#o.concurrency,
      limits,
    };
  }

  #writeSummary(finished: boolean): Promise<Summary> {
    const summary = buildSummary({
      stats: this.#stats,
      ledger: this.#ledger,
      prices: this.#o.prices,
      mode: 'online',
      input: { path: this.#o.inputLabel ?? this.#o.input, fingerprint: this.#fingerprint },
      limits: this.#limiter.snapshot(),
      stoppedReason: this.#stoppedReason,
      finished,
      now: this.#now(),
      warnings: [...this.#warnings, ...this.#capWarning()],
      thresholds: { errorRate: this.#o.failOnErrorRate, rateLimitRate: this.#o.failOnRateLimitRate },
    });
    const text = JSON.stringify(summary, null, 2) + '\n';
    // Serialise writes: a periodic write must never land after the final one.
    this.#summaryWriting = this.#summaryWriting.catch(() => {}).then(() => writeFileAtomic(this.#o.summary, text));
    return this.#summaryWriting.then(() => summary);
  }

  #capWarnedNoLimit = false;
  #capWarning(): string[] {
    const warnings: string[] = [];
    if (this.#capWarnedNoLimit) warnings.push('some requests set no output limit: --max-cost reserved the default allowance, so the cap is an estimate');
    if (this.#ambiguousAttempts > 0) {
      warnings.push(
        `${this.#ambiguousAttempts} attempts timed out or lost their connection and may have been billed: --max-cost counted their worst case as spent`,
      );
    }
    return warnings;
  }

}

/**
 * A result line, built around the response body's own JSON text so the body
 * is not serialised a second time (it was valid JSON: we parsed it). A body
 * with raw line breaks (pretty-printed) is re-serialised to keep one line.
 */
function serializeResult(
  id: string,
  item: RequestItem,
  response: HttpResponse,
  attempts: number,
  latencyMs: number,
  costUsd: number | null,
): string {
  const bodyText = /[\r\n\u2028\u2029]/.test(response.text) ? JSON.stringify(response.json) : response.text.trim();
  let line =
    `{"id":${JSON.stringify(id)},"custom_id":${JSON.stringify(item.customId)},` +
    `"response":{"status_code":${response.status},"request_id":${JSON.stringify(response.requestId)},"body":${bodyText}},` +
    `"error":null,"line":${item.line},"attempts":${attempts},"latency_ms":${Math.round(latencyMs)},"cost_usd":${costUsd === null ? 'null' : Number(costUsd.toPrecision(12))}`;
  if (item.metadata !== undefined) line += `,"metadata":${JSON.stringify(item.metadata)}`;
  return line + '}';
}

function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export type { Endpoint };
