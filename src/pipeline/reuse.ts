// reuse: answers not bought twice (DESIGN.md §7), between plan and send.
//
// In:  a planned request, and the send stage to call when nothing can answer it.
// Out: the send stage's result, or a reused answer: a `hit` (stored in the
//      response cache by an earlier run or process) or a `dedup` (an
//      identical request of this run answered it: one in flight, whose
//      outcome it shares, or one finished earlier).
// Owns: the cache key of a request, which requests wait for an identical one
//       in flight, what goes into the cache (successes only, never failures).

import { randomBytes } from 'node:crypto';
import type { ResponseCache } from '../stores/response-cache.js';
import { cacheKey } from '../stores/response-cache.js';
import type { RequestItem } from '../shared/types.js';
import type { ResolvedRunOptions } from './options.js';
import type { ItemResult } from './send.js';

/** An answer that was not bought by this request. */
export interface ReusedAnswer {
  kind: 'reused';
  source: 'hit' | 'dedup';
  status: number;
  /** The request id of the answer as it was bought. */
  requestId: string | null;
  /** Its body's JSON text, and the body parsed. */
  text: string;
  json: unknown;
  /** It was bought through the Batch API (its saving is priced at the batch rate). */
  batch: boolean;
}

export interface ReuseOptions {
  /** The response cache (--cache), or a run-private one for --dedup alone; null: dedup of requests in flight only. */
  cache: ResponseCache | null;
  /** This run's id: an answer this run stored is a dedup when found again, not a hit. */
  runId: string;
  now: () => number;
}

export class Reuse {
  readonly #o: ReuseOptions;
  /** Requests in flight by key: identical ones wait for them. */
  readonly #inFlight = new Map<string, Promise<ItemResult>>();

  constructor(options: ReuseOptions) {
    this.#o = options;
  }

  /** Answers `item` from the cache or an identical request, else sends it (and stores a success). */
  async handle(item: RequestItem, send: (item: RequestItem) => Promise<ItemResult>): Promise<ItemResult | ReusedAnswer> {
    const key = cacheKey(item.url, item.body);
    const stored = this.#o.cache?.get(key);
    const json = stored ? parseObject(stored.body) : undefined;
    if (stored && json !== undefined) {
      return {
        kind: 'reused',
        source: stored.runId === this.#o.runId ? 'dedup' : 'hit',
        status: stored.status,
        requestId: stored.requestId,
        text: stored.body,
        json,
        batch: stored.batch,
      };
    }
    const leader = this.#inFlight.get(key);
    if (leader) return following(await leader);
    const sending = send(item);
    this.#inFlight.set(key, sending);
    try {
      const result = await sending;
      if (result.kind === 'answered') {
        this.#o.cache?.put(key, {
          storedAt: this.#o.now(),
          runId: this.#o.runId,
          status: result.response.status,
          requestId: result.response.requestId,
          body: result.response.text,
          batch: false,
        });
      }
      return result;
    } finally {
      this.#inFlight.delete(key);
    }
  }
}

/** What a request identical to one in flight gets from that one's outcome: its answer, its failure, or pending with it. */
function following(result: ItemResult): ItemResult | ReusedAnswer {
  switch (result.kind) {
    case 'answered':
      return {
        kind: 'reused',
        source: 'dedup',
        status: result.response.status,
        requestId: result.response.requestId,
        text: result.response.text,
        json: result.response.json,
        batch: false,
      };
    case 'failed':
      return { ...result, attempts: 0, latencyMs: 0, reservation: null };
    case 'stopped':
      return { kind: 'stopped', attempts: 0, response: null, verdict: null, reservation: null };
  }
}

/** A stored body that does not parse as a JSON object (a damaged entry) answers nothing: the request is sent. */
function parseObject(text: string): unknown {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The reuse step, when --cache or --dedup asks for it; a cache that cannot be used is reported and the run goes on without it. */
export async function openReuse(
  o: Pick<ResolvedRunOptions, 'cachePath' | 'cacheTtlMs' | 'dedup'>,
  warnings: string[],
  now: () => number,
): Promise<{ reuse: Reuse; warnings(): string[]; close(): Promise<void> } | null> {
  if (o.cachePath === undefined && !o.dedup) return null;
  const { openResponseCache, openTemporaryCache } = await import('../stores/response-cache.js');
  let cache: ResponseCache | null = null;
  try {
    cache = o.cachePath !== undefined ? await openResponseCache(o.cachePath, { ttlMs: o.cacheTtlMs, now }) : await openTemporaryCache();
  } catch (error) {
    warnings.push(
      o.cachePath !== undefined
        ? `the response cache ${o.cachePath} cannot be used (${(error as Error).message}): this run went on without it (identical requests in flight still shared one answer)`
        : `in-run dedup kept no store of finished answers (${(error as Error).message}): only identical requests in flight shared one answer`,
    );
  }
  return {
    reuse: new Reuse({ cache, runId: randomBytes(8).toString('hex'), now }),
    warnings: () =>
      cache?.failure ? [`the response cache ${cache.path} could not store answers (${cache.failure}): later answers were not stored, the run went on`] : [],
    close: async () => cache?.close(),
  };
}
