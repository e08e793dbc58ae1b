// `oai-batch cache stats|prune|clear`: look after the response cache file.
//
// In:  the cache path; for prune, an age.  Out: what the file holds, or how
//      many entries went. Library functions the CLI calls; a file that does
//      not exist is reported, never created by `stats`.

import { stat } from 'node:fs/promises';
import { InputError } from '../shared/errors.js';
import { openResponseCache, type CacheStats, type ResponseCache } from '../stores/response-cache.js';

async function openExisting(path: string): Promise<ResponseCache> {
  try {
    await stat(path);
  } catch {
    throw new InputError(`no response cache at ${path} (a run with --cache creates it)`, 'no_cache');
  }
  try {
    return await openResponseCache(path);
  } catch (error) {
    throw new InputError(`cannot use the response cache ${path}: ${(error as Error).message}`, 'cache_unreadable', { cause: error });
  }
}

async function withCache<T>(path: string, use: (cache: ResponseCache) => Promise<T>): Promise<T> {
  const cache = await openExisting(path);
  try {
    return await use(cache);
  } finally {
    await cache.close();
  }
}

export function cacheStats(path: string): Promise<CacheStats> {
  return withCache(path, (cache) => cache.stats());
}

/** Removes entries stored more than `olderThanMs` before `now`; resolves to how many. */
export function pruneCache(path: string, olderThanMs: number, now = Date.now()): Promise<number> {
  return withCache(path, (cache) => cache.prune(now - olderThanMs));
}

export function clearCache(path: string): Promise<number> {
  return withCache(path, (cache) => cache.clear());
}
