// Fetches every bucket of one Usage or Costs query, page after page.
//
// In:  a Transport, a path and query (without `page`).
// Out: the buckets of every page in order, checked for shape.
// Owns pagination: follows `next_page` until `has_more` is false; each page
// is one callWithRetry (the retry policy of `run`), with the admin key.

import { callWithRetry, type CallOptions } from '../pipeline/send.js';
import { OaiBatchError } from '../shared/errors.js';
import type { HttpRequest, Transport } from '../pipeline/send/transport.js';

/** One time bucket as the API returns it. */
export interface ApiBucket {
  start_time: number;
  end_time: number;
  results: Array<Record<string, unknown>>;
}

export interface PageRequest {
  /** Path below the base URL, e.g. `/organization/usage/completions`. */
  path: string;
  /** Query parameters; arrays are sent as `name[]=a&name[]=b`. */
  query: NonNullable<HttpRequest['query']>;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface PageOptions extends CallOptions {
  /** Called after each page, e.g. for a progress line. */
  onPage?: (info: { page: number; buckets: number; hasMore: boolean }) => void;
}

/** More pages than any real range needs (a year of 1m buckets is 366 pages of 1,440); stops a server that never says done. */
const MAX_PAGES = 10_000;

export async function fetchAllBuckets(transport: Transport, request: PageRequest, options: PageOptions = {}): Promise<ApiBucket[]> {
  const buckets: ApiBucket[] = [];
  const seenCursors = new Set<string>();
  let cursor: string | undefined;
  for (let page = 1; ; page++) {
    if (page > MAX_PAGES) throw invalid(request.path, `more than ${MAX_PAGES} pages`);
    const query = cursor === undefined ? request.query : { ...request.query, page: cursor };
    const response = await callWithRetry(
      transport,
      { method: 'GET', path: request.path, query, auth: 'admin', timeoutMs: request.timeoutMs, ...(request.signal ? { signal: request.signal } : {}) },
      options,
    );
    const body = pageOf(response.json, request.path);
    buckets.push(...body.data);
    options.onPage?.({ page, buckets: body.data.length, hasMore: body.has_more });
    if (!body.has_more) return buckets;
    if (body.next_page === null || body.next_page === '') throw invalid(request.path, 'has_more is true but next_page is empty');
    if (seenCursors.has(body.next_page)) throw invalid(request.path, `next_page \`${body.next_page}\` was already fetched`);
    seenCursors.add(body.next_page);
    cursor = body.next_page;
  }
}

interface Page {
  data: ApiBucket[];
  has_more: boolean;
  next_page: string | null;
}

/** The page envelope `{object: "page", data, has_more, next_page}`, checked field by field. */
function pageOf(json: unknown, path: string): Page {
  if (!isRecord(json) || !Array.isArray(json.data)) throw invalid(path, 'the body is not a page with a `data` array');
  if (typeof json.has_more !== 'boolean') throw invalid(path, '`has_more` is not a boolean');
  const next = json.next_page;
  if (next !== null && next !== undefined && typeof next !== 'string') throw invalid(path, '`next_page` is not a string or null');
  const data = json.data.map((bucket, i): ApiBucket => {
    if (!isRecord(bucket) || typeof bucket.start_time !== 'number' || typeof bucket.end_time !== 'number' || !Array.isArray(bucket.results)) {
      throw invalid(path, `bucket ${i} lacks start_time, end_time or results`);
    }
    const results = bucket.results.filter(isRecord);
    return { start_time: bucket.start_time, end_time: bucket.end_time, results };
  });
  return { data, has_more: json.has_more, next_page: typeof next === 'string' ? next : null };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(path: string, detail: string): OaiBatchError {
  return new OaiBatchError(`Unexpected answer from ${path}: ${detail}`, 'invalid_response');
}
