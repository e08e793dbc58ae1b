// The views of a report, computed once from its rows and drawn by both the
// terminal (text.ts) and the HTML page (html.ts):
//  - the judged volume over time (usage: input and output tokens; costs: USD),
//  - the same per model (usage) or per line item (costs, as stacked parts),
//  - each model's share of tokens and of requests (usage grouped by model),
//  - each line item's total and share of the cost (costs grouped by it),
//  - which buckets are partial (the range cuts them: a day not over yet).
//
// In:  an OrgReport and its spec.  Out: chart data (x = bucket starts in Unix
//      seconds, one value per bucket, 0 for empty buckets) and share tables.
// Pure.

import type { BucketWidth, GroupKey, ReportSpec } from './kinds.js';
import type { OrgReport, ReportRow } from './report.js';
import { BUCKET_SECONDS } from './kinds.js';
import type { ValueUnit } from './numbers.js';
import { bucketsOf } from './range.js';

export type { ValueUnit } from './numbers.js';

export interface SeriesView {
  label: string;
  values: number[];
  total: number;
}

export interface TimeView {
  title: string;
  unit: ValueUnit;
  /** Bucket starts, Unix seconds. */
  x: number[];
  series: SeriesView[];
  /** `stacked`: the series are parts of one whole per bucket (cost by line item), drawn as stacked bars; else lines. */
  kind: 'lines' | 'stacked';
  /** Buckets shorter than their width, cut by the range (the day not over yet; a first day that starts late). */
  partial: Array<{ x: number; label: string }>;
}

/** Every value of a group key with its total and share, largest first (costs: each line item). */
export interface TotalsView {
  title: string;
  /** The group key, e.g. `line_item`. */
  key: string;
  unit: ValueUnit;
  items: Array<{ label: string; total: number; share: number }>;
  total: number;
}

export interface ShareView {
  title: string;
  /** What is shared, e.g. `tokens`, `requests`. */
  measures: string[];
  items: Array<{ label: string; values: number[]; shares: number[] }>;
}

export interface OrgViews {
  times: TimeView[];
  shares: ShareView[];
  totals: TotalsView[];
}

/** Series beyond this many are summed into "other", so charts and legends stay readable. */
export const MAX_SERIES = 8;

const BUCKET_NOUN = { '1m': 'minute', '1h': 'hour', '1d': 'day' } as const;

export function viewsOf(report: OrgReport, spec: ReportSpec): OrgViews {
  const buckets = bucketsOf({ startSec: report.range.start, endSec: report.range.end }, report.bucket);
  const x = buckets.map((b) => b.startSec);
  const slot = slotFinder(x);
  const per = BUCKET_NOUN[report.bucket];
  const partial = buckets
    .filter((b) => b.endSec - b.startSec < BUCKET_SECONDS[report.bucket])
    .map((b) => ({ x: b.startSec, label: partialLabel(b.startSec, b.endSec, report.bucket, per) }));
  const unit = metricUnit(spec.volume.metric);
  const fields = spec.volume.fields;
  const isCosts = fields.includes('amount_usd');
  const times: TimeView[] = [];

  times.push({
    title: isCosts ? `Cost per ${per}, USD` : `${titleCase(fields.map(label).join(' and '))} per ${per}`,
    unit,
    x,
    series: fields.map((field) => seriesOf(label(field), report.rows, slot, x.length, (row) => row[field] as number)),
    kind: 'lines',
    partial,
  });

  const splitKey: GroupKey = isCosts ? 'line_item' : 'model';
  if (report.group_by.includes(splitKey)) {
    const volume = (row: ReportRow): number => fields.reduce((sum, f) => sum + (row[f] as number), 0);
    times.push({
      title: isCosts ? `Cost by line item per ${per}, USD` : `${titleCase(spec.volume.metric)} by model per ${per}`,
      unit,
      x,
      series: splitSeries(report.rows, splitKey, slot, x.length, volume),
      kind: isCosts ? 'stacked' : 'lines',
      partial,
    });
  }

  const shares: ShareView[] = [];
  if (!isCosts && report.group_by.includes('model')) {
    const measures: Array<[string, (row: ReportRow) => number]> = [[spec.volume.metric, (row) => fields.reduce((s, f) => s + (row[f] as number), 0)]];
    if (spec.metrics.includes('num_model_requests')) measures.push(['requests', (row) => row.num_model_requests as number]);
    shares.push(shareOf('Share by model', report.rows, 'model', measures));
  }
  if (isCosts && report.group_by.includes('project_id')) {
    shares.push(shareOf('Share by project', report.rows, 'project_id', [['amount_usd', (row) => row.amount_usd as number]]));
  }
  const totals: TotalsView[] = [];
  if (isCosts && report.group_by.includes('line_item')) {
    const share = shareOf('Cost by line item', report.rows, 'line_item', [['amount_usd', (row) => row.amount_usd as number]]);
    const total = report.totals.amount_usd ?? 0;
    totals.push({
      title: share.title,
      key: 'line_item',
      unit,
      items: share.items.map((item) => ({ label: item.label, total: item.values[0] ?? 0, share: item.shares[0] ?? 0 })),
      total,
    });
  }
  return { times, shares, totals };
}

/** `partial day: to 09:06 UTC` (the range ends inside it) or `partial day: from 09:06 UTC` (the range starts inside it). */
function partialLabel(startSec: number, endSec: number, width: BucketWidth, per: string): string {
  const size = BUCKET_SECONDS[width];
  const clock = (sec: number): string => new Date(sec * 1000).toISOString().slice(11, 16);
  if (startSec % size !== 0 && endSec % size !== 0) return `partial ${per}: ${clock(startSec)} to ${clock(endSec)} UTC`;
  return startSec % size !== 0 ? `partial ${per}: from ${clock(startSec)} UTC` : `partial ${per}: to ${clock(endSec)} UTC`;
}

/** How a metric's values read: USD, bytes, or plain counts. */
export function metricUnit(metric: string): ValueUnit {
  if (metric === 'amount_usd') return 'usd';
  if (metric === 'usage_bytes') return 'bytes';
  return 'count';
}

/** Maps a row's start_time to its bucket index: exact starts first, else the bucket that holds it. */
function slotFinder(x: readonly number[]): (startTime: number) => number {
  const exact = new Map(x.map((t, i) => [t, i]));
  return (t) => {
    const hit = exact.get(t);
    if (hit !== undefined) return hit;
    let lo = 0;
    let hi = x.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((x[mid] as number) <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
}

function seriesOf(name: string, rows: readonly ReportRow[], slot: (t: number) => number, length: number, value: (row: ReportRow) => number): SeriesView {
  const values = new Array<number>(length).fill(0);
  let total = 0;
  for (const row of rows) {
    const v = value(row);
    const i = slot(row.start_time);
    values[i] = (values[i] ?? 0) + v;
    total += v;
  }
  return { label: name, values, total };
}

/** One series per value of `key`, largest total first; beyond MAX_SERIES − 1 the rest are summed as "other". */
function splitSeries(rows: readonly ReportRow[], key: string, slot: (t: number) => number, length: number, value: (row: ReportRow) => number): SeriesView[] {
  const groups = new Map<string, ReportRow[]>();
  for (const row of rows) {
    const name = displayKey(row[key]);
    const list = groups.get(name) ?? [];
    list.push(row);
    groups.set(name, list);
  }
  const all = [...groups.entries()].map(([name, list]) => seriesOf(name, list, slot, length, value)).sort(byTotal);
  if (all.length <= MAX_SERIES) return all;
  const kept = all.slice(0, MAX_SERIES - 1);
  const rest = all.slice(MAX_SERIES - 1);
  const other: SeriesView = { label: `other (${rest.length})`, values: new Array<number>(length).fill(0), total: 0 };
  for (const s of rest) {
    s.values.forEach((v, i) => (other.values[i] = (other.values[i] ?? 0) + v));
    other.total += s.total;
  }
  return [...kept, other];
}

function shareOf(title: string, rows: readonly ReportRow[], key: string, measures: Array<[string, (row: ReportRow) => number]>): ShareView {
  const sums = new Map<string, number[]>();
  const totals = measures.map(() => 0);
  for (const row of rows) {
    const name = displayKey(row[key]);
    const entry = sums.get(name) ?? measures.map(() => 0);
    measures.forEach(([, measure], i) => {
      const v = measure(row);
      entry[i] = (entry[i] ?? 0) + v;
      totals[i] = (totals[i] ?? 0) + v;
    });
    sums.set(name, entry);
  }
  const items = [...sums.entries()]
    .map(([name, values]) => ({ label: name, values, shares: values.map((v, i) => ((totals[i] as number) > 0 ? v / (totals[i] as number) : 0)) }))
    .sort((a, b) => (b.values[0] as number) - (a.values[0] as number) || (a.label < b.label ? -1 : 1));
  return { title, measures: measures.map(([name]) => name), items };
}

function byTotal(a: SeriesView, b: SeriesView): number {
  return b.total - a.total || (a.label < b.label ? -1 : 1);
}

/** A group value as a label: null (not reported) shows as "(none)". */
export function displayKey(value: unknown): string {
  if (value === null || value === undefined) return '(none)';
  return String(value);
}

const LABELS: Readonly<Record<string, string>> = {
  input_tokens: 'input tokens',
  output_tokens: 'output tokens',
  amount_usd: 'cost',
  usage_bytes: 'bytes stored',
  num_sessions: 'sessions',
};

/** A metric name as a chart label. */
export function label(field: string): string {
  return LABELS[field] ?? field.replace(/_/g, ' ');
}

function titleCase(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
