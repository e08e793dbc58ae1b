// One organisation report, fetched: the report range (every page) and the
// 14 days before it (daily, ungrouped) that anomalies are judged against.
//
// In:  a Transport carrying the admin key and an OrgQuery.
// Out: the BuiltReport (report.ts) and the spec it was read with.
// Owns the translation of a query into the API's parameters (start_time,
// end_time, bucket_width, group_by[], filters[], batch, limit).

import type { CallOptions } from '../pipeline/send.js';
import type { HttpRequest, Transport } from '../pipeline/send/transport.js';
import { BASELINE_DAYS } from './anomalies.js';
import { COSTS_SPEC, USAGE_SPECS, type BucketWidth, type FilterName, type GroupKey, type ReportSpec, type UsageKind } from './kinds.js';
import { fetchAllBuckets, type PageOptions } from './pages.js';
import { buildReport, dailyTotals, type BuiltReport } from './report.js';
import { FORECAST_TRAILING_DAYS, forecastMonth, monthBounds, type MonthForecast } from './forecast.js';
import { DAY_SECONDS, dayStart, type TimeRange } from './range.js';

export interface OrgQuery {
  /** `usage` (with a kind) or `costs`. */
  report: { name: 'usage'; kind: UsageKind } | { name: 'costs' };
  range: TimeRange;
  bucket: BucketWidth;
  groupBy: readonly GroupKey[];
  /** Array filters; absent or empty means no filter. */
  filters: Partial<Record<FilterName, readonly string[]>>;
  /** Completions only: true = Batch API usage only, false = none of it, undefined = both. */
  batch?: boolean | undefined;
  /** Buckets per page (`limit`); default the most the API allows for the width. */
  pageSize?: number | undefined;
  /** Robust score above which a day is an anomaly (DESIGN.md §3 default 3.5). */
  threshold: number;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
}

export interface FetchOptions extends CallOptions {
  /** Wall clock, ms; days are judged only once they are over. Default Date.now. */
  now?: () => number;
  signal?: AbortSignal;
  onPage?: PageOptions['onPage'];
}

export function specOf(report: OrgQuery['report']): ReportSpec {
  return report.name === 'costs' ? COSTS_SPEC : USAGE_SPECS[report.kind];
}

export async function fetchOrgReport(
  transport: Transport,
  query: OrgQuery,
  options: FetchOptions = {},
): Promise<BuiltReport & { spec: ReportSpec }> {
  const spec = specOf(query.report);
  const now = options.now ?? Date.now;
  const pageOptions: PageOptions = { ...options };
  const common = filterParams(spec, query);

  const buckets = await fetchAllBuckets(
    transport,
    {
      path: spec.path,
      query: {
        ...common,
        start_time: query.range.startSec,
        end_time: query.range.endSec,
        bucket_width: query.bucket,
        limit: query.pageSize ?? pageLimit(spec, query.bucket),
        ...(query.groupBy.length > 0 ? { group_by: [...query.groupBy] } : {}),
      },
      timeoutMs: query.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    },
    pageOptions,
  );

  // The baseline: whole days before the range (and the part of the first day before its start).
  const baselineStart = dayStart(query.range.startSec) - BASELINE_DAYS * DAY_SECONDS;
  const baseline = await fetchAllBuckets(
    transport,
    {
      path: spec.path,
      query: { ...common, start_time: baselineStart, end_time: query.range.startSec, bucket_width: '1d', limit: pageLimit(spec, '1d') },
      timeoutMs: query.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    },
    pageOptions,
  );

  const built = buildReport({
    spec,
    range: query.range,
    bucket: query.bucket,
    groupBy: query.groupBy,
    buckets,
    baseline,
    nowSec: Math.floor(now() / 1000),
    threshold: query.threshold,
  });
  return { ...built, spec };
}

function pageLimit(spec: ReportSpec, width: BucketWidth): number | undefined {
  return spec.pageLimits[width]?.max;
}

function filterParams(spec: ReportSpec, query: Pick<OrgQuery, 'filters' | 'batch'>): NonNullable<HttpRequest['query']> {
  const params: NonNullable<HttpRequest['query']> = {};
  for (const name of spec.filters) {
    const values = query.filters[name];
    if (values && values.length > 0) params[name] = [...values];
  }
  if (spec.hasBatchFilter && query.batch !== undefined) params.batch = query.batch;
  return params;
}

export interface ForecastQuery {
  /** The Costs API's filters (project_ids, api_key_ids): the forecast of those projects or keys only. */
  filters: Partial<Record<FilterName, readonly string[]>>;
  timeoutMs: number;
}

/**
 * This month's cost projected to its end, as of now (whatever range a report
 * shows): daily costs from the month's start, or from the trailing days
 * before today when they reach back further.
 */
export async function fetchMonthForecast(transport: Transport, query: ForecastQuery, options: FetchOptions = {}): Promise<MonthForecast> {
  const now = options.now ?? Date.now;
  const nowSec = Math.floor(now() / 1000);
  const startSec = Math.min(monthBounds(nowSec).startSec, dayStart(nowSec) - FORECAST_TRAILING_DAYS * DAY_SECONDS);
  const buckets = await fetchAllBuckets(
    transport,
    {
      path: COSTS_SPEC.path,
      query: { ...filterParams(COSTS_SPEC, { filters: query.filters }), start_time: startSec, end_time: nowSec, bucket_width: '1d', limit: pageLimit(COSTS_SPEC, '1d') },
      timeoutMs: query.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    },
    { ...options },
  );
  return forecastMonth({ daily: dailyTotals(COSTS_SPEC, buckets, nowSec), nowSec });
}
