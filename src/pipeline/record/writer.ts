// record: append JSON lines to the results and errors files, and write the
// summary atomically.
//
// In:  records as they finish.  Out: bytes on disk.
// Owns: buffering, backpressure (writers await the disk), fsync, gzip members.
// Records written in one turn of the event loop are handed to the kernel
// together at the end of that turn, so a killed process loses no answer it
// had already recorded (only those still in flight); fsync, at least every
// second, covers a machine crash. A crash can tear at most the last line,
// and resume cuts a torn tail away. A write, flush or close that fails (a
// full disk) rejects with a WriteError naming the file, for that call and
// every later one: a caller never counts a line the file did not accept.

import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { constants as zlibConstants, createGzip, type Gzip } from 'node:zlib';
import { once } from 'node:events';
import { WriteError } from '../../shared/errors.js';

export interface JsonlWriter {
  readonly path: string;
  /** Appends one record. Resolves once it has been handed to the kernel (with the other lines of this turn). */
  write(record: unknown): Promise<void>;
  /** Appends one already-serialised JSON line (without its newline); resolves like write(). */
  writeRaw(json: string): Promise<void>;
  /** Writes what is buffered and fsyncs it. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface WriterOptions {
  /** Append to an existing file (resume) instead of starting it afresh. */
  append: boolean;
}

/** Bytes buffered before a write is forced (and callers wait for it). */
const HIGH_WATER_BYTES = 256 * 1024;

export async function openJsonlWriter(path: string, options: WriterOptions): Promise<JsonlWriter> {
  return /\.gz$/i.test(path) ? GzipJsonlWriter.open(path, options) : PlainJsonlWriter.open(path, options);
}

class PlainJsonlWriter implements JsonlWriter {
  readonly path: string;
  readonly #file: FileHandle;
  #buffer: string[] = [];
  #bufferedBytes = 0;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;
  /** The flush that will carry what is buffered now; resolves once it is in the kernel. */
  #nextFlush: Promise<void> | null = null;

  private constructor(path: string, file: FileHandle) {
    this.path = path;
    this.#file = file;
  }

  static async open(path: string, options: WriterOptions): Promise<PlainJsonlWriter> {
    return new PlainJsonlWriter(path, await openFile(path, options.append ? 'a' : 'w'));
  }

  write(record: unknown): Promise<void> {
    return this.writeRaw(JSON.stringify(record));
  }

  writeRaw(json: string): Promise<void> {
    const line = json + '\n';
    this.#buffer.push(line);
    this.#bufferedBytes += line.length;
    if (this.#bufferedBytes >= HIGH_WATER_BYTES) return this.#flush();
    // Coalesce the lines of one event-loop turn into one write at its end.
    this.#nextFlush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.#flush().then(resolve, reject);
      });
    });
    return this.#nextFlush;
  }

  #flush(): Promise<void> {
    this.#nextFlush = null;
    if (this.#buffer.length === 0) return this.#writing;
    const text = this.#buffer.join('');
    this.#buffer = [];
    this.#bufferedBytes = 0;
    this.#dirty = true;
    this.#writing = this.#writing.then(() => writeAll(this.#file, this.path, Buffer.from(text)));
    return this.#writing;
  }

  async sync(): Promise<void> {
    await this.#flush();
    if (!this.#dirty) return;
    this.#dirty = false;
    await this.#file.sync().catch((error: unknown) => {
      throw new WriteError(this.path, error);
    });
  }

  async close(): Promise<void> {
    try {
      await this.sync();
    } finally {
      await this.#file.close().catch(() => {});
    }
  }
}

/**
 * Gzip output: each session appends a new gzip member (concatenated members
 * are one valid gzip stream). The lines of one event-loop turn end with a
 * zlib sync flush, so what was recorded can be read back after a kill; the
 * compressed bytes go to the file through one serialised chain of writes.
 */
class GzipJsonlWriter implements JsonlWriter {
  readonly path: string;
  readonly #gzip: Gzip;
  readonly #file: FileHandle;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;
  #nextFlush: Promise<void> | null = null;
  /** The one wait for 'drain' that every writer blocked on backpressure shares (one listener, not one per write). */
  #drained: Promise<void> | null = null;

  private constructor(path: string, gzip: Gzip, file: FileHandle) {
    this.path = path;
    this.#gzip = gzip;
    this.#file = file;
    gzip.on('data', (chunk: Buffer) => {
      this.#writing = this.#writing.then(() => writeAll(this.#file, this.path, chunk));
      // Handled where it is awaited (the next flush or close); no one may be awaiting it yet.
      this.#writing.catch(() => {});
    });
  }

  static async open(path: string, options: WriterOptions): Promise<GzipJsonlWriter> {
    const file = await openFile(path, options.append ? 'a' : 'w');
    return new GzipJsonlWriter(path, createGzip(), file);
  }

  write(record: unknown): Promise<void> {
    return this.writeRaw(JSON.stringify(record));
  }

  async writeRaw(json: string): Promise<void> {
    this.#dirty = true;
    if (!this.#gzip.write(json + '\n')) await this.#drain();
    this.#nextFlush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.#nextFlush = null;
        this.#syncFlush().then(resolve, reject);
      });
    });
    return this.#nextFlush;
  }

  #drain(): Promise<void> {
    this.#drained ??= once(this.#gzip, 'drain').then(
      () => {
        this.#drained = null;
      },
      (error: unknown) => {
        this.#drained = null;
        throw error;
      },
    );
    return this.#drained;
  }

  /** A zlib sync flush, then every compressed byte so far handed to the kernel. */
  async #syncFlush(): Promise<void> {
    if (!this.#gzip.writableEnded) {
      await new Promise<void>((resolve) => this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    }
    // Let the flushed output's 'data' events queue their writes, then wait for them.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.#writing;
  }

  async sync(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    await this.#syncFlush();
    await this.#file.sync().catch((error: unknown) => {
      throw new WriteError(this.path, error);
    });
  }

  async close(): Promise<void> {
    try {
      const ended = once(this.#gzip, 'end');
      this.#gzip.end();
      await ended;
      await this.#writing;
      await this.#file.sync().catch((error: unknown) => {
        throw new WriteError(this.path, error);
      });
    } finally {
      await this.#file.close().catch(() => {});
    }
  }
}

async function openFile(path: string, flags: 'a' | 'w'): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (error) {
    throw new WriteError(path, error);
  }
}

/**
 * Writes every byte: a write may take fewer bytes than it was given (a disk
 * nearly full), and the rest must follow, or fail with the reason.
 */
async function writeAll(file: FileHandle, path: string, bytes: Buffer): Promise<void> {
  let offset = 0;
  try {
    while (offset < bytes.length) {
      const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
      if (bytesWritten <= 0) throw Object.assign(new Error('the device took no bytes'), { code: 'EIO' });
      offset += bytesWritten;
    }
  } catch (error) {
    throw error instanceof WriteError ? error : new WriteError(path, error);
  }
}

/** Closes every writer; rejects with the first failure once all are closed (a full disk must not pass unnoticed). */
export async function closeWriters(...writers: JsonlWriter[]): Promise<void> {
  const closed = await Promise.allSettled(writers.map((writer) => writer.close()));
  const failed = closed.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

let temporaryCount = 0;

/** Writes a whole file atomically: a temporary file beside it, fsynced, then renamed over it. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  // One temporary name per call: two writes of the same path at once must not share (and mix) one file.
  temporaryCount += 1;
  const temporary = `${path}.tmp-${process.pid}-${temporaryCount}`;
  try {
    const file = await open(temporary, 'w');
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw new WriteError(path, error);
  }
}
