// batch submit: split the input into parts, upload each, create its batch,
// and keep the manifest beside the input; or resume a submit a crash cut short.
//
// In:  SubmitOptions and a BatchApi.  Out: the session over the manifest
//      (for `--wait`), counts of what was done; the input's bad lines in the
//      errors file, exactly as `run` writes them.
// Owns the split pass (read → plan → split → part files in a temporary
// folder) and the order upload → create per part. The part files live only
// for the upload; a resume rebuilds those it still needs from the input.
// A new manifest leaves out the requests that already have a success in the
// results file (a partial `run` came first) and records their lines, so that
// a resume and every later command leave out the same ones.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, InputError } from '../shared/errors.js';
import { fingerprintFile, isSameInput } from '../shared/fingerprint.js';
import { openJsonlWriter, type JsonlWriter } from '../pipeline/record/writer.js';
import type { Endpoint } from '../shared/types.js';
import { VERSION } from '../shared/version.js';
import type { BatchApi } from './api.js';
import { readManifest, MANIFEST_VERSION, SIMULATED_BASE_URL, type Manifest, type ManifestPart } from './manifest.js';
import { BatchSession, isPartEnded, type SessionOptions } from './session.js';
import { splitInput, type PartLimits, type PartPlan } from './split.js';
import { LineRanges, LineRangesBuilder } from './line-ranges.js';
import { exists, inputChangedSince } from '../pipeline/record/outputs.js';
import { indexResults, type ResumeIndex } from '../pipeline/record/resume.js';
import { lockFile } from '../shared/lock.js';
import type { KeySet } from '../shared/keyset.js';
import { problemRecord, recordIds } from '../shared/records.js';

export interface SubmitOptions {
  /** The input file (a path; stdin cannot be read again by later commands). */
  input: string;
  /** Errors file: the input's bad lines, one record each (default `<input>.errors.jsonl`). */
  errors: string;
  /** The manifest (default `<input>.batch.json`). */
  manifestPath: string;
  /** Endpoint of bare-form lines. */
  endpoint: Endpoint;
  /** Longest accepted input line, bytes. */
  maxLineBytes: number;
  /** Part limits for a new manifest; a resumed one keeps the limits it was split with. */
  limits: PartLimits;
  /** The API base the batches are sent to, recorded in the manifest. */
  baseUrl: string;
  /** Start a new manifest even though one exists (refused while its batches still run). */
  overwrite: boolean;
  /**
   * A results file whose successes a new manifest leaves out (a partial `run`
   * came first), or null to send every line (default). The file is read,
   * never modified; its summary tells whether the input changed since.
   */
  skipSucceeded?: SkipSucceeded | null;
  /** Stop after the part being sent (the manifest stays consistent; submit again to continue). */
  signal?: AbortSignal;
  /** Folder for the part files while they upload. Default: the OS temporary folder. */
  tempDir?: string;
  session?: SessionOptions;
}

export interface SubmitResult {
  session: BatchSession;
  /** A manifest was already there and this submit continued it. */
  isResumed: boolean;
  /** The manifest was replaced (--overwrite). */
  isReplaced: boolean;
  inputProblems: number;
  /** Requests the manifest leaves out because they had already succeeded (0 when none). */
  skipped: number;
  /** Stopped by the signal before every part was sent. */
  isInterrupted: boolean;
}

export interface SkipSucceeded {
  /** The results file. */
  results: string;
  /** The summary written with it (holds the input's fingerprint then). */
  summary: string;
  /** Leave out what succeeded even though a `line-N` keyed input changed since. */
  force: boolean;
}

export async function submitBatches(api: BatchApi, options: SubmitOptions): Promise<SubmitResult> {
  if (options.input === '-') {
    throw new ConfigError('batch needs an input file, not stdin: later commands (wait, download) read the input again');
  }
  const fingerprint = await fingerprintFile(options.input).catch((error: unknown) => {
    throw new InputError(`cannot read input ${options.input}: ${(error as Error).message}`, 'input_unreadable', { cause: error });
  });
  const existing = await readManifest(options.manifestPath);
  let manifest: Manifest | null = null;
  let isReplaced = false;
  if (existing && !options.overwrite) {
    await checkManifestMatches(existing, options.manifestPath, options.input, fingerprint, options.baseUrl);
    manifest = existing;
  } else if (existing) {
    // Parts only uploaded, never created, cost nothing: only batches that may run block a replacement
    // (and none can, once the simulator they lived in is gone).
    const live = existing.parts.filter(
      (part) => existing.base_url !== SIMULATED_BASE_URL && (part.state === 'creating' || (part.state === 'submitted' && !isPartEnded(part))),
    );
    if (live.length > 0) {
      throw new InputError(
        `${options.manifestPath} has ${live.length} part(s) still running (e.g. part ${live[0]?.part}): ` +
          'replacing it would submit the same requests twice. Cancel them first with `oai-batch batch cancel`, or wait for them.',
        'batches_running',
      );
    }
    isReplaced = true;
  }

  const errors = await openJsonlWriter(options.errors, { append: false });
  let isErrorsClosed = false;
  const folder = await mkdtemp(join(options.tempDir ?? tmpdir(), 'oai-batch-parts-'));
  const partFiles = new PartFiles(folder);
  let session: BatchSession | null = null;
  try {
    const nextId = recordIds();
    const needsFile = (partNumber: number): boolean => {
      const state = manifest?.parts[partNumber - 1]?.state;
      return manifest === null || state === 'pending' || state === 'uploading';
    };
    const limits = manifest ? limitsOf(manifest) : options.limits;
    // A new manifest leaves out what already succeeded; a continued one leaves out what it recorded, whatever the results say now.
    const done = manifest === null ? await successesToSkip(options, fingerprint) : null;
    const recorded = manifest?.skipped ? new LineRanges(manifest.skipped.lines) : null;
    const skippedLines = new LineRangesBuilder();
    const split = await splitInput({
      input: options.input,
      endpoint: manifest?.endpoint ?? options.endpoint,
      maxLineBytes: manifest?.max_line_bytes ?? options.maxLineBytes,
      limits,
      onProblem: (problem) => errors.write(problemRecord(problem, nextId())),
      onItem: (item, part, line) => (needsFile(part.part) ? partFiles.write(part, item.url, item.model, line) : undefined),
      skip: (item) => (recorded ? recorded.has(item.line) : (done?.has(item.customId) ?? false)),
      onSkipped: (item) => skippedLines.add(item.line),
    });
    await partFiles.close();
    isErrorsClosed = true;
    await errors.close();

    if (manifest === null) {
      manifest = newManifest(options, fingerprint, split.lines, split.problems, split.parts);
      if (split.skipped > 0) manifest.skipped = { results: options.skipSucceeded?.results ?? '', requests: split.skipped, lines: skippedLines.toString() };
    } else {
      checkSameParts(manifest, split.parts, options.manifestPath);
    }
    session = new BatchSession(options.manifestPath, manifest, api, options.session);
    await session.save();

    let isInterrupted = false;
    for (const part of manifest.parts) {
      if (options.signal?.aborted) {
        isInterrupted = true;
        break;
      }
      if (part.state === 'pending' || part.state === 'uploading') await session.upload(part, partFiles.pathOf(part.part));
      await session.createReady();
    }
    return { session, isResumed: existing !== null && !isReplaced, isReplaced, inputProblems: split.problems, skipped: split.skipped, isInterrupted };
  } finally {
    if (!isErrorsClosed) await errors.close().catch(() => {});
    await partFiles.close().catch(() => {});
    await rm(folder, { recursive: true, force: true });
  }
}


/**
 * The custom_ids with a success in the results file of `options.skipSucceeded`
 * (nothing when it is null or the file is missing). The file is only read
 * (a torn last line left by a crash is ignored, not cut), under its lock, so a
 * run writing it at the same time is refused rather than raced. Refuses, as a
 * resume does, when the input changed since those results were written and
 * they are keyed `line-N`.
 */
async function successesToSkip(options: SubmitOptions, fingerprint: string): Promise<KeySet | null> {
  const skip = options.skipSucceeded ?? null;
  if (skip === null || !(await exists(skip.results))) return null;
  const { results } = skip;
  // A run still writing the file would buy the same lines as these batches: refuse while one holds it.
  const unlock = await lockFile(results, 'results_locked');
  let index: ResumeIndex;
  try {
    index = await indexResults(results, () => {}, { repair: false });
  } finally {
    await unlock();
  }
  if (index.succeeded === 0) return null;
  if (index.hasLineKeys && !skip.force) {
    if ((await inputChangedSince(skip.summary, options.input, fingerprint)) === true) {
      throw new InputError(
        `refusing to leave out what succeeded in ${results}: ${options.input} changed since, and its lines are keyed by line number (line-N), ` +
          'so the old keys would now point at other requests. Give the lines their own custom_id, move the results file aside, ' +
          'or pass --force if the lines did not move.',
        'input_changed',
      );
    }
  }
  return index.done;
}

/** A manifest can be continued only for the same input, at the same API. */
export async function checkManifestMatches(manifest: Manifest, path: string, input: string, fingerprint: string, baseUrl: string): Promise<void> {
  if (!(await isSameInput(input, manifest.input.fingerprint, fingerprint))) {
    throw new InputError(
      `${input} changed since ${path} was written, so its parts no longer match the file. ` +
        'Cancel what still runs (`oai-batch batch cancel`), then submit again with --overwrite.',
      'input_changed',
    );
  }
  if (manifest.base_url === SIMULATED_BASE_URL && baseUrl !== SIMULATED_BASE_URL) {
    throw new InputError(
      `the batches of ${path} ran in a simulator inside the command that submitted them, and ended with it: submit again with --overwrite`,
      'manifest_simulated',
    );
  }
  if (trimSlash(manifest.base_url) !== trimSlash(baseUrl)) {
    throw new ConfigError(`the batches of ${path} were sent to ${manifest.base_url}, not ${baseUrl}: pass --base-url ${manifest.base_url}`);
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export function limitsOf(manifest: Manifest): PartLimits {
  return {
    maxRequests: manifest.limits.max_requests,
    maxEmbeddingInputs: manifest.limits.max_embedding_inputs,
    maxBytes: manifest.limits.max_bytes,
    maxEnqueuedTokens: manifest.limits.max_enqueued_tokens,
  };
}

/** The split of the input today must be the split the manifest recorded (it is deterministic for the same input). */
export function checkSameParts(manifest: Manifest, parts: readonly PartPlan[], path: string): void {
  const same =
    parts.length === manifest.parts.length &&
    parts.every((plan, i) => {
      const part = manifest.parts[i] as ManifestPart;
      return (
        part.endpoint === plan.endpoint &&
        part.model === plan.model &&
        part.first_line === plan.firstLine &&
        part.last_line === plan.lastLine &&
        part.requests === plan.requests
      );
    });
  if (!same) {
    throw new InputError(`the input no longer splits into the parts recorded in ${path}: was it edited?`, 'input_changed');
  }
}

function newManifest(options: SubmitOptions, fingerprint: string, lines: number, problems: number, parts: readonly PartPlan[]): Manifest {
  const manifestId = `obm_${randomBytes(8).toString('hex')}`;
  const now = new Date().toISOString();
  return {
    version: MANIFEST_VERSION,
    manifest_id: manifestId,
    tool: { name: 'oai-batch', version: VERSION },
    input: { path: options.input, fingerprint, lines },
    base_url: options.baseUrl,
    endpoint: options.endpoint,
    max_line_bytes: options.maxLineBytes,
    limits: {
      max_requests: options.limits.maxRequests,
      max_embedding_inputs: options.limits.maxEmbeddingInputs,
      max_bytes: options.limits.maxBytes,
      max_enqueued_tokens: options.limits.maxEnqueuedTokens,
    },
    input_problems: problems,
    created_at: now,
    updated_at: now,
    parts: parts.map((plan) => ({
      part: plan.part,
      endpoint: plan.endpoint,
      model: plan.model,
      first_line: plan.firstLine,
      last_line: plan.lastLine,
      requests: plan.requests,
      embedding_inputs: plan.embeddingInputs,
      bytes: plan.bytes,
      enqueued_tokens: plan.enqueuedTokens,
      filename: `${manifestId}-part-${plan.part}.jsonl`,
      state: 'pending',
      file_id: null,
      batch_id: null,
      attempt: 0,
      status: null,
      request_counts: null,
      errors: [],
      output_file_id: null,
      error_file_id: null,
      created_at: null,
      ended_at: null,
      previous_batches: [],
      retry_at: null,
    })),
  };
}

/**
 * The part files being written during the split pass. One writer is open per
 * (endpoint, model): when a group moves on to its next part, the previous
 * part is complete and its file is closed, so open files stay few.
 */
class PartFiles {
  private readonly open = new Map<string, { part: number; writer: JsonlWriter }>();

  constructor(private readonly folder: string) {}

  pathOf(part: number): string {
    return join(this.folder, `part-${part}.jsonl`);
  }

  async write(part: PartPlan, endpoint: string, model: string, line: string): Promise<void> {
    const key = `${endpoint}\u0000${model}`;
    let current = this.open.get(key);
    if (current && current.part !== part.part) {
      await current.writer.close();
      current = undefined;
    }
    if (!current) {
      current = { part: part.part, writer: await openJsonlWriter(this.pathOf(part.part), { append: false }) };
      this.open.set(key, current);
    }
    await current.writer.writeRaw(line);
  }

  async close(): Promise<void> {
    for (const { writer } of this.open.values()) await writer.close();
    this.open.clear();
  }
}
