// record: append JSON lines to the results and errors files, and write the
// summary atomically.
//
// In:  records as they finish.  Out: bytes on disk.
// Owns: buffering, backpressure (writers await the disk), fsync, gzip members.
// Records written in one turn of the event loop are handed to the kernel
// together at the end of that turn, so a killed process loses no answer it
// had already recorded (only those still in flight); fsync, at least every
// second, covers a machine crash. A crash can tear at most the last line,
// and resume cuts a torn tail away.

import { createWriteStream, type WriteStream } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { constants as zlibConstants, createGzip, type Gzip } from 'node:zlib';
import { once } from 'node:events';
import { fsync } from 'node:fs';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);

export interface JsonlWriter {
  readonly path: string;
  /** Appends one record. Resolves at once unless the buffer is full (then it waits for the disk). */
  write(record: unknown): Promise<void>;
  /** Appends one already-serialised JSON line (without its newline). */
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

  private constructor(path: string, file: FileHandle) {
    this.path = path;
    this.#file = file;
  }

  static async open(path: string, options: WriterOptions): Promise<PlainJsonlWriter> {
    return new PlainJsonlWriter(path, await open(path, options.append ? 'a' : 'w'));
  }

  write(record: unknown): Promise<void> {
    return this.writeRaw(JSON.stringify(record));
  }

  #scheduled = false;

  writeRaw(json: string): Promise<void> {
    const line = json + '\n';
    this.#buffer.push(line);
    this.#bufferedBytes += line.length;
    if (this.#bufferedBytes >= HIGH_WATER_BYTES) return this.#flush();
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        void this.#flush().catch(() => {}); // a failing disk surfaces at the next sync()
      });
    }
    return Promise.resolve();
  }

  #flush(): Promise<void> {
    if (this.#buffer.length === 0) return this.#writing;
    const text = this.#buffer.join('');
    this.#buffer = [];
    this.#bufferedBytes = 0;
    this.#dirty = true;
    this.#writing = this.#writing.then(async () => {
      await this.#file.write(text);
    });
    return this.#writing;
  }

  async sync(): Promise<void> {
    await this.#flush();
    if (!this.#dirty) return;
    this.#dirty = false;
    await this.#file.sync();
  }

  async close(): Promise<void> {
    await this.sync();
    await this.#file.close();
  }
}

/**
 * Gzip output: each session appends a new gzip member (concatenated members
 * are one valid gzip stream). sync() does a zlib sync flush and an fsync so
 * everything written so far can be read back after a crash.
 */
class GzipJsonlWriter implements JsonlWriter {
  readonly path: string;
  readonly #gzip: Gzip;
  readonly #file: WriteStream;
  #dirty = false;

  private constructor(path: string, gzip: Gzip, file: WriteStream) {
    this.path = path;
    this.#gzip = gzip;
    this.#file = file;
  }

  static async open(path: string, options: WriterOptions): Promise<GzipJsonlWriter> {
    const file = createWriteStream(path, { flags: options.append ? 'a' : 'w' });
    await once(file, 'open');
    const gzip = createGzip();
    gzip.pipe(file);
    return new GzipJsonlWriter(path, gzip, file);
  }

  write(record: unknown): Promise<void> {
    return this.writeRaw(JSON.stringify(record));
  }

  #scheduled = false;

  async writeRaw(json: string): Promise<void> {
    this.#dirty = true;
    const ok = this.#gzip.write(json + '\n');
    if (!this.#scheduled) {
      // A sync flush per event-loop turn: what was recorded reaches the file even if the process is killed.
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (!this.#gzip.writableEnded) this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH);
      });
    }
    if (!ok) await once(this.#gzip, 'drain');
  }

  async sync(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    await new Promise<void>((resolve) => this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    // Wait until the flushed bytes reached the file stream's fd.
    if (this.#file.writableLength > 0) await once(this.#file, 'drain');
    const fd = (this.#file as unknown as { fd: number | null }).fd;
    if (typeof fd === 'number') await fsyncAsync(fd);
  }

  async close(): Promise<void> {
    this.#gzip.end();
    await once(this.#file, 'close');
  }
}

/** Writes a whole file atomically: a temporary file beside it, fsynced, then renamed over it. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}
