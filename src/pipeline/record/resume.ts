// resume: read back an existing results file before a run appends to it.
//
// In:  the results path.  Out: the custom_ids that succeeded (a KeySet), the
//      usage of those successes fed to a visitor, whether any key is `line-N`.
// Owns: torn-tail repair. A crash can leave a last line without its newline;
// it is cut away (the file truncated to the last complete line), never parsed
// as a record. A .gz results file cannot be truncated in place: its readable
// records are rewritten into a fresh file instead.

import { createReadStream } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { KeySet } from '../../shared/keyset.js';
import { isLineKey, isSuccessRecord } from '../../shared/records.js';
import { openJsonlWriter } from './writer.js';
import type { ResultRecord } from '../../shared/types.js';

export interface ResumeIndex {
  /** custom_ids with a success in the results file. */
  done: KeySet;
  /** Success records read (one per custom_id; repeats are ignored). */
  succeeded: number;
  /** Whether some succeeded custom_id has the `line-N` form (keys tied to line numbers). */
  hasLineKeys: boolean;
  /** Bytes of a torn last line that were cut away (0 when the file ended cleanly). */
  tornBytes: number;
  /** Complete lines that were not valid records (left in place, ignored). */
  unreadableLines: number;
}


export interface IndexOptions {
  /**
   * Cut a torn last line away (default true: the file is about to be
   * appended to). False only reads: for a reader that will not write the
   * file (batch submit), which must not truncate a file a run may be writing.
   */
  repair?: boolean;
}

/**
 * Indexes the successes in `path` and repairs a torn tail. `onSuccess` sees
 * each first success for a custom_id (to count earlier usage and cost).
 */
export async function indexResults(
  path: string,
  onSuccess: (record: ResultRecord) => void,
  options: IndexOptions = {},
): Promise<ResumeIndex> {
  const repair = options.repair ?? true;
  const index: ResumeIndex = { done: new KeySet(), succeeded: 0, hasLineKeys: false, tornBytes: 0, unreadableLines: 0 };
  const visit = (text: string): void => {
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      index.unreadableLines += 1;
      return;
    }
    if (!isSuccessRecord(value)) return;
    if (!index.done.add(value.custom_id)) return;
    index.succeeded += 1;
    if (isLineKey(value.custom_id)) index.hasLineKeys = true;
    onSuccess(value);
  };

  if (/\.gz$/i.test(path)) {
    if (repair) await indexGzip(path, visit, index);
    else await scanGzip(path, visit);
  } else {
    const completeBytes = await forEachCompleteLine(createReadStream(path), visit);
    const { size } = await stat(path);
    if (repair && size > completeBytes) {
      index.tornBytes = size - completeBytes;
      const file = await open(path, 'r+');
      try {
        await file.truncate(completeBytes);
        await file.sync();
      } finally {
        await file.close();
      }
    }
  }
  return index;
}

/** Calls `visit` for every newline-terminated line; returns the bytes up to and including the last newline. */
async function forEachCompleteLine(stream: Readable, visit: (text: string) => void): Promise<number> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let complete = 0;
  let offset = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        const line = pending.length ? Buffer.concat([...pending, piece], pendingBytes + piece.length) : piece;
        pending = [];
        pendingBytes = 0;
        visit(line.toString('utf8'));
        complete = offset + nl + 1;
        start = nl + 1;
      }
      if (start < chunk.length) {
        pending.push(Buffer.from(chunk.subarray(start)));
        pendingBytes += chunk.length - start;
      }
      offset += chunk.length;
    }
  } catch (error) {
    // A gzip stream cut short by a crash ends in an error: keep what was readable.
    if (!isTruncatedGzip(error)) throw error;
  }
  return complete;
}

function isTruncatedGzip(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR' || /unexpected end/i.test(String((error as Error).message));
}

async function indexGzip(path: string, visit: (text: string) => void, index: ResumeIndex): Promise<void> {
  const first = await scanGzip(path, visit);
  if (first.clean) return;
  // Cut the torn tail: copy the complete lines into a fresh file, then swap it in.
  index.tornBytes = Math.max(1, first.decompressed - first.completeBytes);
  const temporary = `${path}.repair-${process.pid}.gz`;
  const writer = await openRawWriter(temporary);
  let copied = 0;
  await scanGzip(path, (text) => {
    copied += Buffer.byteLength(text) + 1;
    if (copied <= first.completeBytes) writer.push(text);
  });
  await writer.close();
  await rename(temporary, path);
}

async function scanGzip(
  path: string,
  visit: (text: string) => void,
): Promise<{ clean: boolean; completeBytes: number; decompressed: number }> {
  const gunzip = createGunzip();
  let decompressed = 0;
  let failed = false;
  gunzip.on('data', (chunk: Buffer) => (decompressed += chunk.length));
  createReadStream(path).pipe(gunzip);
  const counting = new Readable({ read() {} });
  gunzip.on('data', (chunk: Buffer) => counting.push(chunk));
  gunzip.on('end', () => counting.push(null));
  gunzip.on('error', (error) => {
    failed = isTruncatedGzip(error);
    if (failed) counting.push(null);
    else counting.destroy(error);
  });
  const completeBytes = await forEachCompleteLine(counting, visit);
  return { clean: !failed && completeBytes === decompressed, completeBytes, decompressed };
}

/** A gzip JSONL writer for already-serialised lines. */
async function openRawWriter(path: string): Promise<{ push(text: string): void; close(): Promise<void> }> {
  const writer = await openJsonlWriter(path, { append: false });
  let chain = Promise.resolve();
  return {
    push(text: string) {
      chain = chain.then(() => writer.writeRaw(text));
    },
    async close() {
      await chain;
      await writer.close();
    },
  };
}
