// runBatch: the pipeline composed — read → plan → limit → send → record → summarise.
//
// In:  RunOptions.  Out: the Summary and the exit code it implies.
// Owns only the joining: which stage feeds which, backpressure between them
// (a line is read only when fewer than `maxOutstanding` requests are between
// read and recorded, so memory stays O(concurrency)), and the run's clocks
// (the periodic fsync, summary and progress). Each stage is its own module.

import { CostLedger } from '../pricing/ledger.js';
import { WriteError } from '../shared/errors.js';
import type { RunEvent } from '../shared/events.js';
import { fingerprintFile } from '../shared/fingerprint.js';
import { lockFile } from '../shared/lock.js';
import type { KeySet } from '../shared/keyset.js';
import { recordIds } from '../shared/records.js';
import type { RequestItem, ResultRecord, Summary, Usage } from '../shared/types.js';
import { RateLimiter, type Limiter } from './limit.js';
import { SpendGuard } from './limit/spend-cap.js';
import { resolveRunOptions, type ResolvedRunOptions, type RunOptions } from './options.js';
import { createPlanContext, isInputProblem, planRecord } from './plan.js';
import { inShard } from './plan/shard.js';
import { countRecords, openInput, readRecords, type InputSource } from './read.js';
import { Recorder } from './record.js';
import { openReuse } from './reuse.js';
import { checkOutputs, exists, prepareResume } from './record/outputs.js';
import { closeWriters, openJsonlWriter, writeFileAtomic, type JsonlWriter } from './record/writer.js';
import { startClocks } from './run/clocks.js';
import { capSettings, refuseUnpricedModels, unpricedUnderCap } from './run/preflight.js';
import { RunStopping } from './run/stopping.js';
import { SendStage } from './send.js';
import { ConcurrencyTuner, INITIAL_CONCURRENCY } from './send/concurrency.js';
import { Slots } from './send/slots.js';
import { Reachability } from './send/reachability.js';
import { createTransport, describeTarget } from './send/transport.js';
import { RunStats, buildSummary, exitCodeOf } from './summarise.js';
import { progressOf } from './summarise/progress.js';

export interface RunResult {
  summary: Summary;
  exitCode: number;
}

export async function runBatch(options: RunOptions): Promise<RunResult> {
  const o = resolveRunOptions(options);
  await checkOutputs(o);
  // Two runs appending to one results file would pay twice and record duplicates.
  const unlock = await lockFile(o.output, 'results_locked');
  try {
    const source = await openInput(o.input, o.stdin);
    try {
      return await runPipeline(o, source);
    } finally {
      source.close();
    }
  } finally {
    await unlock();
  }
}

async function runPipeline(o: ResolvedRunOptions, source: InputSource): Promise<RunResult> {
  const now = Date.now;
  const stats = new RunStats(now(), now);
  const emit = (event: RunEvent): void => {
    stats.onEvent(event);
    o.onEvent?.(event);
  };
  const ledger = new CostLedger(o.prices);
  const warnings: string[] = [];
  // Opening a cache checks its file in a child process: started now, awaited when needed.
  const reusing = openReuse(o, warnings, now);
  const fingerprint = o.input !== '-' && source.sizeBytes !== null ? await fingerprintFile(o.input) : 'stdin';
  const onReused = (record: ResultRecord, usage: Usage | null, model: string | null): void => {
    const savedUsd = usage && model ? ledger.lineCostUsd(model, usage, { batch: record.via === 'batch' }) : null;
    stats.countSaving(record.cache ?? 'hit', savedUsd, usage);
  };
  const resume = o.resume && (await exists(o.output)) ? await prepareResume({ ...o, fingerprint, ledger, warnings, onReused }) : null;
  const done: KeySet | null = resume?.done ?? null;
  const earlierCostUsd = ledger.totals().cost_usd.total;
  const caps = capSettings(o, earlierCostUsd);
  if (caps.length > 0 && o.input !== '-') await refuseUnpricedModels(o, ledger, caps[0]!.flag);

  const stopping = new RunStopping({ drainTimeoutMs: o.drainTimeoutMs, emit });
  const limiter: Limiter = o.limiter ?? new RateLimiter({ rpm: o.rpm, tpm: o.tpm, headroom: o.headroom, store: o.budgetStore });
  const transport = createTransport({ ...o.transport, connections: Math.min(o.concurrency, 256) }, o.transportKind);
  const slots = new Slots(Math.min(o.concurrency, INITIAL_CONCURRENCY));
  const tuner = new ConcurrencyTuner(now());
  const spend =
    caps.length === 0
      ? null
      : new SpendGuard({
          caps,
          priceOf: (model) => ledger.priceOf(model),
          batchDiscount: o.prices.batch_discount,
          stop: stopping.stop,
          onReached: (reason, message) => stopping.request(reason, message),
        });
  const sender = new SendStage({
    transport,
    limiter,
    slots,
    tuner,
    spend,
    maxAttempts: o.maxAttempts,
    timeoutMs: o.timeoutMs,
    stop: stopping.stop,
    abandon: stopping.abandon,
    random: o.random,
    now,
    emit,
    reachability: new Reachability(),
    target: describeTarget(o.transport),
    requestStop: (reason, message) => stopping.request(reason, message),
  });
  const reuse = await reusing;
  const results: JsonlWriter = await openJsonlWriter(o.output, { append: resume !== null });
  const errors: JsonlWriter = await openJsonlWriter(o.errors, { append: false });
  const recorder = new Recorder({ results, errors, ledger, spend, nextId: recordIds(), emit });

  // A hard stop abandons the requests in flight: they stay pending.
  stopping.abandon.addEventListener('abort', () => void transport.destroy().catch(() => {}), { once: true });
  stopping.attach(o.signal, o.forceSignal);

  // The lines to do: counted beside the read (a native newline search), exact once the read reaches the end.
  let linesInInput: number | null = null;
  let isReadToEnd = false;
  // A shard's share of them is estimated (the hash spreads lines evenly) until its read ends.
  void countRecords(o.input).then((count) => (linesInInput ??= count !== null && o.shard ? Math.round(count / o.shard.count) : count), () => {});
  const linesToDo = (): number | null => {
    const lines = isReadToEnd ? stats.lines : linesInInput;
    return lines === null ? null : o.limit === undefined ? lines : Math.min(o.limit, lines);
  };
  let outstanding = 0;
  const tasks = new Set<Promise<void>>();
  const capacity: Array<() => void> = [];
  const progress = async (): Promise<ReturnType<typeof progressOf>> =>
    progressOf({
      now: now(),
      stats,
      linesToDo: linesToDo(),
      bytesRead: source.bytesRead(),
      bytesTotal: source.sizeBytes,
      inFlight: slots.held,
      queued: Math.max(0, outstanding - slots.held),
      costUsd: ledger.totals().cost_usd.total,
      concurrencyLimit: slots.limit,
      concurrencyBound: slots.waiting > 0 && slots.held >= o.concurrency,
      limits: await limiter.snapshot(),
    });
  let summaryWriting: Promise<unknown> = Promise.resolve();
  const writeSummary = async (finished: boolean): Promise<Summary> => {
    const summary = buildSummary({
      stats,
      ledger,
      prices: o.prices,
      mode: 'online',
      input: { path: o.inputLabel ?? o.input, fingerprint },
      limits: await limiter.snapshot(),
      stoppedReason: stopping.reason,
      finished,
      now: now(),
      warnings: [...warnings, ...sender.warnings(), ...(spend?.warnings() ?? []), ...(reuse?.warnings() ?? [])],
      thresholds: { errorRate: o.failOnErrorRate, rateLimitRate: o.failOnRateLimitRate },
      earlierCostUsd,
      isReusing: reuse !== null,
    });
    // Serialised: a periodic write must never land after the final one.
    summaryWriting = summaryWriting.catch(() => {}).then(() => writeFileAtomic(o.summary, JSON.stringify(summary, null, 2) + '\n'));
    await summaryWriting;
    return summary;
  };

  // An output file that refuses a write (a full disk), or a bug, stops the run; the error is surfaced at the end.
  let failure: unknown = null;
  const fail = (error: unknown): void => {
    failure ??= error;
    stopping.request(error instanceof WriteError ? 'write_failed' : 'interrupted', `stopping: ${(error as Error).message}`);
  };

  emit({ type: 'started', input: o.input, resumed: resume !== null, skippedAlready: resume?.succeeded ?? 0, at: new Date(stats.startedAt).toISOString() });
  await writeSummary(false);
  const timers = startClocks(o, { results, errors, slots, tuner, stats, now, fail, writeSummary, progress, emit });

  // read → plan → (skip what an earlier run finished) → send → record, with at most maxOutstanding in between.
  stopping.stop.addEventListener('abort', () => capacity.splice(0).forEach((wake) => wake()), { once: true });
  const launch = (item: RequestItem): void => {
    outstanding += 1;
    const task = (reuse ? reuse.reuse.handle(item, (i) => sender.send(i)) : sender.send(item))
      .then((result) => recorder.record(item, result))
      .catch(fail)
      .finally(() => {
        outstanding -= 1;
        tasks.delete(task);
        capacity.shift()?.();
      });
    tasks.add(task);
  };
  const skipIfDone = (item: RequestItem): boolean => {
    if (!done?.has(item.customId)) return false;
    stats.skipped += 1;
    stats.succeeded += 1;
    return true;
  };
  try {
    const context = createPlanContext(o.endpoint, o.maxLineBytes);
    let isCutShort = false;
    for await (const record of inShard(readRecords(source.stream, o.maxLineBytes), o.shard)) {
      if (o.limit !== undefined && stats.lines >= o.limit) break;
      if (stopping.abandon.aborted) {
        isCutShort = true;
        break;
      }
      stats.lines += 1;
      if (stopping.stop.aborted) {
        // Stopped: the rest of the file is only counted, so that `pending` says
        // how much is left (lines an earlier run finished still count as done).
        if (o.input === '-') {
          isCutShort = true;
          break;
        }
        if (done) {
          const planned = planRecord(record, context);
          if (!isInputProblem(planned)) skipIfDone(planned);
        }
        continue;
      }
      const planned = planRecord(record, context);
      if (isInputProblem(planned)) {
        await recorder.problem(planned);
        continue;
      }
      if (skipIfDone(planned)) continue;
      if (spend && ledger.priceOf(planned.model) === null) throw unpricedUnderCap([planned.model], caps[0]!.flag);
      // Requests read but not yet recorded: those in flight plus a small lead. Kept tight on
      // purpose: what waits here lives long enough to reach V8's old generation.
      while (outstanding >= slots.limit + 64 && !stopping.stop.aborted) await new Promise<void>((wake) => capacity.push(wake));
      if (stopping.stop.aborted) continue;
      launch(planned);
    }
    isReadToEnd = !isCutShort;
  } catch (error) {
    fail(error);
  }
  try {
    while (tasks.size > 0) await Promise.allSettled([...tasks]);
  } finally {
    for (const timer of timers) clearInterval(timer);
    stopping.detach();
    // A limiter passed in may be shared with other runs still going (compare): its owner closes it.
    if (!o.limiter) await limiter.close();
    await closeWriters(results, errors).catch(fail);
    await reuse?.close().catch((error: unknown) => warnings.push(`the response cache could not be closed cleanly: ${(error as Error).message}`));
    await transport.close().catch(() => {});
  }
  const summary = await writeSummary(true);
  if (failure !== null) throw failure;
  emit({ type: 'progress', progress: await progress() });
  emit({ type: 'finished', summary });
  return { summary, exitCode: exitCodeOf(summary) };
}
