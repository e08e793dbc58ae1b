// The simulated Files and Batch APIs (OPENAI-API.md §7, checklist items 10–11).
//
// In:  /v1/files (multipart upload, list, get, content, delete) and /v1/batches
//      (create, get, list, cancel) requests.
// Out: OpenAIFile and Batch objects; batches that move validating →
//      in_progress → finalizing → completed (or failed, expired,
//      cancelling → cancelled) over a few steps of `batch.stepMs`.
// Owns the per-simulator file and batch store, the lifecycle clock, batch
// validation, and billing batch lines (at the batch rate) through host.emitBilled.
//
// Lines are answered by host.answer, the same offline answer the online
// endpoints give (same usage for the same body), never rate limited. Output
// files list lines in shuffled order, as the real API does not keep order.

import { measurePrompt } from '../pipeline/plan/charge.js';
import { isEndpoint, type Endpoint } from '../shared/types.js';
import type { OfflineAnswer, SimContext, SimHost } from './context.js';
import { apiError } from './error-bodies.js';
import { mulberry32, requestDigest, seedWord } from './digest.js';
import type { BatchSimulatorOptions } from './options.js';
import type { Route, SetupHook } from './route.js';

/** Endpoints a batch may name ([SPEC] `endpoint` enum); the simulator answers the first five. */
const BATCH_ENDPOINTS = [
  '/v1/responses',
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/completions',
  '/v1/moderations',
  '/v1/images/generations',
  '/v1/images/edits',
  '/v1/videos',
];
const FILE_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'];
/** The Batch API's per-file limits. */
export const MAX_BATCH_REQUESTS = 50_000;
export const MAX_BATCH_EMBEDDING_INPUTS = 50_000;
export const MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024;
/** Batch input files expire after 30 days by default ([SPEC] FileExpirationAfter). */
const FILE_TTL_SECONDS = 30 * 24 * 3600;
const DAY_MS = 24 * 3600 * 1000;
/** Phases measured in steps. */
const VALIDATING_STEPS = 1;
const IN_PROGRESS_STEPS = 3;
const FINALIZING_STEPS = 1;
const CANCELLING_STEPS = 1;
/** At most this many errors.data entries per failed batch. */
const MAX_ERRORS = 100;

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';
const ACTIVE: ReadonlySet<BatchStatus> = new Set(['validating', 'in_progress', 'finalizing', 'cancelling']);

interface ResolvedBatchOptions {
  stepMs: number;
  expiresAfterMs: number;
  enqueuedTokenLimit: number | null;
  createDelayMs: number;
}

export function resolveBatchOptions(options: BatchSimulatorOptions = {}): ResolvedBatchOptions {
  const resolved = {
    stepMs: options.stepMs ?? 1000,
    expiresAfterMs: options.expiresAfterMs ?? DAY_MS,
    enqueuedTokenLimit: options.enqueuedTokenLimit ?? null,
    createDelayMs: options.createDelayMs ?? 0,
  };
  const check = (ok: boolean, name: string, expected: string, value: unknown): void => {
    if (!ok) throw new Error(`Expected \`batch.${name}\` to be ${expected}, got \`${String(value)}\``);
  };
  check(Number.isFinite(resolved.stepMs) && resolved.stepMs > 0, 'stepMs', 'a number > 0', resolved.stepMs);
  check(Number.isFinite(resolved.expiresAfterMs) && resolved.expiresAfterMs > 0, 'expiresAfterMs', 'a number > 0', resolved.expiresAfterMs);
  check(
    resolved.enqueuedTokenLimit === null || (Number.isFinite(resolved.enqueuedTokenLimit) && resolved.enqueuedTokenLimit > 0),
    'enqueuedTokenLimit',
    'a number > 0 or null',
    resolved.enqueuedTokenLimit,
  );
  check(Number.isFinite(resolved.createDelayMs) && resolved.createDelayMs >= 0, 'createDelayMs', 'a number ≥ 0', resolved.createDelayMs);
  return resolved;
}

interface StoredFile {
  id: string;
  bytes: number;
  created_at: number;
  expires_at: number | null;
  filename: string;
  purpose: string;
  content: Buffer;
}

interface BatchErrorData {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

interface BatchLine {
  customId: string;
  body: Record<string, unknown>;
}

interface BatchUsage {
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
}

interface StoredBatch {
  id: string;
  endpoint: Endpoint | string;
  inputFileId: string;
  metadata: Record<string, string> | null;
  apiKey: string;
  status: BatchStatus;
  createdMs: number;
  /** When the current phase started, ms. */
  phaseMs: number;
  expiresMs: number;
  times: Partial<Record<'in_progress_at' | 'finalizing_at' | 'completed_at' | 'failed_at' | 'expired_at' | 'cancelling_at' | 'cancelled_at', number>>;
  errors: BatchErrorData[] | null;
  model: string | null;
  lines: BatchLine[];
  /** Requests in the file, known once validated. */
  total: number;
  enqueuedTokens: number;
  processed: number;
  outputLines: string[];
  errorLines: string[];
  completed: number;
  failed: number;
  usage: BatchUsage;
  outputFileId: string | null;
  errorFileId: string | null;
}

/** The files and batches of one simulator, and the clock that moves batches along. */
export class BatchStore {
  readonly options: ResolvedBatchOptions;
  private readonly files = new Map<string, StoredFile>();
  private readonly batches = new Map<string, StoredBatch>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly host: SimHost) {
    this.options = resolveBatchOptions(host.options.batch);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  // ---- files ---------------------------------------------------------------

  addFile(filename: string, purpose: string, content: Buffer): StoredFile {
    const createdSec = Math.floor(this.host.now() / 1000);
    const file: StoredFile = {
      id: `file-${this.uniqueHex(24)}`,
      bytes: content.length,
      created_at: createdSec,
      expires_at: purpose === 'batch' ? createdSec + FILE_TTL_SECONDS : null,
      filename,
      purpose,
      content,
    };
    this.files.set(file.id, file);
    return file;
  }

  file(id: string): StoredFile | undefined {
    return this.files.get(id);
  }

  /** Forgets a file (a batch that already read it keeps its lines); false when there was none. */
  deleteFile(id: string): boolean {
    return this.files.delete(id);
  }

  /** Files newest first, as the API lists them by default. */
  listFiles(purpose: string | null): StoredFile[] {
    return [...this.files.values()].filter((f) => purpose === null || f.purpose === purpose).reverse();
  }

  // ---- batches -------------------------------------------------------------

  createBatch(inputFileId: string, endpoint: string, metadata: Record<string, string> | null, apiKey: string): StoredBatch {
    const now = this.host.now();
    const batch: StoredBatch = {
      id: `batch_${this.uniqueHex(24)}`,
      endpoint,
      inputFileId,
      metadata,
      apiKey,
      status: 'validating',
      createdMs: now,
      phaseMs: now,
      expiresMs: now + this.options.expiresAfterMs,
      times: {},
      errors: null,
      model: null,
      lines: [],
      total: 0,
      enqueuedTokens: 0,
      processed: 0,
      outputLines: [],
      errorLines: [],
      completed: 0,
      failed: 0,
      usage: { input_tokens: 0, cached_tokens: 0, output_tokens: 0, reasoning_tokens: 0 },
      outputFileId: null,
      errorFileId: null,
    };
    this.batches.set(batch.id, batch);
    this.startClock();
    return batch;
  }

  batch(id: string): StoredBatch | undefined {
    return this.batches.get(id);
  }

  /** Batches newest first. */
  listBatches(): StoredBatch[] {
    return [...this.batches.values()].reverse();
  }

  /** Starts cancelling; returns an error message when the batch has already ended. */
  cancel(batch: StoredBatch): string | null {
    if (batch.status === 'cancelling' || batch.status === 'cancelled') return null;
    if (!ACTIVE.has(batch.status)) return `Cannot cancel a batch with status '${batch.status}'.`;
    const now = this.host.now();
    batch.status = 'cancelling';
    batch.phaseMs = now;
    batch.times.cancelling_at = now;
    return null;
  }

  /** Moves every batch along to `now`, in creation order (so enqueued tokens are counted in a fixed order). */
  advance(now = this.host.now()): void {
    for (const batch of this.batches.values()) this.advanceBatch(batch, now);
    if (![...this.batches.values()].some((b) => ACTIVE.has(b.status))) this.stopClock();
  }

  /**
   * One phase change per call at most, stamped with the time it is seen: a
   * phase lasts its steps from when it began in fact, so a slow moment (a
   * long line, a tokenizer loading) never makes a batch skip a status a
   * poller would have seen.
   */
  private advanceBatch(batch: StoredBatch, now: number): void {
    const step = this.options.stepMs;
    switch (batch.status) {
      case 'validating':
        if (now >= batch.expiresMs) return this.expire(batch);
        if (now >= batch.phaseMs + VALIDATING_STEPS * step) this.finishValidation(batch);
        return;
      case 'in_progress': {
        const share = Math.min(1, (Math.min(now, batch.expiresMs) - batch.phaseMs) / (IN_PROGRESS_STEPS * step));
        this.process(batch, Math.ceil(batch.total * share), now);
        if (batch.processed >= batch.total) this.enter(batch, 'finalizing');
        else if (now >= batch.expiresMs) this.expire(batch);
        return;
      }
      case 'finalizing':
        if (now >= batch.phaseMs + FINALIZING_STEPS * step) this.end(batch, 'completed');
        return;
      case 'cancelling':
        if (now >= batch.phaseMs + CANCELLING_STEPS * step) this.end(batch, 'cancelled');
        return;
      default:
        return;
    }
  }

  /** Enters a phase; stamped after any work done for it, so the phase lasts its steps from now. */
  private enter(batch: StoredBatch, status: 'in_progress' | 'finalizing'): void {
    const atMs = this.host.now();
    batch.status = status;
    batch.phaseMs = atMs;
    batch.times[`${status}_at`] = atMs;
  }

  private finishValidation(batch: StoredBatch): void {
    const file = this.files.get(batch.inputFileId);
    const checked = file ? validateBatchFile(file.content, batch.endpoint) : { errors: [fileGone(batch.inputFileId)], lines: [], model: null };
    batch.model = checked.model;
    if (checked.errors.length > 0) {
      batch.errors = checked.errors.slice(0, MAX_ERRORS);
      return this.end(batch, 'failed');
    }
    batch.lines = checked.lines;
    batch.total = checked.lines.length;
    batch.enqueuedTokens = checked.lines.reduce((sum, line) => sum + measurePrompt(batch.endpoint as Endpoint, line.body).tokens, 0);
    const limit = this.options.enqueuedTokenLimit;
    if (limit !== null && checked.model !== null) {
      const enqueued = [...this.batches.values()]
        .filter((b) => b !== batch && b.model === checked.model && (b.status === 'in_progress' || b.status === 'finalizing'))
        .reduce((sum, b) => sum + b.enqueuedTokens, 0);
      if (enqueued + batch.enqueuedTokens > limit) {
        batch.errors = [
          {
            code: 'token_limit_exceeded',
            line: null,
            param: null,
            message:
              `Enqueued token limit reached for ${checked.model} in organization org-sim. Limit: ${limit.toLocaleString('en-US')} enqueued tokens. ` +
              'Please try again once some in_progress batches have been completed.',
          },
        ];
        return this.end(batch, 'failed');
      }
    }
    this.enter(batch, 'in_progress');
  }

  /** Answers lines up to `target` (exclusive), billing each success at the batch rate. */
  private process(batch: StoredBatch, target: number, atMs: number): void {
    const endpoint = batch.endpoint as Endpoint;
    while (batch.processed < target) {
      const line = batch.lines[batch.processed] as BatchLine;
      batch.processed += 1;
      const rawBody = JSON.stringify(line.body);
      const answer: OfflineAnswer = isEndpoint(endpoint)
        ? this.host.answer(endpoint, rawBody)
        : { statusCode: 404, body: { error: apiError('invalid_request_error', null, `Invalid URL (POST ${endpoint})`) } };
      const requestId = this.host.requestId();
      const record = {
        id: `batch_req_${this.uniqueHex(32)}`,
        custom_id: line.customId,
        response: { status_code: answer.statusCode, request_id: requestId, body: answer.body },
        error: null,
      };
      if (answer.statusCode === 200) {
        batch.completed += 1;
        batch.outputLines.push(JSON.stringify(record));
        batch.usage.input_tokens += answer.usage.input_tokens;
        batch.usage.cached_tokens += answer.usage.cached_input_tokens;
        batch.usage.output_tokens += answer.usage.output_tokens;
        batch.usage.reasoning_tokens += answer.usage.reasoning_tokens;
        this.host.stats.countAnswer(requestDigest(rawBody), answer.model, answer.usage);
        this.host.emitBilled({
          timeMs: atMs,
          endpoint,
          model: answer.model,
          requestedModel: answer.requestedModel,
          apiKey: batch.apiKey,
          usage: answer.usage,
          promptTokens: answer.promptTokens,
          serviceTier: answer.serviceTier,
          batch: true,
        });
      } else {
        // A request the API rejects goes to the error file with its 4xx response and a null top-level error.
        batch.failed += 1;
        batch.errorLines.push(JSON.stringify(record));
      }
    }
  }

  private expire(batch: StoredBatch): void {
    // Unfinished lines are reported in the error file (LiteLLM's clone documents `batch_expired`; unconfirmed for OpenAI).
    for (let i = batch.processed; i < batch.lines.length; i++) {
      const line = batch.lines[i] as BatchLine;
      batch.failed += 1;
      batch.errorLines.push(
        JSON.stringify({
          id: `batch_req_${this.uniqueHex(32)}`,
          custom_id: line.customId,
          response: null,
          error: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
        }),
      );
    }
    batch.processed = batch.lines.length;
    this.end(batch, 'expired');
  }

  /** Ends a batch: writes its output and error files (shuffled) and stamps the time. */
  private end(batch: StoredBatch, status: 'completed' | 'failed' | 'expired' | 'cancelled'): void {
    const atMs = this.host.now();
    batch.status = status;
    batch.phaseMs = atMs;
    batch.times[`${status}_at`] = atMs;
    if (status === 'failed') return;
    const seed = seedWord(this.host.options.seed) ^ Number.parseInt(batch.id.slice(-8), 16);
    if (batch.outputLines.length > 0) {
      batch.outputFileId = this.addFile(`${batch.id}_output.jsonl`, 'batch_output', jsonl(shuffle(batch.outputLines, seed))).id;
    }
    if (batch.errorLines.length > 0) {
      batch.errorFileId = this.addFile(`${batch.id}_error.jsonl`, 'batch_output', jsonl(shuffle(batch.errorLines, seed ^ 0x9e3779b1))).id;
    }
    batch.outputLines = [];
    batch.errorLines = [];
    batch.lines = [];
  }

  /** The Batch object as the API returns it. */
  view(batch: StoredBatch): Record<string, unknown> {
    const sec = (ms: number | undefined): number | null => (ms === undefined ? null : Math.floor(ms / 1000));
    const u = batch.usage;
    return {
      id: batch.id,
      object: 'batch',
      endpoint: batch.endpoint,
      model: batch.model,
      errors: batch.errors === null ? null : { object: 'list', data: batch.errors },
      input_file_id: batch.inputFileId,
      completion_window: '24h',
      status: batch.status,
      output_file_id: batch.outputFileId,
      error_file_id: batch.errorFileId,
      created_at: sec(batch.createdMs),
      in_progress_at: sec(batch.times.in_progress_at),
      expires_at: sec(batch.expiresMs),
      finalizing_at: sec(batch.times.finalizing_at),
      completed_at: sec(batch.times.completed_at),
      failed_at: sec(batch.times.failed_at),
      expired_at: sec(batch.times.expired_at),
      cancelling_at: sec(batch.times.cancelling_at),
      cancelled_at: sec(batch.times.cancelled_at),
      request_counts: { total: batch.total, completed: batch.completed, failed: batch.failed },
      usage: {
        input_tokens: u.input_tokens,
        input_tokens_details: { cached_tokens: u.cached_tokens },
        output_tokens: u.output_tokens,
        output_tokens_details: { reasoning_tokens: u.reasoning_tokens },
        total_tokens: u.input_tokens + u.output_tokens,
      },
      metadata: batch.metadata,
    };
  }

  private startClock(): void {
    if (this.timer || this.closed) return;
    // The clock also runs when nobody polls, so billing (and the usage reports) follow the batch's own timeline.
    this.timer = setInterval(() => this.advance(), Math.max(5, Math.min(250, this.options.stepMs / 4)));
    this.timer.unref();
  }

  private stopClock(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private uniqueHex(length: number): string {
    // host.requestId() is `req_` + 32 unique hex characters.
    let out = '';
    while (out.length < length) out += this.host.requestId().slice(4);
    return out.slice(0, length);
  }
}

/** The batch-level checks the API runs while a batch is `validating`. */
export function validateBatchFile(
  content: Buffer,
  endpoint: string,
): { errors: BatchErrorData[]; lines: BatchLine[]; model: string | null } {
  const errors: BatchErrorData[] = [];
  const lines: BatchLine[] = [];
  const seen = new Set<string>();
  let model: string | null = null;
  let embeddingInputs = 0;
  const fail = (code: string, message: string, line: number | null, param: string | null = null): void => {
    if (errors.length < MAX_ERRORS) errors.push({ code, message, param, line });
  };
  const texts = content.toString('utf8').split('\n');
  let lineNo = 0;
  for (const raw of texts) {
    lineNo += 1;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      fail('invalid_json_line', 'This line is not parseable as valid JSON.', lineNo);
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      fail('invalid_json_line', 'This line is not a JSON object.', lineNo);
      continue;
    }
    const object = value as Record<string, unknown>;
    if (typeof object.custom_id !== 'string' || object.custom_id === '') {
      fail('missing_required_parameter', "Missing required parameter: 'custom_id'.", lineNo, 'custom_id');
      continue;
    }
    if (object.method !== 'POST') {
      fail('invalid_method', `Invalid method ${JSON.stringify(object.method)}: only POST is supported.`, lineNo, 'method');
      continue;
    }
    if (object.url !== endpoint) {
      fail('url_mismatch', `The URL provided for this request does not match the batch endpoint (${endpoint}).`, lineNo, 'url');
      continue;
    }
    if (object.body === null || typeof object.body !== 'object' || Array.isArray(object.body)) {
      fail('missing_required_parameter', "Missing required parameter: 'body'.", lineNo, 'body');
      continue;
    }
    const body = object.body as Record<string, unknown>;
    const lineModel = typeof body.model === 'string' ? body.model : endpoint === '/v1/moderations' ? 'omni-moderation-latest' : null;
    if (model === null) model = lineModel;
    else if (lineModel !== null && lineModel !== model) {
      fail('model_mismatch', `The model provided for this request (${lineModel}) does not match the other requests in the batch (${model}).`, lineNo, 'body.model');
      continue;
    }
    if (seen.has(object.custom_id)) {
      fail('duplicate_custom_id', `The custom_id for this request is a duplicate of another request: ${object.custom_id}.`, lineNo, 'custom_id');
      continue;
    }
    seen.add(object.custom_id);
    if (endpoint === '/v1/embeddings') embeddingInputs += Array.isArray(body.input) ? body.input.length : 1;
    lines.push({ customId: object.custom_id, body });
  }
  if (errors.length === 0 && lines.length === 0) fail('empty_file', 'The batch input file is empty.', null);
  if (lines.length > MAX_BATCH_REQUESTS) {
    fail('too_many_tasks', `The batch input file has ${lines.length} requests; the limit is ${MAX_BATCH_REQUESTS}.`, null);
  } else if (embeddingInputs > MAX_BATCH_EMBEDDING_INPUTS) {
    fail('too_many_tasks', `The batch has ${embeddingInputs} embedding inputs; the limit is ${MAX_BATCH_EMBEDDING_INPUTS}.`, null);
  }
  return { errors, lines: errors.length > 0 ? [] : lines, model };
}

function fileGone(id: string): BatchErrorData {
  return { code: 'file_not_found', message: `No such File object: ${id}`, param: 'input_file_id', line: null };
}

function jsonl(lines: string[]): Buffer {
  return Buffer.from(lines.length ? lines.join('\n') + '\n' : '', 'utf8');
}

/** Fisher–Yates with a seeded PRNG: shuffled, yet the same for the same seed. */
function shuffle<T>(items: T[], seed: number): T[] {
  const out = items.slice();
  const next = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

// ---- HTTP ----------------------------------------------------------------

const STORE_KEY = 'batch';

function storeOf(host: SimHost): BatchStore {
  return host.state(STORE_KEY, () => new BatchStore(host));
}

/** Creates the store when the simulator starts (so bad batch options fail fast) and stops its clock at close. */
export const batchSetup: SetupHook = (host) => {
  const store = storeOf(host);
  return () => store.close();
};

function fileView(file: StoredFile): Record<string, unknown> {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.created_at,
    expires_at: file.expires_at,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    status_details: null,
  };
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms).unref()) : Promise.resolve();
}

function notFound(ctx: SimContext, kind: 'File' | 'Batch', id: string): void {
  ctx.sendError(404, 'invalid_request_error', null, `No such ${kind} object: ${id}`, 'id');
}

/** A cursor page: items after the `after` id, at most `limit`. */
function page<T extends { id: string }>(ctx: SimContext, items: T[], view: (item: T) => unknown, defaultLimit: number, maxLimit: number): void {
  const limitText = ctx.url.searchParams.get('limit');
  const limit = limitText === null ? defaultLimit : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) {
    return ctx.sendError(400, 'invalid_request_error', 'integer_out_of_range', `Invalid 'limit': expected an integer from 1 to ${maxLimit}.`, 'limit');
  }
  const after = ctx.url.searchParams.get('after');
  let start = 0;
  if (after) {
    const at = items.findIndex((item) => item.id === after);
    start = at === -1 ? items.length : at + 1;
  }
  const slice = items.slice(start, start + limit);
  ctx.sendJson(200, {
    object: 'list',
    data: slice.map(view),
    first_id: slice[0]?.id ?? null,
    last_id: slice[slice.length - 1]?.id ?? null,
    has_more: start + limit < items.length,
  });
}

async function uploadFile(ctx: SimContext): Promise<void> {
  const store = storeOf(ctx.host);
  const contentType = ctx.req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(contentType)) {
    return ctx.sendError(400, 'invalid_request_error', null, 'The request must be multipart/form-data with fields `file` and `purpose`.');
  }
  let form: FormData;
  try {
    form = await new Request('http://sim/v1/files', { method: 'POST', headers: { 'content-type': contentType }, body: ctx.rawBody }).formData();
  } catch {
    return ctx.sendError(400, 'invalid_request_error', null, 'The multipart body could not be parsed.');
  }
  const purpose = form.get('purpose');
  const file = form.get('file');
  if (typeof purpose !== 'string') {
    return ctx.sendError(400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'purpose'.", 'purpose');
  }
  if (!FILE_PURPOSES.includes(purpose)) {
    return ctx.sendError(400, 'invalid_request_error', 'invalid_value', `Invalid value for 'purpose': '${purpose}'.`, 'purpose');
  }
  if (file === null || typeof file === 'string') {
    return ctx.sendError(400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'file'.", 'file');
  }
  const filename = (file as File).name || 'upload';
  if (purpose === 'batch' && !filename.endsWith('.jsonl')) {
    return ctx.sendError(400, 'invalid_request_error', 'invalid_file_format', `Invalid file format for Batch API. Must be .jsonl, got ${filename}.`, 'file');
  }
  const stored = store.addFile(filename, purpose, Buffer.from(await file.arrayBuffer()));
  // The file exists from here on, whether or not the client sees this answer.
  await delay(store.options.createDelayMs);
  ctx.sendJson(200, fileView(stored));
}

function listFiles(ctx: SimContext): void {
  const purpose = ctx.url.searchParams.get('purpose');
  page(ctx, storeOf(ctx.host).listFiles(purpose), fileView, 10_000, 10_000);
}

function getFile(ctx: SimContext): void {
  const id = ctx.params[1] as string;
  const file = storeOf(ctx.host).file(id);
  if (!file) return notFound(ctx, 'File', id);
  ctx.sendJson(200, fileView(file));
}

function fileContent(ctx: SimContext): void {
  const id = ctx.params[1] as string;
  const file = storeOf(ctx.host).file(id);
  if (!file) return notFound(ctx, 'File', id);
  ctx.send(200, 'application/octet-stream', file.content);
}

/** DELETE /v1/files/{id}: the API's deletion object. */
function deleteFile(ctx: SimContext): void {
  const id = ctx.params[1] as string;
  if (!storeOf(ctx.host).deleteFile(id)) return notFound(ctx, 'File', id);
  ctx.sendJson(200, { id, object: 'file', deleted: true });
}

async function createBatch(ctx: SimContext): Promise<void> {
  const store = storeOf(ctx.host);
  const body = ctx.json();
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return ctx.sendError(400, 'invalid_request_error', null, 'The body must be a JSON object.');
  }
  const { input_file_id: inputFileId, endpoint, completion_window: window, metadata } = body as Record<string, unknown>;
  if (typeof inputFileId !== 'string') {
    return ctx.sendError(400, 'invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'input_file_id'.", 'input_file_id');
  }
  if (typeof endpoint !== 'string' || !BATCH_ENDPOINTS.includes(endpoint)) {
    return ctx.sendError(400, 'invalid_request_error', 'invalid_value', `Invalid value for 'endpoint': ${JSON.stringify(endpoint)}.`, 'endpoint');
  }
  if (window !== '24h') {
    return ctx.sendError(400, 'invalid_request_error', 'invalid_value', `Invalid value for 'completion_window': ${JSON.stringify(window)}. Supported values are: '24h'.`, 'completion_window');
  }
  const metadataProblem = checkMetadata(metadata);
  if (metadataProblem) return ctx.sendError(400, 'invalid_request_error', 'invalid_value', metadataProblem, 'metadata');
  const file = store.file(inputFileId);
  if (!file) return notFound(ctx, 'File', inputFileId);
  if (file.purpose !== 'batch') {
    return ctx.sendError(400, 'invalid_request_error', 'invalid_value', `File ${inputFileId} has purpose '${file.purpose}'; a batch needs purpose 'batch'.`, 'input_file_id');
  }
  if (file.bytes > MAX_BATCH_FILE_BYTES) {
    return ctx.sendError(400, 'invalid_request_error', 'invalid_value', `File ${inputFileId} is ${file.bytes} bytes; batch input files are limited to 200 MB.`, 'input_file_id');
  }
  store.advance();
  const batch = store.createBatch(inputFileId, endpoint, (metadata as Record<string, string> | null | undefined) ?? null, ctx.apiKey);
  await delay(store.options.createDelayMs);
  ctx.sendJson(200, store.view(batch));
}

/** Up to 16 pairs, keys ≤ 64 characters, string values ≤ 512 characters. */
function checkMetadata(metadata: unknown): string | null {
  if (metadata === undefined || metadata === null) return null;
  if (typeof metadata !== 'object' || Array.isArray(metadata)) return "Invalid type for 'metadata': expected an object.";
  const entries = Object.entries(metadata as Record<string, unknown>);
  if (entries.length > 16) return `Invalid 'metadata': at most 16 pairs, got ${entries.length}.`;
  for (const [key, value] of entries) {
    if (key.length > 64) return `Invalid 'metadata': key ${JSON.stringify(key.slice(0, 20))}… is longer than 64 characters.`;
    if (typeof value !== 'string') return `Invalid 'metadata.${key}': expected a string.`;
    if (value.length > 512) return `Invalid 'metadata.${key}': longer than 512 characters.`;
  }
  return null;
}

function getBatch(ctx: SimContext): void {
  const store = storeOf(ctx.host);
  store.advance();
  const id = ctx.params[1] as string;
  const batch = store.batch(id);
  if (!batch) return notFound(ctx, 'Batch', id);
  ctx.sendJson(200, store.view(batch));
}

function listBatches(ctx: SimContext): void {
  const store = storeOf(ctx.host);
  store.advance();
  page(ctx, store.listBatches(), (batch) => store.view(batch), 20, 100);
}

function cancelBatch(ctx: SimContext): void {
  const store = storeOf(ctx.host);
  store.advance();
  const id = ctx.params[1] as string;
  const batch = store.batch(id);
  if (!batch) return notFound(ctx, 'Batch', id);
  const problem = store.cancel(batch);
  if (problem) return ctx.sendError(409, 'invalid_request_error', null, problem);
  ctx.sendJson(200, store.view(batch));
}

export const batchRoutes: Route[] = [
  { method: 'POST', pattern: /^\/v1\/files$/, handler: uploadFile },
  { method: 'GET', pattern: /^\/v1\/files$/, handler: listFiles },
  { method: 'GET', pattern: /^\/v1\/files\/([^/]+)$/, handler: getFile },
  { method: 'DELETE', pattern: /^\/v1\/files\/([^/]+)$/, handler: deleteFile },
  { method: 'GET', pattern: /^\/v1\/files\/([^/]+)\/content$/, handler: fileContent },
  { method: 'POST', pattern: /^\/v1\/batches$/, handler: createBatch },
  { method: 'GET', pattern: /^\/v1\/batches$/, handler: listBatches },
  { method: 'GET', pattern: /^\/v1\/batches\/([^/]+)$/, handler: getBatch },
  { method: 'POST', pattern: /^\/v1\/batches\/([^/]+)\/cancel$/, handler: cancelBatch },
];
