// The Redis BudgetStore: the budgets of every worker sharing a scope, in one
// Redis (DESIGN.md §6). Each operation is one atomic Lua script
// (redis-budget.lua.ts) on Redis's own clock, so two workers can never both
// take the last permit and their clocks need not agree.
//
// In/Out: the BudgetStore operations (budget-store.ts).
// Owns: the connection (official `redis` client), the key names of a scope
//       (oai-batch:budget:<scope>:<model>, one hash per model, expiring when
//       idle), waiting out a lost connection up to `timeoutMs` and then
//       failing with BudgetStoreUnavailableError (never a private fallback),
//       re-seeding the limits this worker knew into a Redis that restarted empty.
// The password in the URL never appears in a message: see redisUrlForDisplay.

import { ClientOfflineError, createClient, ErrorReply } from 'redis';
import { BudgetStoreUnavailableError, ConnectionError, OaiBatchError } from '../shared/errors.js';
import { redisSecretsOf, redisUrlForDisplay, scrubSecrets } from './redis-url.js';
import { lowestLimit, type BucketRates, type BudgetStore, type SharedModelState, type TakeManyResult, type TakeResult } from './budget-store.js';
import { BUDGET_SCRIPT } from './redis-budget.lua.js';

export interface RedisBudgetStoreOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). Never printed. */
  url: string;
  /** Workers with the same scope share one budget (--budget-scope, or a hash of base URL, key and project). */
  scope: string;
  /** How long operations wait for a lost Redis before failing, ms (--redis-timeout). Default 60,000. */
  timeoutMs?: number;
  /** How long the first connection may take before the start fails, ms. Default 5,000 (or timeoutMs if lower). */
  connectTimeoutMs?: number;
  /** An idle model's budget expires after this long, ms. Default 600,000 (10 minutes). */
  idleTtlMs?: number;
  /** The clock the scripts run on (tests inject one). Default: Redis's own (TIME). */
  now?: () => number;
  /** Told when the connection is lost and when it is back (for a notice; never carries the URL's secrets). */
  onStatus?: (status: RedisStatus) => void;
}

export type RedisStatus =
  | { kind: 'lost'; display: string; reason: string; timeoutMs: number }
  | { kind: 'restored'; display: string; afterMs: number };

/** Default --redis-timeout, seconds. */
export const DEFAULT_REDIS_TIMEOUT_SECONDS = 60;
const DEFAULT_IDLE_TTL_MS = 10 * 60_000;
/** One attempt of an operation may take this long before it counts as a lost connection. */
const ATTEMPT_TIMEOUT_MS = 5_000;
/**
 * Only a take waits the whole timeout for a lost Redis. Publishing limits and
 * a 429's pause wait this long at most: the limiter keeps the limits itself
 * (and this store writes them back), and must not hold an answer for the store.
 */
const SIDE_PATIENCE_MS = 2_000;
/** A read is for display: one short attempt, no waiting. */
const READ_TIMEOUT_MS = 1_000;
/** While Redis is away, operations look again this often (or as soon as the client is back). */
const RETRY_EVERY_MS = 200;

type Client = ReturnType<typeof newClient>;

/** What a script answers: granted, waitMs, limitRpm, limitTpm, pausedForMs, rateFactor ('' = null). */
type Reply = [string, string, string, string, string, string];

export class RedisBudgetStore implements BudgetStore {
  readonly #client: Client;
  readonly #display: string;
  readonly #secrets: string[];
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #idleTtlMs: number;
  readonly #now: (() => number) | undefined;
  readonly #onStatus: ((status: RedisStatus) => void) | undefined;
  #sha: string;
  /** When operations started failing (Date.now), or null while Redis answers. */
  #downSince: number | null = null;
  #lastError: unknown = null;
  /** The connection's own last error (refused, reset…): says more than "the client is offline". */
  #socketError: unknown = null;
  #isClosed = false;
  /** The lowest limits this worker has seen per model: written back into a Redis that lost them. */
  readonly #known = new Map<string, { rpm: number | null; tpm: number | null }>();

  /** Use connectRedisBudgetStore: it checks the connection and loads the script first. */
  constructor(client: Client, sha: string, options: RedisBudgetStoreOptions) {
    this.#client = client;
    this.#sha = sha;
    this.#display = redisUrlForDisplay(options.url);
    this.#secrets = redisSecretsOf(options.url);
    this.#prefix = budgetKeyPrefix(options.scope);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_SECONDS * 1000;
    this.#idleTtlMs = options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
    this.#now = options.now;
    this.#onStatus = options.onStatus;
    client.on('error', (error: unknown) => {
      this.#socketError = error;
    });
  }

  async take(model: string, tokens: number, rates: BucketRates): Promise<TakeResult> {
    const { granted, waitMs, state } = await this.takeMany(model, [tokens], rates);
    return granted === 1 ? { granted: true, state } : { granted: false, waitMs, state };
  }

  /** One round trip for a worker's queued requests: in order, stopping at the first that must wait. */
  async takeMany(model: string, charges: readonly number[], rates: BucketRates): Promise<TakeManyResult> {
    const known = this.#known.get(model);
    const reply = await this.#run(model, 'take', [rates.rpm, rates.tpm, rates.burstMs, known?.rpm ?? null, known?.tpm ?? null, ...charges], this.#timeoutMs);
    return { granted: Number(reply[0]), waitMs: parseNumber(reply[1]) ?? 0, state: this.#state(model, reply) };
  }

  /** Waits at most a couple of seconds for a lost Redis; the limits are kept here either way and written back by the next take. */
  async publishLimits(model: string, limits: { rpm: number | null; tpm: number | null }): Promise<SharedModelState> {
    this.#know(model, limits.rpm, limits.tpm);
    return this.#state(model, await this.#run(model, 'publish', [limits.rpm, limits.tpm], Math.min(SIDE_PATIENCE_MS, this.#timeoutMs)));
  }

  /** Waits at most a couple of seconds for a lost Redis (then BudgetStoreUnavailableError: the pause is not shared). */
  async pause(model: string, pauseMs: number): Promise<SharedModelState> {
    return this.#state(model, await this.#run(model, 'pause', [pauseMs], Math.min(SIDE_PATIENCE_MS, this.#timeoutMs)));
  }

  /** No side effects, and no waiting: while Redis is away it fails at once (callers show what they last knew). */
  async read(model: string): Promise<SharedModelState> {
    return this.#state(model, await this.#run(model, 'read', [], null));
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    if (this.#client.isReady) {
      await this.#client.close().catch(() => this.#client.destroy());
    } else {
      this.#client.destroy();
    }
  }

  /**
   * Runs the script. While Redis is away, tries again until it has been away
   * `patienceMs` in all (counted from the first failure of any operation);
   * null = one short attempt.
   */
  async #run(model: string, op: string, args: Array<number | null>, patienceMs: number | null): Promise<Reply> {
    const argv = [op, this.#now ? String(this.#now()) : '', String(this.#idleTtlMs), ...args.map((a) => (a === null ? '' : String(a)))];
    const key = this.#prefix + model;
    for (;;) {
      if (this.#isClosed) throw new OaiBatchError('the Redis budget store was closed', 'limiter_closed');
      try {
        const reply = await this.#attempt(key, argv, patienceMs === null ? READ_TIMEOUT_MS : ATTEMPT_TIMEOUT_MS);
        this.#restored();
        return reply;
      } catch (error) {
        if (error instanceof ErrorReply && !isTransientReply(error)) {
          throw new BudgetStoreUnavailableError(`Redis at ${this.#display} refused the budget script: ${this.#scrub(error.message)}`, { cause: error });
        }
        this.#lost(error);
        const downForMs = Date.now() - (this.#downSince ?? Date.now());
        if (patienceMs === null || downForMs >= patienceMs) throw this.#unavailable(downForMs);
        await this.#readyOrAfter(Math.min(RETRY_EVERY_MS, patienceMs - downForMs));
      }
    }
  }

  async #attempt(key: string, argv: string[], timeoutMs: number): Promise<Reply> {
    const call = async (): Promise<unknown> => {
      try {
        return await this.#client.evalSha(this.#sha, { keys: [key], arguments: argv });
      } catch (error) {
        // A restarted Redis has forgotten the script: load it again.
        if (!(error instanceof ErrorReply && error.message.startsWith('NOSCRIPT'))) throw error;
        this.#sha = await this.#client.scriptLoad(BUDGET_SCRIPT);
        return await this.#client.evalSha(this.#sha, { keys: [key], arguments: argv });
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const attempt = call();
    attempt.catch(() => {}); // a late failure after the timeout is not an unhandled rejection
    try {
      const reply = await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      if (!isReply(reply)) throw new OaiBatchError(`unexpected answer from the budget script: ${JSON.stringify(reply)}`, 'budget_store_unavailable');
      return reply;
    } finally {
      clearTimeout(timer);
    }
  }

  #lost(error: unknown): void {
    this.#lastError = error;
    if (this.#downSince !== null) return;
    this.#downSince = Date.now();
    this.#onStatus?.({ kind: 'lost', display: this.#display, reason: this.#reason(), timeoutMs: this.#timeoutMs });
  }

  #restored(): void {
    if (this.#downSince === null) return;
    const afterMs = Date.now() - this.#downSince;
    this.#downSince = null;
    this.#onStatus?.({ kind: 'restored', display: this.#display, afterMs });
  }

  #unavailable(downForMs: number): BudgetStoreUnavailableError {
    return new BudgetStoreUnavailableError(
      `lost the shared budget in Redis at ${this.#display} for ${Math.round(downForMs / 1000)} s (--redis-timeout ${this.#timeoutMs / 1000}): ${this.#reason()}; ` +
        'stopping rather than sending on a private budget; --resume continues once Redis is back',
      { cause: this.#lastError },
    );
  }

  #reason(): string {
    const error = this.#lastError instanceof ClientOfflineError && this.#socketError !== null ? this.#socketError : this.#lastError;
    return this.#scrub(messageOf(error ?? 'connection lost'));
  }

  #scrub(text: string): string {
    return scrubSecrets(text, this.#secrets);
  }

  /** Resolves when the client is ready again, or after `ms`. */
  #readyOrAfter(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.#client.on('ready', done);
    });
  }

  #state(model: string, reply: Reply): SharedModelState {
    const state: SharedModelState = {
      limitRpm: parseNumber(reply[2]),
      limitTpm: parseNumber(reply[3]),
      pausedForMs: parseNumber(reply[4]) ?? 0,
      rateFactor: parseNumber(reply[5]) ?? 1,
    };
    this.#know(model, state.limitRpm, state.limitTpm);
    return state;
  }

  #know(model: string, rpm: number | null, tpm: number | null): void {
    const known = this.#known.get(model);
    this.#known.set(model, { rpm: lowestLimit(known?.rpm ?? null, rpm), tpm: lowestLimit(known?.tpm ?? null, tpm) });
  }
}

/**
 * Connects, checks Redis answers and loads the script: a Redis that is down
 * or refuses us fails here, before anything is sent (ConnectionError, exit 1).
 */
export async function connectRedisBudgetStore(options: RedisBudgetStoreOptions): Promise<RedisBudgetStore> {
  const display = redisUrlForDisplay(options.url);
  const secrets = redisSecretsOf(options.url);
  const timeoutMs = options.connectTimeoutMs ?? Math.min(5_000, options.timeoutMs ?? Infinity);
  let isStarting = true;
  let lastError: unknown = null;
  const client = newClient(options.url, timeoutMs, () => isStarting);
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const sha = await Promise.race([
      (async () => {
        await client.connect();
        return client.scriptLoad(BUDGET_SCRIPT);
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    isStarting = false;
    return new RedisBudgetStore(client, sha, options);
  } catch (error) {
    client.destroy();
    const reason = scrubSecrets(messageOf(error ?? lastError), secrets);
    throw new ConnectionError(`cannot reach Redis at ${display} (--redis): ${reason}; start it or fix the URL (or run without --redis for a budget of this process alone)`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

function newClient(url: string, connectTimeoutMs: number, isStarting: () => boolean) {
  return createClient({
    url,
    // Commands fail at once while the connection is down: the store decides how long to wait.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      // At start a failure is final; during a run the client keeps reconnecting (at most a second apart).
      reconnectStrategy: (retries: number) => (isStarting() ? false : Math.min(50 * 2 ** retries, 1000)),
    },
  });
}

/** The key prefix of a scope's budgets; each model's hash is this plus the model name. */
export function budgetKeyPrefix(scope: string): string {
  return `oai-batch:budget:${scope}:`;
}

function messageOf(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown } | null;
  if (e && typeof e.message === 'string' && e.message !== '') return e.message;
  return String(e?.code ?? error);
}

/** Replies worth waiting out: a Redis loading its data, busy with a script, or a replica taking over. */
function isTransientReply(error: ErrorReply): boolean {
  return /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|READONLY)\b/.test(error.message);
}

function isReply(value: unknown): value is Reply {
  return Array.isArray(value) && value.length === 6 && value.every((v) => typeof v === 'string');
}

function parseNumber(text: string): number | null {
  if (text === '') return null;
  if (text === 'inf') return Infinity;
  return Number(text);
}
