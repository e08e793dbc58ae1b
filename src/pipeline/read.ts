// read: stream the input, one record per line (or per element of a JSON array).
//
// In:  a file path, `-` with a stdin stream, possibly gzip-compressed.
// Out: an async generator of RawRecords with 1-based line numbers; bytes read so far.
// Owns: opening the input, decompression, the line splitter, --max-line-bytes.
//
// The splitter is our own (not node:readline) so that a line longer than
// --max-line-bytes is dropped as it streams instead of being buffered whole.
// It works on bytes: a '\n' byte never occurs inside a multi-byte UTF-8
// sequence, so chunks split anywhere (even mid-character) decode correctly.
// Memory is bounded by the consumer: records are produced only when pulled.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Readable, Transform } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import streamArray from 'stream-json/streamers/stream-array.js';
import { InputError } from '../shared/errors.js';
import { DEFAULT_MAX_LINE_BYTES } from '../shared/types.js';

export type RawRecord =
  /** A JSONL line's text (BOM and trailing CR removed); blank lines are not produced. */
  | { kind: 'text'; line: number; text: string }
  /** An element of an input that is one JSON array; `line` is its 1-based index. */
  | { kind: 'value'; line: number; value: unknown }
  | { kind: 'too_long'; line: number; bytes: number }
  /** The JSON array input stopped parsing here; nothing after it can be read. */
  | { kind: 'broken'; line: number; message: string };

export interface InputSource {
  /** The path as given, or `-` for stdin. */
  path: string;
  /** Decompressed bytes. */
  stream: Readable;
  /** Size on disk for a regular file (compressed size for .gz), else null. */
  sizeBytes: number | null;
  /** Bytes read from disk (compressed bytes for .gz) so far; for progress. */
  bytesRead(): number;
  close(): void;
}


/** Opens the input; a missing or unreadable file is an InputError (exit 1) before anything is sent. */
export async function openInput(path: string, stdin?: Readable): Promise<InputSource> {
  let raw: Readable;
  let sizeBytes: number | null = null;
  if (path === '-') {
    if (!stdin) throw new InputError('input `-` means stdin, but no stdin stream was given');
    raw = stdin;
  } else {
    try {
      const info = await stat(path);
      if (info.isDirectory()) throw new InputError(`cannot read input ${path}: it is a directory`, 'input_unreadable');
      if (info.isFile()) sizeBytes = info.size;
    } catch (error) {
      if (error instanceof InputError) throw error;
      throw new InputError(`cannot read input ${path}: ${reasonOf(error)}`, 'input_unreadable', { cause: error });
    }
    raw = await openReadable(path);
  }
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  raw.on('error', (error) => counter.destroy(error));
  let stream: Readable = raw.pipe(counter);
  let gunzip: Gunzip | null = null;
  if (/\.gz$/i.test(path)) {
    gunzip = createGunzip();
    counter.on('error', (error) => gunzip?.destroy(error));
    // A cut-short or non-gzip file is unreadable input (exit 1), not an unexpected zlib error.
    const decompressed = new PassThrough();
    gunzip.on('error', (error) =>
      decompressed.destroy(new InputError(`cannot read input ${path}: ${error.message}`, 'input_unreadable', { cause: error })),
    );
    stream = counter.pipe(gunzip).pipe(decompressed);
  }
  return {
    path,
    stream,
    sizeBytes,
    bytesRead: () => bytes,
    close: () => {
      stream.destroy();
      gunzip?.destroy();
      if (raw !== stdin) raw.destroy();
    },
  };
}

/** Opens a file stream and waits until it is really open, so permission errors surface here. */
async function openReadable(path: string): Promise<Readable> {
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (error) =>
      reject(new InputError(`cannot read input ${path}: ${reasonOf(error)}`, 'input_unreadable', { cause: error })),
    );
  });
  return stream;
}

function reasonOf(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  return e.message ?? String(error);
}

const NEWLINE = 0x0a;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Reads records from a decompressed byte stream. An input whose first
 * non-space byte is `[` is one JSON array, streamed element by element.
 */
export async function* readRecords(stream: AsyncIterable<Buffer>, maxLineBytes = DEFAULT_MAX_LINE_BYTES): AsyncGenerator<RawRecord> {
  const iterator = stream[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let first: number | undefined;
  // Peek until the first meaningful byte (after a BOM, which may arrive split) decides the mode.
  let ended = false;
  while (first === undefined && !ended) {
    const next = await iterator.next();
    if (next.done) ended = true;
    else head = Buffer.concat([head, next.value as Buffer]);
    if (head.length < 3 && !ended) continue;
    const offset = head.subarray(0, 3).equals(BOM) ? 3 : 0;
    for (let i = offset; i < head.length; i++) {
      const byte = head[i] as number;
      if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d && byte !== 0x0a) {
        first = byte;
        break;
      }
    }
  }
  if (head.subarray(0, 3).equals(BOM)) head = head.subarray(3);
  const rest: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      if (head.length > 0) yield head;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value as Buffer;
    },
  };
  if (first === 0x5b /* [ */) yield* readArray(rest);
  else yield* readLines(rest, maxLineBytes);
}

/** Splits a byte stream into lines, dropping any line longer than maxLineBytes as it streams. */
export async function* readLines(chunks: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<RawRecord> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  let line = 0;
  let tooLong = false; // the current line passed the limit; its bytes are being skipped
  let skipped = 0;
  let atStart = true;

  const finishLine = (tail: Buffer): RawRecord | null => {
    line += 1;
    if (tooLong) {
      const bytes = skipped + tail.length;
      tooLong = false;
      skipped = 0;
      return { kind: 'too_long', line, bytes };
    }
    const buffer = parts.length === 0 ? tail : Buffer.concat([...parts, tail], partBytes + tail.length);
    parts = [];
    partBytes = 0;
    if (buffer.length > maxLineBytes) return { kind: 'too_long', line, bytes: buffer.length };
    let text = buffer.toString('utf8');
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (isBlank(text)) return null;
    return { kind: 'text', line, text };
  };

  for await (let chunk of chunks) {
    if (atStart) {
      atStart = false;
      if (chunk.subarray(0, 3).equals(BOM)) chunk = chunk.subarray(3);
    }
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      const record = finishLine(chunk.subarray(start, nl));
      if (record) yield record;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const tail = chunk.subarray(start);
      if (tooLong) {
        skipped += tail.length;
      } else if (partBytes + tail.length > maxLineBytes) {
        tooLong = true;
        skipped = partBytes + tail.length;
        parts = [];
        partBytes = 0;
      } else {
        // Copy: the stream may reuse its buffer.
        parts.push(Buffer.from(tail));
        partBytes += tail.length;
      }
    }
  }
  if (partBytes > 0 || tooLong) {
    const record = finishLine(Buffer.alloc(0));
    if (record) yield record;
  }
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

/**
 * Streams the elements of one top-level JSON array with stream-json.
 * The parser's output goes through a PassThrough of our own: iterating the
 * parser itself would throw on its error and drop the elements it had
 * already parsed but we had not yet pulled.
 */
async function* readArray(chunks: AsyncIterable<Buffer>): AsyncGenerator<RawRecord> {
  const parser = streamArray.withParserAsStream();
  const source = Readable.from(chunks);
  const elements = new PassThrough({ objectMode: true });
  let failure: Error | null = null;
  source.on('error', (error) => parser.destroy(error));
  parser.on('error', (error: Error) => {
    failure = error;
    elements.end();
  });
  source.pipe(parser).pipe(elements);
  let index = 0;
  try {
    for await (const item of elements as AsyncIterable<{ key: number; value: unknown }>) {
      index = item.key + 1;
      yield { kind: 'value', line: index, value: item.value };
    }
    if (failure !== null) {
      yield {
        kind: 'broken',
        line: index + 1,
        message: `the JSON array input is not valid JSON after element ${index}: ${(failure as Error).message}`,
      };
    }
  } finally {
    source.destroy();
    parser.destroy();
  }
}

/**
 * How many records a JSONL input holds (non-blank lines), for the progress
 * share before reading has reached the end; null for stdin or an input that
 * is one JSON array. One pass of native newline searches (a 200 MB file in
 * a fraction of a second; a .gz input is decompressed off the main thread),
 * run beside the real read. A line of spaces only counts as a record here
 * (the reader skips it); the exact count replaces this once reading ends.
 */
export async function countRecords(path: string): Promise<number | null> {
  if (path === '-') return null;
  const source = await openInput(path);
  let records = 0;
  // The part of the current line seen in earlier chunks: its length, and whether it is a lone CR.
  let pendingLength = 0;
  let isPendingCr = false;
  let isFirstChunk = true;
  const isRecord = (length: number, isLoneCr: boolean): boolean => length > 0 && !(length === 1 && isLoneCr);
  try {
    for await (const chunk of source.stream as AsyncIterable<Buffer>) {
      if (isFirstChunk && chunk.length > 0) {
        isFirstChunk = false;
        if (chunk.subarray(0, 64).toString('utf8').replace(/^\uFEFF/, '').trimStart().startsWith('[')) return null;
      }
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
        const length = pendingLength + (nl - start);
        const isLoneCr = nl > start ? chunk[start] === 0x0d : isPendingCr;
        if (isRecord(length, isLoneCr)) records += 1;
        pendingLength = 0;
        isPendingCr = false;
        start = nl + 1;
      }
      const rest = chunk.length - start;
      if (rest > 0) {
        isPendingCr = pendingLength === 0 && rest === 1 && chunk[start] === 0x0d;
        pendingLength += rest;
      }
    }
  } finally {
    source.close();
  }
  // A last line without its newline is a record too.
  if (isRecord(pendingLength, isPendingCr)) records += 1;
  return records;
}
