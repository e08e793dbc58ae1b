// The response cache (DESIGN.md §7): successful answers in an embedded
// database on this machine, so that no answer is bought twice.
//
// In:  a request's endpoint and body (the key), a successful answer.
// Out: the stored answer of an identical request, if any (and young enough).
// Owns: the key (sha256 of the canonical JSON, keys sorted, of endpoint +
// body), the file (LMDB through the `lmdb` package; several processes on one
// machine may share it), age limits, stats, pruning.
//
// Why LMDB: its prebuilt binary comes from the npm registry (an install takes
// seconds), where better-sqlite3 compiles from source here (~95 s of CPU on 2
// cores); 100,000 puts 0.7 s and gets 0.24 s (STACK.md). It is loaded only
// when a cache is used, so `run` without one starts as fast as before.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open as openFile, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Endpoint } from '../shared/types.js';

/** One stored answer. */
export interface CachedAnswer {
  /** The entry's own key: a read whose key differs (a damaged file) answers nothing. Set by put. */
  key?: string;
  /** When it was stored, epoch ms. */
  storedAt: number;
  /** The run (or batch download) that stored it: an answer stored by the current run is a dedup, not a hit. */
  runId: string;
  status: number;
  /** The request id of the answer as bought. */
  requestId: string | null;
  /** The answer's body, its JSON text as received. */
  body: string;
  /** Bought through the Batch API (at the batch rate). */
  batch: boolean;
}

export interface CacheStats {
  path: string;
  entries: number;
  bytes: number;
  oldest: number | null;
  newest: number | null;
}

export interface ResponseCache {
  readonly path: string;
  /** The stored answer for `key` no older than the cache's age limit, or undefined. */
  get(key: string): CachedAnswer | undefined;
  /** Stores an answer (written in the background, batched; committed by close). */
  put(key: string, answer: CachedAnswer): void;
  /** Entries, size on disk, oldest and newest entry. */
  stats(): Promise<CacheStats>;
  /** Removes entries stored before `beforeMs`; resolves to how many. */
  prune(beforeMs: number): Promise<number>;
  /** Removes every entry; resolves to how many there were. */
  clear(): Promise<number>;
  /** Why storing failed, if it did (a full disk): the cache then stores nothing more, and the run goes on. */
  readonly failure: string | null;
  /** Commits what is pending and closes the file. */
  close(): Promise<void>;
}

/** `$XDG_CACHE_HOME/oai-batch/responses.lmdb`, else `~/.cache/oai-batch/responses.lmdb`. */
export function defaultCachePath(env: Record<string, string | undefined>): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(env.HOME || homedir(), '.cache');
  return join(base, 'oai-batch', 'responses.lmdb');
}

/**
 * The cache key of a request: sha256 of the canonical JSON (object keys
 * sorted at every depth) of `{endpoint, body}`. The body is what is sent: our
 * own top-level `metadata` is already out of it, the API's `body.metadata`
 * (batch form) is in it.
 */
export function cacheKey(endpoint: Endpoint, body: unknown): string {
  return createHash('sha256').update(canonicalJson({ endpoint, body })).digest('base64url');
}

/** JSON with object keys sorted at every depth (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  const object = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(object).sort()) {
    if (object[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(object[key])}`);
  }
  return `{${parts.join(',')}}`;
}

export interface OpenCacheOptions {
  /** Entries older than this are ignored (--cache-ttl), ms. Default: no limit. */
  ttlMs?: number;
  now?: () => number;
}

/**
 * Opens (creating if needed) the cache file at `path`. Throws with a clear
 * message when the file is unreadable or not a cache; callers decide whether
 * to go on without it.
 */
export async function openResponseCache(path: string, options: OpenCacheOptions = {}): Promise<ResponseCache> {
  await mkdir(dirname(path), { recursive: true });
  await checkCacheFile(path);
  let lmdb: typeof import('lmdb');
  try {
    lmdb = await import('lmdb');
  } catch (error) {
    throw new Error(`the lmdb package could not be loaded (${(error as Error).message})`);
  }
  // Measured on 20,000 misses at full speed: compression cost ~8 µs a put for a
  // file ~35 % smaller; an fsync per commit doubled the system time. So no
  // compression, answers written in one transaction every 100 ms, and the
  // file synced every few seconds and at close instead of at each commit: a
  // machine crash (not a process crash) may lose the latest answers, and a
  // damaged entry can never answer (each entry carries its own key, checked
  // on every read).
  const db = lmdb.open<CachedAnswer, string>({ path, noSubdir: true, compression: false, cache: false, noSync: true });
  // A file that is not an LMDB environment fails on first use, not always on open: use it once now.
  db.get('\u0000probe');
  return new LmdbCache(path, db, options);
}

/** A cache private to one run (in-run dedup without --cache), removed when closed. */
export async function openTemporaryCache(): Promise<ResponseCache> {
  const path = join(tmpdir(), `oai-batch-dedup-${process.pid}-${Date.now().toString(36)}.lmdb`);
  const cache = await openResponseCache(path);
  return {
    path,
    get: (key) => cache.get(key),
    put: (key, answer) => cache.put(key, answer),
    stats: () => cache.stats(),
    prune: (beforeMs) => cache.prune(beforeMs),
    clear: () => cache.clear(),
    get failure() {
      return cache.failure;
    },
    async close() {
      await cache.close();
      await rm(path, { force: true });
      await rm(`${path}-lock`, { force: true });
    },
  };
}

class LmdbCache implements ResponseCache {
  readonly path: string;
  readonly #db: import('lmdb').RootDatabase<CachedAnswer, string>;
  readonly #ttlMs: number | undefined;
  readonly #now: () => number;
  /** Answers put but not yet written: a get must see them at once. */
  #pending = new Map<string, CachedAnswer>();
  #writeTimer: NodeJS.Timeout | null = null;
  readonly #syncTimer: NodeJS.Timeout;
  #failure: string | null = null;

  constructor(path: string, db: import('lmdb').RootDatabase<CachedAnswer, string>, options: OpenCacheOptions) {
    this.path = path;
    this.#db = db;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
    this.#syncTimer = setInterval(() => syncOf(db)(() => {}), SYNC_EVERY_MS);
    this.#syncTimer.unref();
  }

  get(key: string): CachedAnswer | undefined {
    const answer = this.#pending.get(key) ?? this.#db.get(key);
    if (!answer || !isCachedAnswer(answer) || answer.key !== key) return undefined;
    if (this.#ttlMs !== undefined && answer.storedAt < this.#now() - this.#ttlMs) return undefined;
    return answer;
  }

  get failure(): string | null {
    return this.#failure;
  }

  put(key: string, answer: CachedAnswer): void {
    if (this.#failure !== null) return;
    this.#pending.set(key, { ...answer, key });
    this.#writeTimer ??= setTimeout(() => this.#write(), WRITE_EVERY_MS);
    if (this.#pending.size >= WRITE_AT_ENTRIES) this.#write();
  }

  /**
   * Writes what is pending in one synchronous transaction: a failure (a full
   * disk) is an exception here, not a rejection deep in the library, and it
   * ends the storing, never the run.
   */
  #write(): void {
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = null;
    if (this.#pending.size === 0 || this.#failure !== null) return;
    const batch = this.#pending;
    try {
      this.#db.transactionSync(() => {
        for (const [key, entry] of batch) this.#db.putSync(key, entry);
      });
      this.#pending = new Map();
    } catch (error) {
      this.#failure = (error as Error).message;
      this.#pending = new Map();
    }
  }

  async stats(): Promise<CacheStats> {
    let entries = 0;
    let oldest: number | null = null;
    let newest: number | null = null;
    for (const { value } of this.#db.getRange()) {
      if (!isCachedAnswer(value)) continue;
      entries += 1;
      oldest = oldest === null ? value.storedAt : Math.min(oldest, value.storedAt);
      newest = newest === null ? value.storedAt : Math.max(newest, value.storedAt);
    }
    const bytes = await stat(this.path).then((info) => info.size, () => 0);
    return { path: this.path, entries, bytes, oldest, newest };
  }

  async prune(beforeMs: number): Promise<number> {
    const old: string[] = [];
    for (const { key, value } of this.#db.getRange()) if (!isCachedAnswer(value) || value.storedAt < beforeMs) old.push(key);
    this.#db.transactionSync(() => {
      for (const key of old) this.#db.removeSync(key);
    });
    return old.length;
  }

  async clear(): Promise<number> {
    const count = this.#db.getCount();
    this.#db.clearSync();
    return count;
  }

  async close(): Promise<void> {
    clearInterval(this.#syncTimer);
    this.#write();
    await new Promise<void>((resolve) => syncOf(this.#db)(() => resolve()));
    await this.#db.close();
  }
}

/** Answers are written in one transaction this often, or sooner when this many wait. */
const WRITE_EVERY_MS = 100;
const WRITE_AT_ENTRIES = 1000;

/** The environment's sync (lmdb-js has it on a root database, untyped): flushes the file to disk, then calls back. */
function syncOf(db: import('lmdb').RootDatabase<CachedAnswer, string>): (done: (error?: unknown) => void) => void {
  const sync = (db as unknown as { sync: (done: (error?: unknown) => void) => void }).sync;
  return (done) => sync.call(db, done);
}

/** How often the cache file is synced to disk while it is written. */
const SYNC_EVERY_MS = 5000;

/** LMDB's meta pages carry this magic number (MDB_MAGIC) after the page header. */
const LMDB_MAGIC = 0xbeefc0de;
const META_OFFSETS = [24, 4096 + 24, 16384 + 24];

/**
 * An existing file must be an LMDB environment that opens cleanly. The native
 * library trusts the file: a damaged one can crash the process outright, so it
 * is first opened and read in a short-lived child process; a crash there is
 * an error here.
 */
async function checkCacheFile(path: string): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // a new cache
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  if (size === 0) return;
  const header = Buffer.alloc(32 * 1024);
  const file = await openFile(path, 'r');
  let read: number;
  try {
    ({ bytesRead: read } = await file.read(header, 0, header.length, 0));
  } finally {
    await file.close();
  }
  const isLmdb = META_OFFSETS.some((offset) => offset + 4 <= read && header.readUInt32LE(offset) === LMDB_MAGIC);
  if (!isLmdb) throw new Error(`${path} is not a cache file (no LMDB header)`);
  try {
    await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', `import { open } from 'lmdb'; const db = open({ path: process.argv[1], noSubdir: true, readOnly: true }); let n = 0; for (const entry of db.getRange({ limit: 1000 })) n += entry.key.length; await db.close();`, resolve(path)],
      // From here, `lmdb` resolves to this package's own dependency.
      { cwd: dirname(new URL(import.meta.url).pathname), timeout: 30_000 },
    );
  } catch (error) {
    const signal = (error as { signal?: string | null }).signal;
    throw new Error(`${path} could not be read (it may be damaged${signal ? `: the reader died with ${signal}` : ''})`);
  }
}

function isCachedAnswer(value: unknown): value is CachedAnswer {
  const v = value as Partial<CachedAnswer> | null;
  return !!v && typeof v === 'object' && typeof v.storedAt === 'number' && typeof v.body === 'string' && typeof v.status === 'number';
}
