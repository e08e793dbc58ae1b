// The report (DESIGN.md §3) built from the buckets the API returned:
// `{range, bucket, group_by, totals, rows, anomalies}`.
//
// In:  the report's buckets, the baseline buckets before it (daily,
//      ungrouped), the spec of the endpoint, the clock and the threshold.
// Out: the OrgReport printed as JSON, plus the daily totals and judgements
//      the views show.
// Pure. Owns the flattening of results into rows (group keys, then metrics;
// the Costs API's `amount.value` becomes `amount_usd`) and the daily totals
// anomalies are judged on.

import { OaiBatchError } from '../shared/errors.js';
import { anomaliesOf, judgeDays, type Anomaly, type DailyTotal, type Judgement } from './anomalies.js';
import type { BucketWidth, GroupKey, ReportSpec } from './kinds.js';
import type { ApiBucket } from './pages.js';
import { DAY_SECONDS, dayStart, type TimeRange } from './range.js';

/** A group key's value in a row: a string id, the `batch` flag, or null. */
export type GroupValue = string | boolean | null;

/** One API result, flattened: `{start_time, end_time, <group keys>, <metrics>}`. */
export type ReportRow = { start_time: number; end_time: number } & Record<string, GroupValue | number>;

export interface OrgReport {
  /** Unix seconds; `end` is exclusive. */
  range: { start: number; end: number };
  bucket: BucketWidth;
  group_by: GroupKey[];
  /** Each metric summed over every row. */
  totals: Record<string, number>;
  rows: ReportRow[];
  anomalies: Anomaly[];
}

export interface BuiltReport {
  report: OrgReport;
  /** Daily totals of the judged metric, baseline days included, in day order. */
  daily: DailyTotal[];
  /** One judgement per UTC day the range touches. */
  judgements: Judgement[];
}

export interface ReportInput {
  spec: ReportSpec;
  range: TimeRange;
  bucket: BucketWidth;
  groupBy: readonly GroupKey[];
  /** Buckets of the report range. */
  buckets: readonly ApiBucket[];
  /** Daily ungrouped buckets of the days before the range, for the anomaly baseline (same filters). */
  baseline: readonly ApiBucket[];
  /** Days are complete only once they are over. */
  nowSec: number;
  threshold: number;
}

export function buildReport(input: ReportInput): BuiltReport {
  const { spec, groupBy } = input;
  const rows = rowsOf(spec, groupBy, input.buckets);
  const totals: Record<string, number> = Object.fromEntries(spec.metrics.map((m) => [m, 0]));
  for (const row of rows) for (const m of spec.metrics) totals[m] = (totals[m] as number) + (row[m] as number);
  for (const m of spec.metrics) totals[m] = tidy(totals[m] as number);

  const daily = dailyTotals(spec, [...input.baseline, ...input.buckets], input.nowSec);
  const days: number[] = [];
  for (let day = dayStart(input.range.startSec); day < input.range.endSec; day += DAY_SECONDS) days.push(day);
  const judgements = judgeDays(daily, days);
  const report: OrgReport = {
    range: { start: input.range.startSec, end: input.range.endSec },
    bucket: input.bucket,
    group_by: [...groupBy],
    totals,
    rows,
    anomalies: anomaliesOf(judgements, spec.volume.metric, input.threshold).map((a) => ({ ...a, value: tidy(a.value), baseline: tidy(a.baseline) })),
  };
  return { report, daily, judgements };
}

/** Every result of every bucket as a row, in the API's order; empty buckets give no rows. */
export function rowsOf(spec: ReportSpec, groupBy: readonly GroupKey[], buckets: readonly ApiBucket[]): ReportRow[] {
  const rows: ReportRow[] = [];
  for (const bucket of buckets) {
    for (const result of bucket.results) {
      const row: ReportRow = { start_time: bucket.start_time, end_time: bucket.end_time };
      for (const key of groupBy) row[key] = groupValueOf(result[key]);
      for (const metric of spec.metrics) row[metric] = tidy(metricOf(result, metric));
      rows.push(row);
    }
  }
  return rows;
}

/** The judged metric summed per UTC day, with whether the buckets cover the whole day and it is over. */
export function dailyTotals(spec: ReportSpec, buckets: readonly ApiBucket[], nowSec: number): DailyTotal[] {
  const byDay = new Map<number, { value: number; coveredSec: number }>();
  for (const bucket of buckets) {
    // Buckets never cross UTC midnight: the first ends at the next boundary, later ones are aligned.
    const day = dayStart(bucket.start_time);
    const entry = byDay.get(day) ?? { value: 0, coveredSec: 0 };
    entry.coveredSec += Math.min(bucket.end_time, day + DAY_SECONDS) - bucket.start_time;
    for (const result of bucket.results) {
      for (const field of spec.volume.fields) entry.value += metricOf(result, field);
    }
    byDay.set(day, entry);
  }
  return [...byDay.entries()]
    .sort(([a], [b]) => a - b)
    .map(([day, e]) => ({ dayStartSec: day, value: e.value, isComplete: e.coveredSec >= DAY_SECONDS && day + DAY_SECONDS <= nowSec }));
}

/**
 * Rounds to 1e-10: sums of USD amounts pick up binary noise
 * (0.033092500000000004); ten decimals keep every real digit of a price
 * (USD per 1M tokens × tokens) and drop the noise. Integers pass unchanged.
 */
export function tidy(value: number): number {
  return Number.isInteger(value) ? value : Math.round(value * 1e10) / 1e10;
}

function groupValueOf(value: unknown): GroupValue {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  return null;
}

/** A result's number for `metric`: `amount_usd` from the Costs API's `amount`, missing fields as 0. */
function metricOf(result: Record<string, unknown>, metric: string): number {
  if (metric === 'amount_usd') {
    const amount = result.amount as { value?: unknown; currency?: unknown } | undefined;
    if (amount === undefined || amount === null) return 0;
    if (amount.currency !== undefined && String(amount.currency).toLowerCase() !== 'usd') {
      throw new OaiBatchError(`The Costs API answered in ${String(amount.currency)}; only usd is supported`, 'invalid_response');
    }
    return typeof amount.value === 'number' ? amount.value : Number(amount.value ?? 0) || 0;
  }
  const value = result[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
