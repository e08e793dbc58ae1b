// batch download: merge the Batch API's output and error files into the same
// results, errors and summary files `run` writes.
//
// In:  DownloadOptions, a BatchApi.  Out: results lines (kept `batch_req_…`
//      ids, `"via": "batch"`, cost at the batch rate), error records, the
//      summary with mode "batch"; the exit code it implies.
// Owns the join of answers to input lines: the input is streamed once and
// only what the answers need is held (per custom_id of an ended part: line,
// metadata, part, index in the part); each output file is then downloaded to
// a temporary file and read line by line. Successes already in the results
// file are never appended again.
//
// An answer whose part ended without one becomes an error record:
// batch_failed / batch_expired / batch_cancelled (or the validation error the
// API named for its line), so `run --resume` afterwards sends exactly those.

import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, errorObjectOf } from '../shared/errors.js';
import { fingerprintFile } from '../shared/fingerprint.js';
import { readLines } from '../pipeline/read.js';
import type { KeySet } from '../shared/keyset.js';
import { closeWriters, openJsonlWriter, writeFileAtomic, type JsonlWriter } from '../pipeline/record/writer.js';
import { lockFile } from '../shared/lock.js';
import { cacheKey, openResponseCache, type ResponseCache } from '../stores/response-cache.js';
import { randomBytes } from 'node:crypto';
import { checkOutputs, exists, prepareResume } from '../pipeline/record/outputs.js';
import type { ResumeIndex } from '../pipeline/record/resume.js';
import { RunStats, buildSummary, exitCodeOf } from '../pipeline/summarise.js';
import type { ErrorRecord, ResponseRecord, ResultRecord, Summary } from '../shared/types.js';
import { modelOf, serviceTierOf, usageFromBody } from '../shared/usage.js';
import { CostLedger } from '../pricing/ledger.js';
import type { PriceTable } from '../pricing/prices.js';
import type { BatchApi, BatchErrorData } from './api.js';
import { readManifest, type Manifest, type ManifestPart } from './manifest.js';
import { BatchSession, isPartEnded } from './session.js';
import { checkManifestMatches, checkSameParts, limitsOf } from './submit.js';
import { splitInput } from './split.js';
import { LineRanges } from './line-ranges.js';
import { problemRecord, recordIds } from '../shared/records.js';

export interface DownloadOptions {
  input: string;
  manifestPath: string;
  /** Results file (default `<input>.results.jsonl`). */
  output: string;
  /** Errors file, rewritten: the input's bad lines and every request that failed in the batches. */
  errors: string;
  summary: string;
  /** Append to an existing results file, skipping custom_ids that already succeeded there. */
  resume: boolean;
  /** Replace an existing results file. */
  overwrite: boolean;
  /** Resume even though a `line-N` keyed input changed since the results file was written. */
  force: boolean;
  prices: PriceTable;
  /** The API base in use; must be the manifest's. */
  baseUrl: string;
  now?: () => number;
  /** Store each answer in the response cache at this path (--cache), at its batch price; a cache that cannot be used is a warning. */
  cachePath?: string | undefined;
}

export interface DownloadResult {
  summary: Summary;
  exitCode: number;
  /** Parts that have not ended yet; their requests are `pending`. */
  pendingParts: number;
}

/** What an answer needs from its input line. */
interface Needed {
  line: number;
  metadata: unknown;
  part: number;
  /** 1-based position in its part's file (the `line` of the API's validation errors). */
  index: number;
  /** The request's response-cache key (with --cache). */
  cacheKey: string | undefined;
}

export async function downloadResults(api: BatchApi, options: DownloadOptions): Promise<DownloadResult> {
  const now = options.now ?? Date.now;
  const manifest = await readManifest(options.manifestPath);
  if (!manifest) {
    throw new InputError(`no batch manifest at ${options.manifestPath}: submit the input first with \`oai-batch batch submit ${options.input}\``, 'no_manifest');
  }
  const fingerprint = await fingerprintFile(options.input).catch((error: unknown) => {
    throw new InputError(`cannot read input ${options.input}: ${(error as Error).message}`, 'input_unreadable', { cause: error });
  });
  await checkManifestMatches(manifest, options.manifestPath, options.input, fingerprint, options.baseUrl);
  await checkOutputs({ ...options, protect: [options.manifestPath] });
  // `run` may be appending to the same results file: one writer at a time.
  const unlock = await lockFile(options.output, 'results_locked');
  try {
    return await download(options, api, manifest, fingerprint, now);
  } finally {
    await unlock();
  }
}

async function download(
  options: DownloadOptions,
  api: BatchApi,
  manifest: Manifest,
  fingerprint: string,
  now: () => number,
): Promise<DownloadResult> {
  const session = new BatchSession(options.manifestPath, manifest, api);
  await session.refresh();
  const ended = new Map<number, ManifestPart>();
  for (const part of manifest.parts) if (isPartEnded(part)) ended.set(part.part, part);

  const span = batchSpanMs(manifest.parts);
  const stats = new RunStats(span.createdMs ?? (Date.parse(manifest.created_at) || now()));
  const ledger = new CostLedger(options.prices);
  const warnings: string[] = [];
  let resume: ResumeIndex | null = null;
  if (options.resume && (await exists(options.output))) {
    resume = await prepareResume({ ...options, fingerprint, ledger, warnings });
  }
  const done: KeySet | null = resume?.done ?? null;
  const earlierCostUsd = ledger.totals().cost_usd.total;

  const nextId = recordIds();
  const cache = await openCache(options.cachePath, warnings);
  const results = await openJsonlWriter(options.output, { append: resume !== null });
  const errors = await openJsonlWriter(options.errors, { append: false });
  try {
    // 1. The input, once: bad lines to the errors file; what ended parts' answers need, by custom_id.
    const needed = new Map<string, Needed>();
    const positions = new Map<number, number>();
    // Lines the submit left out (they had succeeded before it): the same lines, so the parts match.
    const leftOut = manifest.skipped ? new LineRanges(manifest.skipped.lines) : null;
    let leftOutMissing = 0;
    const split = await splitInput({
      input: options.input,
      endpoint: manifest.endpoint,
      maxLineBytes: manifest.max_line_bytes,
      limits: limitsOf(manifest),
      onProblem: async (problem) => {
        stats.failed += 1;
        stats.inputProblems += 1;
        await errors.write(problemRecord(problem, nextId()));
      },
      onItem: (item, part) => {
        const index = (positions.get(part.part) ?? 0) + 1;
        positions.set(part.part, index);
        if (done?.has(item.customId)) {
          stats.skipped += 1;
          stats.succeeded += 1;
        } else if (ended.has(part.part)) {
          needed.set(item.customId, {
            line: item.line,
            metadata: item.metadata,
            part: part.part,
            index,
            cacheKey: cache ? cacheKey(item.url, item.body) : undefined,
          });
        }
      },
      skip: (item) => leftOut?.has(item.line) ?? false,
      onSkipped: (item) => {
        if (done?.has(item.customId)) {
          stats.skipped += 1;
          stats.succeeded += 1;
        } else {
          leftOutMissing += 1; // pending: its success is not in this results file
        }
      },
    });
    if (leftOutMissing > 0) {
      warnings.push(
        `${leftOutMissing} line(s) were not submitted because ${manifest.skipped?.results} held their success then, ` +
          `but ${options.output} holds none for them now: they are pending, and \`oai-batch run ${options.input} --resume\` sends them`,
      );
    }
    checkSameParts(manifest, split.parts, options.manifestPath);
    stats.lines = split.lines;

    // 2. Each ended part's output and error files, one file in memory at a time.
    const merger = new AnswerMerger(results, errors, needed, ledger, stats, cache, now);
    const folder = await mkdtemp(join(tmpdir(), 'oai-batch-download-'));
    try {
      for (const part of ended.values()) {
        for (const fileId of [part.output_file_id, part.error_file_id]) {
          if (fileId === null) continue;
          const path = join(folder, `${fileId}.jsonl`);
          await api.downloadFile(fileId, path);
          await merger.mergeFile(path, part);
          await rm(path, { force: true });
        }
      }
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
    if (merger.unknownLines > 0) warnings.push(`${merger.unknownLines} answer lines matched no request of the input and were ignored`);

    // 3. Requests of ended parts that got no answer at all.
    for (const [customId, entry] of needed) {
      const part = ended.get(entry.part) as ManifestPart;
      const error = unansweredError(part, entry.index);
      const record: ErrorRecord = { id: nextId(), custom_id: customId, line: entry.line, response: null, error, attempts: 0 };
      if (entry.metadata !== undefined) record.metadata = entry.metadata;
      record.via = 'batch';
      await errors.write(record);
      stats.failed += 1;
    }
  } finally {
    await closeWriters(results, errors);
    await cache?.store.close();
  }

  for (const part of manifest.parts) {
    if (part.state !== 'submitted') continue;
    if (part.status === 'failed') warnings.push(`part ${part.part} (${part.batch_id}) failed: ${describeErrors(part.errors)}`);
    if (part.status === 'expired') warnings.push(`part ${part.part} (${part.batch_id}) expired before every request ran (24 h window)`);
  }
  const pendingParts = manifest.parts.filter((part) => !isPartEnded(part));
  if (pendingParts.length > 0) {
    const requests = pendingParts.reduce((sum, part) => sum + part.requests, 0);
    warnings.push(
      `${pendingParts.length} part(s) have not ended yet (${requests} requests pending): run \`oai-batch batch download --resume\` once they have`,
    );
  }
  const summary = buildSummary({
    stats,
    ledger,
    prices: options.prices,
    mode: 'batch',
    input: { path: options.input, fingerprint },
    limits: {},
    stoppedReason: null,
    finished: span.endedMs !== null,
    // The batches' own span: answers arrive when a batch ends, not when they are downloaded.
    now: span.endedMs ?? now(),
    warnings,
    thresholds: {},
    earlierCostUsd,
  });
  await writeFileAtomic(options.summary, JSON.stringify(summary, null, 2) + '\n');
    // Parts still running: like a run stopped early (exit 3); download --resume continues.
  return { summary, exitCode: pendingParts.length > 0 ? 3 : exitCodeOf(summary), pendingParts: pendingParts.length };
}

/**
 * When the batches ran, by the API's clock: the first current batch's
 * creation and, once every created batch has ended, the last end (null while
 * one still runs, or for manifests that kept no creation time).
 */
export function batchSpanMs(parts: readonly ManifestPart[]): { createdMs: number | null; endedMs: number | null } {
  const created = parts.filter((part) => part.state === 'submitted');
  const createdAt = created.flatMap((part) => (typeof part.created_at === 'number' ? [part.created_at] : []));
  const endedAt = created.flatMap((part) => (part.ended_at === null ? [] : [part.ended_at]));
  return {
    createdMs: createdAt.length === 0 ? null : Math.min(...createdAt) * 1000,
    endedMs: created.length === 0 || endedAt.length < created.length ? null : Math.max(...endedAt) * 1000,
  };
}

/** The response cache answers are stored in (--cache); one that cannot be used is a warning, never a failed download. */
async function openCache(path: string | undefined, warnings: string[]): Promise<{ store: ResponseCache; runId: string } | null> {
  if (path === undefined) return null;
  try {
    return { store: await openResponseCache(path), runId: `batch-${randomBytes(6).toString('hex')}` };
  } catch (error) {
    warnings.push(`the response cache ${path} cannot be used (${(error as Error).message}): the answers were not stored in it`);
    return null;
  }
}

/** Turns answer lines into result and error records, each custom_id at most once. */
class AnswerMerger {
  unknownLines = 0;

  constructor(
    private readonly results: JsonlWriter,
    private readonly errors: JsonlWriter,
    private readonly needed: Map<string, Needed>,
    private readonly ledger: CostLedger,
    private readonly stats: RunStats,
    private readonly cache: { store: ResponseCache; runId: string } | null,
    private readonly now: () => number,
  ) {}

  /** Merges every line of a downloaded output or error file, streamed: one line in memory at a time. */
  async mergeFile(path: string, part: ManifestPart): Promise<void> {
    for await (const record of readLines(createReadStream(path), Number.MAX_SAFE_INTEGER)) {
      if (record.kind === 'text') await this.mergeLine(record.text, part);
    }
  }

  private async mergeLine(text: string, part: ManifestPart): Promise<void> {
    let value: { id?: unknown; custom_id?: unknown; response?: unknown; error?: unknown };
    try {
      value = JSON.parse(text) as typeof value;
    } catch {
      this.unknownLines += 1;
      return;
    }
    const customId = typeof value.custom_id === 'string' ? value.custom_id : null;
    const entry = customId === null ? undefined : this.needed.get(customId);
    if (customId === null || entry === undefined || entry.part !== part.part) {
      this.unknownLines += 1;
      return;
    }
    this.needed.delete(customId);
    const id = typeof value.id === 'string' ? value.id : `batch_req_unknown_${entry.line}`;
    const response = responseOf(value.response);
    this.stats.sent += 1;
    this.stats.attempts += 1;

    if (response && response.status_code >= 200 && response.status_code < 300 && value.error == null) {
      const body = response.body;
      const usage = usageFromBody(part.endpoint, body);
      const model = modelOf(body) ?? part.model;
      const ledgerOptions = { serviceTier: serviceTierOf(body), batch: true };
      let costUsd: number | null = null;
      if (usage) {
        this.ledger.add(model, usage, ledgerOptions);
        costUsd = this.ledger.lineCostUsd(model, usage, ledgerOptions);
        this.stats.billedTokens += usage.input_tokens + usage.output_tokens;
      }
      // The same fields, in the same order, as a result line written by `run`, plus "via".
      const record: ResultRecord = {
        id,
        custom_id: customId,
        response,
        error: null,
        line: entry.line,
        attempts: 1,
        // The Batch API reports no per-request latency.
        latency_ms: 0,
        cost_usd: costUsd === null ? null : Number(costUsd.toPrecision(12)),
      };
      if (entry.metadata !== undefined) record.metadata = entry.metadata;
      record.via = 'batch';
      await this.results.write(record);
      this.stats.succeeded += 1;
      if (this.cache && entry.cacheKey) {
        this.cache.store.put(entry.cacheKey, {
          storedAt: this.now(),
          runId: this.cache.runId,
          status: response.status_code,
          requestId: response.request_id,
          body: JSON.stringify(body),
          batch: true,
        });
      }
      return;
    }

    const apiError = errorObjectOf(response?.body);
    const lineError = value.error && typeof value.error === 'object' ? (value.error as { code?: unknown; message?: unknown }) : null;
    const code =
      (typeof apiError?.code === 'string' && apiError.code) ||
      (response ? `http_${response.status_code}` : typeof lineError?.code === 'string' ? lineError.code : 'batch_error');
    const message =
      (typeof apiError?.message === 'string' && apiError.message) ||
      (typeof lineError?.message === 'string' ? lineError.message : response ? `status ${response.status_code}` : 'the Batch API reported an error');
    const record: ErrorRecord = { id, custom_id: customId, line: entry.line, response, error: { code, message }, attempts: 1 };
    if (entry.metadata !== undefined) record.metadata = entry.metadata;
    record.via = 'batch';
    await this.errors.write(record);
    this.stats.failed += 1;
  }
}

function responseOf(value: unknown): ResponseRecord | null {
  if (!value || typeof value !== 'object') return null;
  const r = value as { status_code?: unknown; request_id?: unknown; body?: unknown };
  if (typeof r.status_code !== 'number') return null;
  return { status_code: r.status_code, request_id: typeof r.request_id === 'string' ? r.request_id : null, body: r.body };
}

/** The error record of a request its ended part never answered. */
function unansweredError(part: ManifestPart, index: number): { code: string; message: string } {
  const where = `part ${part.part}${part.batch_id ? ` (${part.batch_id})` : ''}`;
  if (part.state === 'cancelled' || part.status === 'cancelled') {
    return { code: 'batch_cancelled', message: `${where} was cancelled before this request ran` };
  }
  if (part.status === 'expired') {
    return { code: 'batch_expired', message: `${where} expired (24 h completion window) before this request ran` };
  }
  if (part.status === 'failed') {
    const own = part.errors.find((error) => error.line === index);
    if (own) return { code: own.code, message: `${where} failed: ${own.message} (line ${index} of the part's file)` };
    return { code: 'batch_failed', message: `${where} failed: ${describeErrors(part.errors)}` };
  }
  return { code: 'batch_missing', message: `${where} completed without an answer for this request` };
}

export function describeErrors(errors: readonly BatchErrorData[]): string {
  if (errors.length === 0) return 'no reason given';
  const first = errors
    .slice(0, 3)
    .map((e) => `${e.code}${e.line != null ? ` (line ${e.line})` : ''}: ${e.message}`)
    .join('; ');
  return errors.length > 3 ? `${first}; and ${errors.length - 3} more` : first;
}


