// One poll of the organisation, as the values the monitor's gauges show
// (DESIGN.md §8): today's and this month's cost by line item and project,
// tokens and requests by model and project, the month's forecast and the
// last complete day's anomaly scores.
//
// In:  daily buckets of the Costs API (grouped by line_item, project_id) and
//      of the Usage API (completions, embeddings; grouped by model,
//      project_id), the clock and the label bound N.
// Out: an OrgSnapshot. Pure. Owns the label bound: per label, the N values
// with the most this month (cost for line items and projects of costs,
// tokens for models and projects of usage) keep their name, the rest become
// `other`, so the sum over series still equals the period's total.

import { judgeDays, BASELINE_DAYS, type Judgement } from './anomalies.js';
import { forecastMonth, monthBounds, type MonthForecast } from './forecast.js';
import { COSTS_SPEC, USAGE_SPECS, type GroupKey } from './kinds.js';
import type { ApiBucket } from './pages.js';
import { DAY_SECONDS, dayStart } from './range.js';
import { dailyTotals, rowsOf as reportRows, type ReportRow } from './report.js';

export const PERIODS = ['today', 'month'] as const;
export type Period = (typeof PERIODS)[number];
export const TOKEN_KINDS = ['input', 'cached_input', 'output'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** The label value of series folded together by the bound. */
export const OTHER = 'other';
/** The label value when the API's field is null (e.g. usage outside any project). */
export const NONE = 'none';
/** Default of `--top`: label values kept per label. */
export const DEFAULT_TOP = 10;

export interface OrgSnapshot {
  /** The end of every query (exclusive), Unix seconds: the data is as of this time. */
  asOfSec: number;
  cost: Array<{ period: Period; line_item: string; project_id: string; usd: number }>;
  tokens: Array<{ period: Period; model: string; project_id: string; kind: TokenKind; tokens: number }>;
  requests: Array<{ period: Period; model: string; project_id: string; requests: number }>;
  forecast: MonthForecast;
  /** The last complete UTC day judged against the 14 before it (DESIGN.md §3): daily cost, and completions tokens (input + output). */
  anomaly: { cost: Judgement; tokens: Judgement };
}

export interface SnapshotInput {
  nowSec: number;
  /** Label values kept per label; the rest are `other`. */
  top: number;
  costs: readonly ApiBucket[];
  completions: readonly ApiBucket[];
  embeddings: readonly ApiBucket[];
}

/**
 * The first day every query must cover: the month's start, or earlier when
 * the anomaly baseline (yesterday and the 14 days before it) and the
 * forecast's trailing days reach back into the previous month.
 */
export function historyStartSec(nowSec: number): number {
  const today = dayStart(nowSec);
  return Math.min(monthBounds(nowSec).startSec, today - (BASELINE_DAYS + 1) * DAY_SECONDS);
}

export function buildSnapshot(input: SnapshotInput): OrgSnapshot {
  const { nowSec } = input;
  const today = dayStart(nowSec);
  const periodStart: Record<Period, number> = { today, month: monthBounds(nowSec).startSec };

  const costRows = rowsFrom(reportRows(COSTS_SPEC, COST_KEYS, input.costs), COST_KEYS, (r) => ({ usd: r.amount_usd as number }));
  const cost = bounded(costRows, COST_KEYS, (v) => v.usd ?? 0, input.top, periodStart).map(({ period, labels, values }) => ({
    period,
    line_item: labels.line_item as string,
    project_id: labels.project_id as string,
    usd: values.usd ?? 0,
  }));

  const usageRows = [
    ...rowsFrom(reportRows(USAGE_SPECS.completions, USAGE_KEYS, input.completions), USAGE_KEYS, usageValues),
    ...rowsFrom(reportRows(USAGE_SPECS.embeddings, USAGE_KEYS, input.embeddings), USAGE_KEYS, usageValues),
  ];
  const usage = bounded(usageRows, USAGE_KEYS, (v) => (v.input ?? 0) + (v.output ?? 0), input.top, periodStart);
  const tokens: OrgSnapshot['tokens'] = [];
  const requests: OrgSnapshot['requests'] = [];
  for (const { period, labels, values } of usage) {
    const model = labels.model as string;
    const project_id = labels.project_id as string;
    for (const kind of TOKEN_KINDS) tokens.push({ period, model, project_id, kind, tokens: values[kind] ?? 0 });
    requests.push({ period, model, project_id, requests: values.requests ?? 0 });
  }

  const costDaily = dailyTotals(COSTS_SPEC, input.costs, nowSec);
  const tokenDaily = dailyTotals(USAGE_SPECS.completions, input.completions, nowSec);
  const yesterday = today - DAY_SECONDS;
  return {
    asOfSec: nowSec,
    cost,
    tokens,
    requests,
    forecast: forecastMonth({ daily: costDaily, nowSec }),
    anomaly: {
      cost: judgeDays(costDaily, [yesterday])[0] as Judgement,
      tokens: judgeDays(tokenDaily, [yesterday])[0] as Judgement,
    },
  };
}

interface Row {
  dayStartSec: number;
  labels: Record<string, string>;
  values: Record<string, number>;
}

const COST_KEYS = ['line_item', 'project_id'] as const satisfies readonly GroupKey[];
const USAGE_KEYS = ['model', 'project_id'] as const satisfies readonly GroupKey[];

/** The report's flattened rows (amount.value → amount_usd, currency checked) with labels as strings. */
function rowsFrom(rows: readonly ReportRow[], keys: readonly GroupKey[], valuesOf: (row: ReportRow) => Record<string, number>): Row[] {
  return rows.map((row) => ({
    dayStartSec: dayStart(row.start_time),
    labels: Object.fromEntries(keys.map((key) => [key, labelOf(row[key])])),
    values: valuesOf(row),
  }));
}

function usageValues(row: ReportRow): Record<string, number> {
  return {
    // The Usage API's input_tokens already include the cached ones (as oai_batch_tokens_total{kind="input"} does).
    input: numberOf(row.input_tokens),
    cached_input: numberOf(row.input_cached_tokens),
    output: numberOf(row.output_tokens),
    requests: numberOf(row.num_model_requests),
  };
}

/**
 * Sums `rows` per period and bounded label set. Every label set seen this
 * month appears in both periods (0 today when nothing was spent today), so a
 * series does not come and go with the day.
 */
function bounded(
  rows: readonly Row[],
  keys: readonly string[],
  weight: (values: Record<string, number>) => number,
  top: number,
  periodStart: Record<Period, number>,
): Array<{ period: Period; labels: Record<string, string>; values: Record<string, number> }> {
  const month = rows.filter((r) => r.dayStartSec >= periodStart.month);
  const kept = new Map(keys.map((key) => [key, topValues(month, key, weight, top)]));
  const sums = new Map<string, { period: Period; labels: Record<string, string>; values: Record<string, number> }>();
  const labelSets = new Map<string, Record<string, string>>();
  const add = (period: Period, id: string, labels: Record<string, string>, values: Record<string, number>): void => {
    const slot = sums.get(`${period}\u0000${id}`) ?? { period, labels, values: {} };
    for (const [name, value] of Object.entries(values)) slot.values[name] = (slot.values[name] ?? 0) + value;
    sums.set(`${period}\u0000${id}`, slot);
  };
  for (const row of month) {
    const labels = Object.fromEntries(keys.map((key) => [key, kept.get(key)!.has(row.labels[key] as string) ? (row.labels[key] as string) : OTHER]));
    const id = JSON.stringify(keys.map((key) => labels[key]));
    labelSets.set(id, labels);
    add('month', id, labels, row.values);
    if (row.dayStartSec >= periodStart.today) add('today', id, labels, row.values);
  }
  for (const [id, labels] of labelSets) if (!sums.has(`today\u0000${id}`)) add('today', id, labels, {});
  return [...sums.values()].sort((a, b) => (a.period === b.period ? compare(JSON.stringify(a.labels), JSON.stringify(b.labels)) : a.period === 'today' ? -1 : 1));
}

/** The `top` values of `key` with the largest total weight (ties by name), or all of them when there are no more. */
function topValues(rows: readonly Row[], key: string, weight: (values: Record<string, number>) => number, top: number): Set<string> {
  const totals = new Map<string, number>();
  for (const row of rows) totals.set(row.labels[key] as string, (totals.get(row.labels[key] as string) ?? 0) + weight(row.values));
  const ranked = [...totals.entries()].sort(([a, x], [b, y]) => y - x || compare(a, b)).map(([value]) => value);
  return new Set(ranked.slice(0, top));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function labelOf(value: unknown): string {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'boolean') return String(value);
  return NONE;
}

function numberOf(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
