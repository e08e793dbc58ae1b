// merge: the results, errors and summaries of an input's shards (or of any
// results files for it) as one run's (DESIGN.md §6).
//
// In:  the input, the parts (each a results file with its errors and summary
//      files, any of which may be missing), prices.
// Out: one results file (one success per custom_id), one errors file (final
//      failures without a success anywhere, and the input's bad lines), one
//      summary: usage and cost from the integer token totals of the kept
//      successes that were bought (CostLedger; cache hits and dedup count as
//      savings, as in a run), lines in no part counted `pending`; the exit
//      code (0 every line succeeded, 2 some failed, 3 some pending).
// Owns: de-duplication (a success seen twice is reported and counted once)
//      and the summary arithmetic across parts.
//
// Memory: the input's custom_ids and the successes seen as compact KeySets
// (16 bytes per key); records are streamed from part to output, never held.

import { rename, unlink } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { ConfigError, InputError } from '../shared/errors.js';
import { fingerprintFile } from '../shared/fingerprint.js';
import { KeySet } from '../shared/keyset.js';
import { endpointOfBody, isSuccessRecord } from '../shared/records.js';
import { INPUT_PROBLEM_CODES, type ErrorRecord, type LimitReport, type StoppedReason, type Summary } from '../shared/types.js';
import { modelOf, serviceTierOf, usageFromBody } from '../shared/usage.js';
import { CostLedger } from '../pricing/ledger.js';
import type { PriceTable } from '../pricing/prices.js';
import { isInputProblem } from '../pipeline/plan.js';
import { openInput, readLines } from '../pipeline/read.js';
import { exists } from '../pipeline/record/outputs.js';
import { openJsonlWriter, writeFileAtomic } from '../pipeline/record/writer.js';
import { RunStats, buildSummary } from '../pipeline/summarise.js';
import { planInput, type InputScanOptions } from './validate.js';

/** One part of the input's work: a results file and the errors and summary files written with it. */
export interface MergePart {
  results: string;
  /** null when the part has none (results files given without their siblings). */
  errors: string | null;
  summary: string | null;
}

export interface MergeOptions extends InputScanOptions {
  parts: MergePart[];
  /** Merged results, errors and summary files. */
  output: string;
  errors: string;
  summary: string;
  /** Replace merged files that exist (merge never appends). */
  overwrite: boolean;
  prices: PriceTable;
  now?: () => number;
}

export interface MergeResult {
  summary: Summary;
  /** 0 every line succeeded; 3 some lines are pending (in no part, or stopped); 2 some failed and none is pending. */
  exitCode: number;
  /** custom_ids that succeeded in more than one record: counted once. */
  duplicates: { count: number; examples: string[] };
  /** Success records whose custom_id is no request of the input (another input's file?): left out. */
  foreign: number;
  /** Part files that do not exist (their lines are pending). */
  missing: string[];
}

/** Results lines can carry large bodies: a line is read whole up to this size. */
const MAX_RECORD_BYTES = 1 << 30;
const PROBLEM_CODES: ReadonlySet<string> = new Set(INPUT_PROBLEM_CODES);

export async function mergeResults(options: MergeOptions): Promise<MergeResult> {
  if (options.input === '-') throw new ConfigError('merge needs the input file (not stdin): it counts the lines no part finished');
  if (options.parts.length === 0) throw new ConfigError('merge needs at least one results file (or --shards N)');
  await checkMergeOutputs(options);
  const now = options.now ?? Date.now;
  const warnings: string[] = [];

  // The input as `run` plans it: every line, the custom_ids of its requests, its bad lines.
  const requestIds = new KeySet();
  const problemLines = new Set<number>();
  let lines = 0;
  for await (const planned of planInput(options)) {
    lines += 1;
    if (isInputProblem(planned)) problemLines.add(planned.line);
    else requestIds.add(planned.customId);
  }
  const fingerprint = await fingerprintFile(options.input);

  const missing: string[] = [];
  const parts = await readPartSummaries(options.parts, missing);
  const timing = partTimes(parts.map((p) => p.summary), now());
  const succeeded = new KeySet();
  const failedIds = new KeySet();
  const problemsSeen = new Set<number>();
  const ledger = new CostLedger(options.prices);
  const stats = new RunStats(timing.startedAt, now);
  stats.lines = lines;
  const duplicates = { count: 0, examples: [] as string[] };
  let foreign = 0;
  let unreadable = 0;
  let isReusing = parts.some((p) => p.summary.cache !== undefined);

  const temporary = { results: `${options.output}.merge-${process.pid}.tmp`, errors: `${options.errors}.merge-${process.pid}.tmp` };
  const results = await openJsonlWriter(withGz(temporary.results, options.output), { append: false });
  const errors = await openJsonlWriter(withGz(temporary.errors, options.errors), { append: false });
  let isComplete = false;
  try {
    // Successes first, so that a failure in one part is dropped when another part succeeded.
    for (const part of options.parts) {
      if (!(await exists(part.results))) {
        missing.push(part.results);
        continue;
      }
      unreadable += await forEachRecord(part.results, async (record, text) => {
        if (!isSuccessRecord(record)) return;
        const id = record.custom_id;
        if (!requestIds.has(id)) {
          foreign += 1;
          return;
        }
        if (!succeeded.add(id)) {
          duplicates.count += 1;
          if (duplicates.examples.length < 10) duplicates.examples.push(id);
          return;
        }
        await results.writeRaw(text);
        stats.succeeded += 1;
        const body = record.response.body;
        const usage = usageFromBody(endpointOfBody(body), body);
        const model = modelOf(body);
        if (record.cache) {
          // Not bought (--cache, --dedup): what it would have cost is a saving, as a run counts it.
          isReusing = true;
          stats.countSaving(record.cache, usage && model ? ledger.lineCostUsd(model, usage, { batch: record.via === 'batch' }) : null, usage);
          return;
        }
        if (typeof record.latency_ms === 'number') stats.latency.record(record.latency_ms);
        if (usage && model) {
          ledger.add(model, usage, { serviceTier: serviceTierOf(body), batch: record.via === 'batch' });
          stats.billedTokens += usage.input_tokens + usage.output_tokens;
        } else if (model) {
          ledger.addWithoutUsage(model);
        }
      });
    }
    for (const part of options.parts) {
      if (part.errors === null) continue;
      if (!(await exists(part.errors))) {
        if (await exists(part.results)) missing.push(part.errors);
        continue;
      }
      unreadable += await forEachRecord(part.errors, async (value, text) => {
        const record = value as Partial<ErrorRecord>;
        if (typeof record.custom_id !== 'string' || typeof record.line !== 'number' || typeof record.error?.code !== 'string') return;
        if (PROBLEM_CODES.has(record.error.code)) {
          // A bad line is one line, whatever custom_id it names (a duplicate names one that may have succeeded).
          if (!problemLines.has(record.line) || problemsSeen.has(record.line)) return;
          problemsSeen.add(record.line);
          stats.inputProblems += 1;
        } else {
          if (!requestIds.has(record.custom_id) || succeeded.has(record.custom_id) || !failedIds.add(record.custom_id)) return;
        }
        stats.failed += 1;
        await errors.writeRaw(text);
      });
    }
    isComplete = true;
  } finally {
    await Promise.allSettled([results.close(), errors.close()]);
    if (!isComplete) await Promise.allSettled([unlink(results.path), unlink(errors.path)]);
  }
  await rename(results.path, options.output);
  await rename(errors.path, options.errors);

  if (duplicates.count > 0) {
    warnings.push(`${duplicates.count} success records repeated a custom_id that had already succeeded (counted once), e.g. ${duplicates.examples.slice(0, 3).join(', ')}`);
  }
  if (foreign > 0) warnings.push(`${foreign} success records name a custom_id that is no request of ${options.input}: left out (results of another input?)`);
  if (unreadable > 0) warnings.push(`${unreadable} lines of the parts were not readable JSON (a torn last line?) and were skipped`);
  for (const path of missing) warnings.push(`${path} does not exist: its lines are pending`);
  const changed = parts.filter((p) => p.summary.input?.fingerprint !== undefined && p.summary.input.fingerprint !== fingerprint).map((p) => p.path);
  if (changed.length > 0) warnings.push(`${options.input} changed since ${changed.join(', ')} was written: its records may point at other lines`);
  for (const p of parts) for (const warning of p.summary.warnings ?? []) warnings.push(`${p.path}: ${warning}`);

  // Attempts as the parts' last runs counted them (an earlier run's, before a resume, are not in any summary).
  for (const p of parts) {
    const a = p.summary.attempts;
    if (!a) continue;
    stats.attempts += a.total ?? 0;
    stats.rateLimited += a.rate_limited ?? 0;
    stats.serverErrors += a.server_errors ?? 0;
    stats.timeouts += a.timeouts ?? 0;
    stats.chargedTokens += ((p.summary.timing?.charged_tokens_per_minute ?? 0) * (p.summary.timing?.wall_seconds ?? 0)) / 60;
  }
  // Requests that ended after an attempt (so that retries = attempts beyond them).
  stats.sent = stats.succeeded + stats.failed - stats.inputProblems;

  const pending = Math.max(0, lines - stats.succeeded - stats.failed);
  const stoppedReason: StoppedReason | null = pending > 0 ? (parts.map((p) => p.summary.stopped_reason ?? null).find((r) => r !== null) ?? null) : null;
  const summary = buildSummary({
    stats,
    ledger,
    prices: options.prices,
    mode: parts.length > 0 && parts.every((p) => p.summary.mode === 'batch') ? 'batch' : 'online',
    input: { path: options.input, fingerprint },
    limits: {},
    stoppedReason,
    finished: true,
    now: timing.finishedAt,
    warnings,
    thresholds: {},
    isReusing,
  });
  summary.limits = lowestLimits(parts.map((p) => p.summary.limits ?? {}));
  await writeFileAtomic(options.summary, JSON.stringify(summary, null, 2) + '\n');
  return { summary, exitCode: pending > 0 ? 3 : stats.failed > 0 ? 2 : 0, duplicates, foreign, missing };
}

/** The merged files must not be any part's, nor the input; existing ones need --overwrite. */
async function checkMergeOutputs(options: MergeOptions): Promise<void> {
  const reads = [options.input, ...options.parts.flatMap((p) => [p.results, p.errors, p.summary])].filter((p): p is string => p !== null).map((p) => resolvePath(p));
  for (const path of [options.output, options.errors, options.summary]) {
    if (reads.includes(resolvePath(path))) throw new ConfigError(`the merged output ${path} is also an input of the merge; name the merged files with -o, --errors, --summary`);
  }
  if (options.overwrite) return;
  for (const path of [options.output, options.errors, options.summary]) {
    if (await exists(path)) throw new InputError(`${path} already exists: pass --overwrite to replace it with the merge`, 'results_exist');
  }
}

/** A temporary name that keeps the .gz ending (the writer compresses by name). */
function withGz(temporary: string, final: string): string {
  return /\.gz$/i.test(final) ? `${temporary}.gz` : temporary;
}

/** Calls `visit` with every JSON line of a file (.gz read compressed); resolves to the lines that did not parse. */
async function forEachRecord(path: string, visit: (record: unknown, text: string) => Promise<void>): Promise<number> {
  const source = await openInput(path);
  let unreadable = 0;
  try {
    for await (const raw of readLines(source.stream, MAX_RECORD_BYTES)) {
      if (raw.kind !== 'text') {
        unreadable += 1;
        continue;
      }
      let record: unknown;
      try {
        record = JSON.parse(raw.text);
      } catch {
        unreadable += 1;
        continue;
      }
      await visit(record, raw.text);
    }
  } finally {
    source.close();
  }
  return unreadable;
}

async function readPartSummaries(parts: MergePart[], missing: string[]): Promise<Array<{ path: string; summary: Partial<Summary> }>> {
  const out: Array<{ path: string; summary: Partial<Summary> }> = [];
  for (const part of parts) {
    if (part.summary === null) continue;
    if (!(await exists(part.summary))) {
      if (await exists(part.results)) missing.push(part.summary);
      continue;
    }
    const source = await openInput(part.summary);
    let text = '';
    try {
      for await (const chunk of source.stream as AsyncIterable<Buffer>) text += chunk.toString('utf8');
    } finally {
      source.close();
    }
    try {
      out.push({ path: part.summary, summary: JSON.parse(text) as Partial<Summary> });
    } catch {
      throw new InputError(`${part.summary} is not a summary (not JSON)`, 'input_unreadable');
    }
  }
  return out;
}

/** The span of the parts: the earliest start and the latest end (now when none ended). */
function partTimes(summaries: Array<Partial<Summary>>, now: number): { startedAt: number; finishedAt: number } {
  const starts = summaries.map((s) => Date.parse(s.timing?.started_at ?? '')).filter(Number.isFinite);
  const ends = summaries.map((s) => Date.parse(s.timing?.finished_at ?? '')).filter(Number.isFinite);
  const startedAt = starts.length > 0 ? Math.min(...starts) : now;
  return { startedAt, finishedAt: ends.length > 0 ? Math.max(startedAt, ...ends) : now };
}

/** Per model, the lowest budgets any part ran at. */
function lowestLimits(reports: Array<Record<string, LimitReport>>): Record<string, LimitReport> {
  const out: Record<string, LimitReport> = {};
  const lower = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));
  for (const report of reports) {
    for (const [model, limit] of Object.entries(report)) {
      const known = out[model];
      out[model] = known ? { rpm: lower(known.rpm, limit.rpm), tpm: lower(known.tpm, limit.tpm), source: known.source === limit.source ? known.source : 'mixed' } : { ...limit };
    }
  }
  return out;
}

