// export: results joined back to the input, in input order, one row per line.
//
// In:  the input, its results file and errors file (either may be missing or
//      .gz), the output format.
// Out: rows written through a callback (JSONL or RFC 4180 CSV): line,
//      custom_id, status (succeeded / failed / pending), model, prompt text,
//      output text (or embedding dimensions), tokens, cost, latency, error.
// Owns: the join, and pulling the text out of every answer kind (`outputOf`,
//      shared with compare).
//
// Results arrive in completion order and may be far larger than memory, so
// they are never loaded: one pass indexes where each input line's record
// sits in the results or errors file (its byte offset and length: 13 bytes
// per line in typed arrays), then the input is streamed in order and each
// line's record is fetched with one positioned read. A .gz file is first
// decompressed to a temporary file, since compressed bytes cannot be read at
// an offset. A record whose custom_id is not the one its line plans to (the
// input changed since the run) is not joined: the line shows as pending and
// the report counts it.

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
import { InputError } from '../shared/errors.js';
import { isInputProblem } from '../pipeline/plan.js';
import { isLineKey } from '../shared/records.js';
import { endpointOfBody } from '../shared/records.js';
import type { Endpoint, InputProblem, RequestItem } from '../shared/types.js';
import { modelOf, usageFromBody } from '../shared/usage.js';
import { planInput, type InputScanOptions } from './validate.js';

export type ExportFormat = 'jsonl' | 'csv';
export type ExportStatus = 'succeeded' | 'failed' | 'pending';

/** One exported line. Fields a line cannot have (tokens of a failure, output of a pending line) are null. */
export interface ExportRow {
  line: number;
  custom_id: string;
  status: ExportStatus;
  endpoint: Endpoint | null;
  /** The model as answered (a dated snapshot), else as requested. */
  model: string | null;
  /** The prompt's text (chat: the last user message; responses, completions, embeddings: the input). */
  input: string | null;
  /** The answer's text: message content, responses output_text, completion text; null for embeddings. */
  output: string | null;
  /** Length of the first embedding vector, for embeddings. */
  embedding_dimensions: number | null;
  input_tokens: number | null;
  cached_input_tokens: number | null;
  cache_write_input_tokens: number | null;
  output_tokens: number | null;
  reasoning_tokens: number | null;
  cost_usd: number | null;
  latency_ms: number | null;
  attempts: number | null;
  error_code: string | null;
  error_message: string | null;
  metadata: unknown;
}

export const EXPORT_COLUMNS = [
  'line',
  'custom_id',
  'status',
  'endpoint',
  'model',
  'input',
  'output',
  'embedding_dimensions',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'cost_usd',
  'latency_ms',
  'attempts',
  'error_code',
  'error_message',
  'metadata',
] as const satisfies readonly (keyof ExportRow)[];

export interface ExportOptions extends InputScanOptions {
  /** The results file (may be missing when nothing succeeded yet). */
  results: string;
  /** The errors file, or null to ignore failures recorded there. */
  errors: string | null;
  format: ExportFormat;
}

export interface ExportReport {
  lines: number;
  succeeded: number;
  failed: number;
  pending: number;
  /** Records whose custom_id differs from the one their input line plans to (not joined). */
  mismatched: number;
  /** Records with no line number and no `line-N` custom_id (cannot be placed). */
  unplaced: number;
  /** Lines of the results or errors file that are not JSON (a torn last line, say). */
  unreadable: number;
}

/** Rows are handed to `write` in chunks of about this many characters, not one call per row. */
const WRITE_CHUNK_CHARS = 64 * 1024;

/** Streams the joined rows, formatted, to `write` (awaited: a slow writer holds the reading back). */
export async function exportResults(options: ExportOptions, write: (text: string) => Promise<void>): Promise<ExportReport> {
  const report: ExportReport = { lines: 0, succeeded: 0, failed: 0, pending: 0, mismatched: 0, unplaced: 0, unreadable: 0 };
  const sources = await openSources(options);
  try {
    const index = new RecordIndex();
    for (const [kind, source] of sources) await indexRecords(source.path, kind, index, report);
    const readers = new Map<SourceKind, RecordReader>();
    try {
      for (const [kind, source] of sources) readers.set(kind, new RecordReader(await open(source.path, 'r')));
      let pending = options.format === 'csv' ? csvLine(EXPORT_COLUMNS) : '';
      for await (const planned of planInput(options)) {
        const row = await joinLine(planned, index, readers, report);
        report.lines += 1;
        report[row.status] += 1;
        pending += options.format === 'csv' ? csvLine(EXPORT_COLUMNS.map((column) => csvValue(row[column]))) : JSON.stringify(row) + '\n';
        if (pending.length >= WRITE_CHUNK_CHARS) {
          await write(pending);
          pending = '';
        }
      }
      if (pending !== '') await write(pending);
    } finally {
      await Promise.all([...readers.values()].map((reader) => reader.close()));
    }
  } finally {
    await Promise.all([...sources.values()].map((source) => source.cleanup()));
  }
  return report;
}

// ---------------------------------------------------------------------------
// The index: where each line's record is.

type SourceKind = 'results' | 'errors';
const NONE = 0;
const RESULTS_SUCCESS = 1;
const RESULTS_OTHER = 2;
const ERRORS = 3;

/** Per input line number: which file holds its record, at which byte offset, how long. Grows as line numbers grow. */
class RecordIndex {
  #kinds = new Uint8Array(1024);
  #offsets = new Float64Array(1024);
  #lengths = new Uint32Array(1024);

  kindOf(line: number): number {
    return line < this.#kinds.length ? (this.#kinds[line] as number) : NONE;
  }

  get(line: number): { kind: number; offset: number; length: number } | null {
    const kind = this.kindOf(line);
    return kind === NONE ? null : { kind, offset: this.#offsets[line] as number, length: this.#lengths[line] as number };
  }

  set(line: number, kind: number, offset: number, length: number): void {
    if (line >= this.#kinds.length) this.#grow(line + 1);
    this.#kinds[line] = kind;
    this.#offsets[line] = offset;
    this.#lengths[line] = length;
  }

  #grow(size: number): void {
    const capacity = Math.max(size, this.#kinds.length * 2);
    const kinds = new Uint8Array(capacity);
    kinds.set(this.#kinds);
    const offsets = new Float64Array(capacity);
    offsets.set(this.#offsets);
    const lengths = new Uint32Array(capacity);
    lengths.set(this.#lengths);
    this.#kinds = kinds;
    this.#offsets = offsets;
    this.#lengths = lengths;
  }
}

/**
 * Indexes one file. A success in the results file wins over anything else
 * for its line (the first one, if a crash made two); a failure fills a line
 * only when nothing was indexed for it yet.
 */
async function indexRecords(path: string, source: SourceKind, index: RecordIndex, report: ExportReport): Promise<void> {
  await forEachLine(path, (text, offset, length) => {
    let record: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(text);
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
      record = value as Record<string, unknown>;
    } catch {
      report.unreadable += 1;
      return;
    }
    const line = lineOf(record);
    if (line === null) {
      report.unplaced += 1;
      return;
    }
    const kind = source === 'errors' ? ERRORS : isSuccess(record) ? RESULTS_SUCCESS : RESULTS_OTHER;
    const current = index.kindOf(line);
    if (current === NONE || (kind === RESULTS_SUCCESS && current !== RESULTS_SUCCESS)) index.set(line, kind, offset, length);
  });
}

function lineOf(record: Record<string, unknown>): number | null {
  if (typeof record.line === 'number' && Number.isInteger(record.line) && record.line >= 1) return record.line;
  const id = record.custom_id;
  return typeof id === 'string' && isLineKey(id) ? Number(id.slice(5)) : null;
}

function isSuccess(record: Record<string, unknown>): boolean {
  const response = record.response as { status_code?: unknown } | null | undefined;
  const status = response?.status_code;
  return record.error == null && typeof status === 'number' && status >= 200 && status < 300;
}

/** Calls `visit` with each non-blank line's text, byte offset and byte length (newline excluded). */
async function forEachLine(path: string, visit: (text: string, offset: number, length: number) => void): Promise<void> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  let lineStart = 0;
  let position = 0;
  const finish = (tail: Buffer): void => {
    const buffer = parts.length === 0 ? tail : Buffer.concat([...parts, tail]);
    parts = [];
    partBytes = 0;
    let length = buffer.length;
    if (length > 0 && buffer[length - 1] === 0x0d) length -= 1;
    if (length > 0) {
      const text = buffer.toString('utf8', 0, length);
      if (text.trim() !== '') visit(text, lineStart, length);
    }
  };
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      finish(chunk.subarray(start, nl));
      start = nl + 1;
      lineStart = position + start;
    }
    if (start < chunk.length) {
      parts.push(Buffer.from(chunk.subarray(start)));
      partBytes += chunk.length - start;
    }
    position += chunk.length;
  }
  if (partBytes > 0) finish(Buffer.alloc(0));
}

/**
 * Positioned reads of records. Results are usually written in roughly input
 * order (completion order follows sending order), so when a record starts
 * just after the previous one a whole block is read and the next records are
 * served from it; records far apart (a shuffled file) are read one by one,
 * so random order costs one small read each, never a block each.
 */
class RecordReader {
  static readonly BLOCK_BYTES = 256 * 1024;
  /** A record starting within this many bytes after the previous one counts as sequential. */
  static readonly NEAR_BYTES = 4096;
  readonly #handle: FileHandle;
  #block = Buffer.alloc(RecordReader.BLOCK_BYTES);
  #blockStart = 0;
  #blockBytes = 0;
  #lastEnd = -1;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  async read(offset: number, length: number): Promise<string> {
    const isNear = offset >= this.#lastEnd && offset - this.#lastEnd <= RecordReader.NEAR_BYTES;
    this.#lastEnd = offset + length;
    if (offset >= this.#blockStart && offset + length <= this.#blockStart + this.#blockBytes) {
      return this.#block.toString('utf8', offset - this.#blockStart, offset - this.#blockStart + length);
    }
    if (!isNear || length > RecordReader.BLOCK_BYTES) {
      const buffer = Buffer.alloc(length);
      await this.#handle.read(buffer, 0, length, offset);
      return buffer.toString('utf8');
    }
    const { bytesRead } = await this.#handle.read(this.#block, 0, RecordReader.BLOCK_BYTES, offset);
    this.#blockStart = offset;
    this.#blockBytes = bytesRead;
    return this.#block.toString('utf8', 0, Math.min(length, bytesRead));
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}

// ---------------------------------------------------------------------------
// The join.

async function joinLine(
  planned: RequestItem | InputProblem,
  index: RecordIndex,
  readers: Map<SourceKind, RecordReader>,
  report: ExportReport,
): Promise<ExportRow> {
  const item = isInputProblem(planned) ? null : planned;
  const row: ExportRow = {
    line: planned.line,
    custom_id: planned.customId,
    status: 'pending',
    endpoint: item?.url ?? null,
    model: item?.model ?? null,
    input: item ? promptTextOf(item.url, item.body) : null,
    output: null,
    embedding_dimensions: null,
    input_tokens: null,
    cached_input_tokens: null,
    cache_write_input_tokens: null,
    output_tokens: null,
    reasoning_tokens: null,
    cost_usd: null,
    latency_ms: null,
    attempts: null,
    error_code: null,
    error_message: null,
    metadata: planned.metadata ?? null,
  };
  if (!item) {
    const problem = planned as InputProblem;
    row.status = 'failed';
    row.error_code = problem.code;
    row.error_message = problem.message;
    return row;
  }

  const where = index.get(planned.line);
  if (!where) return row;
  const reader = readers.get(where.kind === ERRORS ? 'errors' : 'results') as RecordReader;
  const record = JSON.parse(await reader.read(where.offset, where.length)) as Record<string, unknown>;
  if (record.custom_id !== planned.customId) {
    report.mismatched += 1;
    return row;
  }
  if (record.metadata !== undefined) row.metadata = record.metadata;
  row.attempts = typeof record.attempts === 'number' ? record.attempts : null;

  if (where.kind === RESULTS_SUCCESS) {
    const body = (record.response as { body?: unknown }).body;
    const endpoint = endpointOfBody(body);
    const usage = usageFromBody(endpoint, body);
    const output = outputOf(body);
    row.status = 'succeeded';
    row.endpoint = item.url;
    row.model = modelOf(body) ?? item.model;
    row.output = output.text;
    row.embedding_dimensions = output.embeddingDimensions;
    if (usage) {
      row.input_tokens = usage.input_tokens;
      row.cached_input_tokens = usage.cached_input_tokens;
      row.cache_write_input_tokens = usage.cache_write_input_tokens;
      row.output_tokens = usage.output_tokens;
      row.reasoning_tokens = usage.reasoning_tokens;
    }
    row.cost_usd = typeof record.cost_usd === 'number' ? record.cost_usd : null;
    row.latency_ms = typeof record.latency_ms === 'number' ? record.latency_ms : null;
    return row;
  }
  const error = (record.error ?? {}) as { code?: unknown; message?: unknown };
  const status = (record.response as { status_code?: unknown } | null)?.status_code;
  row.status = 'failed';
  row.error_code = typeof error.code === 'string' ? error.code : typeof status === 'number' ? `http_${status}` : 'failed';
  row.error_message = typeof error.message === 'string' ? error.message : null;
  return row;
}

// ---------------------------------------------------------------------------
// Text out of answers and prompts.

export interface AnswerOutput {
  /** The answer's text; null for embeddings (they have none) and bodies of no known kind. */
  text: string | null;
  /** Length of the first vector, for embeddings; else null. */
  embeddingDimensions: number | null;
}

/**
 * The text of a success body, by its kind:
 * - chat completions: each choice's message content (text parts joined),
 *   else its refusal, else its tool calls as JSON; choices joined by a blank line;
 * - responses: every `output_text` part of every output item, concatenated;
 * - completions: each choice's text, joined by a blank line;
 * - embeddings: no text, the first vector's dimensions (a base64 vector: bytes ÷ 4);
 * - moderations: `flagged` or `not flagged` per input, one per line.
 */
export function outputOf(body: unknown): AnswerOutput {
  const b = asObject(body);
  if (!b) return { text: null, embeddingDimensions: null };
  switch (b.object) {
    case 'chat.completion':
      return {
        text: asArray(b.choices)
          .map((choice) => {
            const message = asObject(asObject(choice)?.message);
            if (!message) return '';
            const content = textOfContent(message.content);
            if (content !== null) return content;
            if (typeof message.refusal === 'string') return message.refusal;
            return message.tool_calls !== undefined ? JSON.stringify(message.tool_calls) : '';
          })
          .join('\n\n'),
        embeddingDimensions: null,
      };
    case 'response': {
      let text = '';
      for (const item of asArray(b.output)) {
        for (const part of asArray(asObject(item)?.content)) {
          const p = asObject(part);
          if (p?.type === 'output_text' && typeof p.text === 'string') text += p.text;
        }
      }
      return { text, embeddingDimensions: null };
    }
    case 'text_completion':
      return {
        text: asArray(b.choices)
          .map((choice) => {
            const text = asObject(choice)?.text;
            return typeof text === 'string' ? text : '';
          })
          .join('\n\n'),
        embeddingDimensions: null,
      };
    case 'list': {
      const vector = asObject(asArray(b.data)[0])?.embedding;
      const dimensions = Array.isArray(vector) ? vector.length : typeof vector === 'string' ? Math.floor(Buffer.byteLength(vector, 'base64') / 4) : null;
      return { text: null, embeddingDimensions: dimensions };
    }
    default:
      if (Array.isArray(b.results)) {
        return { text: b.results.map((r) => (asObject(r)?.flagged === true ? 'flagged' : 'not flagged')).join('\n'), embeddingDimensions: null };
      }
      return { text: null, embeddingDimensions: null };
  }
}

/** The prompt's text: chat, the last user message (else the last message); responses, its input; embeddings and completions, their input. */
export function promptTextOf(url: Endpoint, body: Record<string, unknown>): string | null {
  switch (url) {
    case '/v1/chat/completions': {
      const messages = asArray(body.messages).map(asObject).filter((m): m is Record<string, unknown> => m !== null);
      const chosen = [...messages].reverse().find((m) => m.role === 'user') ?? messages[messages.length - 1];
      return chosen ? textOfContent(chosen.content) : null;
    }
    case '/v1/responses': {
      if (typeof body.input === 'string') return body.input;
      const items = asArray(body.input).map(asObject).filter((m): m is Record<string, unknown> => m !== null);
      const chosen = [...items].reverse().find((m) => m.role === 'user') ?? items[items.length - 1];
      return chosen ? textOfContent(chosen.content) : null;
    }
    case '/v1/completions':
      return textOfList(body.prompt);
    case '/v1/embeddings':
    case '/v1/moderations':
      return textOfList(body.input);
  }
}

/** A content value's text: a string, or the `text` of its parts joined; null when it has none. */
function textOfContent(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  const texts = content.map((part) => asObject(part)?.text).filter((t): t is string => typeof t === 'string');
  return texts.length > 0 ? texts.join('') : null;
}

/** A string, or the strings of an array joined by newlines (token arrays have no text). */
function textOfList(value: unknown): string | null {
  if (typeof value === 'string') return value;
  const texts = asArray(value).filter((v): v is string => typeof v === 'string');
  return texts.length > 0 ? texts.join('\n') : null;
}

function asObject(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

// ---------------------------------------------------------------------------
// CSV (RFC 4180): CRLF line ends; a field with a comma, quote, CR or LF is
// quoted and its quotes doubled.

export function csvLine(fields: readonly string[]): string {
  return fields.map(csvField).join(',') + '\r\n';
}

export function csvField(field: string): string {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

/** A value as CSV text: null empty, numbers without exponents, objects as JSON. */
function csvValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return plainNumber(value);
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** 0.0000006 rather than 6e-7: spreadsheets and scripts read both, people only one. */
export function plainNumber(value: number): string {
  const text = String(value);
  if (!/e/i.test(text)) return text;
  return value.toFixed(20).replace(/\.?0+$/, '');
}

// ---------------------------------------------------------------------------
// Sources: plain files as they are, .gz files decompressed to a temporary copy.

interface Source {
  path: string;
  cleanup(): Promise<void>;
}

async function openSources(options: ExportOptions): Promise<Map<SourceKind, Source>> {
  const sources = new Map<SourceKind, Source>();
  const wanted: Array<[SourceKind, string | null]> = [
    ['results', options.results],
    ['errors', options.errors],
  ];
  for (const [kind, path] of wanted) {
    if (path === null || !(await isFile(path))) continue;
    sources.set(kind, await plainCopy(path));
  }
  if (sources.size === 0) {
    throw new InputError(
      `no results to export: neither ${options.results}${options.errors ? ` nor ${options.errors}` : ''} exists (run the input first, or name the files with --results / --errors)`,
      'results_missing',
    );
  }
  return sources;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function plainCopy(path: string): Promise<Source> {
  if (!/\.gz$/i.test(path)) return { path, cleanup: async () => {} };
  const folder = await mkdtemp(join(tmpdir(), 'oai-batch-export-'));
  const copy = join(folder, 'records.jsonl');
  try {
    // A crash can cut the last gzip member short: keep what decompresses instead of failing on it.
    await pipeline(createReadStream(path), createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH }), createWriteStream(copy));
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw new InputError(`cannot read ${path}: ${(error as Error).message}`, 'input_unreadable', { cause: error });
  }
  return { path: copy, cleanup: () => rm(folder, { recursive: true, force: true }) };
}
