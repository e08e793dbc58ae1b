// A report as text: `--format json` (the DESIGN.md §3 object), `csv` (one
// line per row) and `table` (per-day totals, the top groups, anomalies, then
// the charts: a month of rows by model or line item is hundreds of lines, so
// every row is left to csv and json).
//
// In:  a BuiltReport, its spec and views.  Out: the text for stdout; for CSV
//      also the anomaly lines, which go to stderr so stdout stays one table.
// Pure.

import Table from 'cli-table3';
import type { Judgement } from './anomalies.js';
import { forecastJson, forecastSentences, type MonthForecast } from './forecast.js';
import type { ReportSpec } from './kinds.js';
import { formatValue, rangeLabel } from './numbers.js';
import { DAY_SECONDS, bucketsOf, dayStart, isoSeconds } from './range.js';
import type { BuiltReport, OrgReport } from './report.js';
import { renderTextCharts } from './terminal-charts.js';
import { displayKey, label, metricUnit, type OrgViews } from './views.js';

export const FORMATS = ['table', 'csv', 'json'] as const;
export type ReportFormat = (typeof FORMATS)[number];

/** The report object; with `costs --forecast`, a `forecast` key after the report's own. */
export function renderJson(report: OrgReport, forecast?: MonthForecast): string {
  return `${JSON.stringify(forecast ? { ...report, forecast: forecastJson(forecast) } : report, null, 2)}\n`;
}

/** Header `start_time,end_time,<group keys>,<metrics>`; times as ISO 8601 UTC so spreadsheets read them. */
export function renderCsv(report: OrgReport, spec: ReportSpec): string {
  const columns = ['start_time', 'end_time', ...report.group_by, ...spec.metrics];
  const lines = [columns.join(',')];
  for (const row of report.rows) {
    lines.push(
      columns
        .map((column) => {
          const value = row[column];
          if (column === 'start_time' || column === 'end_time') return isoSeconds(value as number);
          return csvField(value);
        })
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export interface TableContext {
  /** e.g. `Usage of completions` or `Costs`. */
  title: string;
  built: BuiltReport;
  spec: ReportSpec;
  views: OrgViews;
  threshold: number;
  columns: number;
  color: boolean;
  /** `costs --forecast`: shown after the anomalies. */
  forecast?: MonthForecast | undefined;
}

const SHORT_HEADERS: Readonly<Record<string, string>> = {
  input_tokens: 'input',
  input_cached_tokens: 'cached',
  output_tokens: 'output',
  input_audio_tokens: 'audio in',
  output_audio_tokens: 'audio out',
  num_model_requests: 'requests',
  amount_usd: 'USD',
};

/** Groups listed by name in table mode; the rest are summed into one `other (n)` line. */
export const TOP_GROUPS = 10;

export function renderTable(ctx: TableContext): string {
  const { report } = ctx.built;
  const grouping = report.group_by.length > 0 ? ` · grouped by ${report.group_by.join(', ')}` : '';
  const lines = [`${ctx.title} · ${rangeLabel(report.range.start, report.range.end)} · ${report.bucket} buckets${grouping}`];
  const style = { head: ctx.color ? ['cyan'] : [], border: ctx.color ? ['grey'] : [], compact: true };
  const metricHeads = ctx.spec.metrics.map((m) => SHORT_HEADERS[m] ?? m);
  const metricCells = (values: Record<string, number>): string[] => ctx.spec.metrics.map((m) => formatValue(values[m] ?? 0, metricUnit(m)));
  const totalCells = metricCells(report.totals);

  if (report.rows.length === 0) {
    lines.push('(no usage in this range)');
  } else {
    const days = new Table({ head: ['day (UTC)', ...metricHeads], colAligns: ['left', ...ctx.spec.metrics.map(() => 'right' as const)], style });
    for (const day of dailyRows(report, ctx.spec.metrics)) days.push([day.label, ...metricCells(day.values)]);
    days.push(['total', ...totalCells]);
    lines.push('Per day', days.toString());

    if (report.group_by.length > 0) {
      const groups = topGroups(report, ctx.spec);
      const table = new Table({
        head: [...report.group_by, ...metricHeads, 'share'],
        colAligns: [...report.group_by.map(() => 'left' as const), ...ctx.spec.metrics.map(() => 'right' as const), 'right'],
        style,
      });
      for (const group of groups.listed) table.push([...group.keys, ...metricCells(group.values), percent(group.share)]);
      if (groups.rest !== null) {
        table.push([`other (${groups.rest.count})`, ...report.group_by.slice(1).map(() => ''), ...metricCells(groups.rest.values), percent(groups.rest.share)]);
      }
      table.push([`total (${groups.count})`, ...report.group_by.slice(1).map(() => ''), ...totalCells, '100.0%']);
      const what = label(ctx.spec.volume.metric);
      const heading = groups.count > TOP_GROUPS ? `Top ${TOP_GROUPS} of ${groups.count}` : `All ${groups.count}`;
      lines.push('', `${heading} groups (${report.group_by.join(' × ')}) by ${what}`, table.toString());
    }
    lines.push(`${report.rows.length} rows in all: --format csv or --format json prints every one.`);
  }
  lines.push('', ...anomalyLines(ctx.built, ctx.spec, ctx.threshold));
  if (ctx.forecast) lines.push('', ...forecastSentences(ctx.forecast));
  lines.push(...renderTextCharts(ctx.views, { columns: ctx.columns, color: ctx.color }));
  return `${lines.join('\n')}\n`;
}

/** Each UTC day of the range with its metrics summed over groups; a day the range cuts is labelled by its span. */
export function dailyRows(report: OrgReport, metrics: readonly string[]): Array<{ label: string; values: Record<string, number> }> {
  const days = bucketsOf({ startSec: report.range.start, endSec: report.range.end }, '1d');
  const sums = days.map(() => Object.fromEntries(metrics.map((m) => [m, 0])) as Record<string, number>);
  const index = new Map(days.map((day, i) => [dayStart(day.startSec), i]));
  for (const row of report.rows) {
    const i = index.get(dayStart(row.start_time));
    if (i === undefined) continue;
    const sum = sums[i] as Record<string, number>;
    for (const m of metrics) sum[m] = (sum[m] ?? 0) + (row[m] as number);
  }
  const clock = (sec: number): string => isoSeconds(sec).slice(11, 16);
  return days.map((day, i) => {
    const date = isoSeconds(day.startSec).slice(0, 10);
    const isFirstCut = day.startSec % DAY_SECONDS !== 0;
    const isLastCut = day.endSec % DAY_SECONDS !== 0;
    const span = isFirstCut && isLastCut ? ` ${clock(day.startSec)} to ${clock(day.endSec)}` : isFirstCut ? ` from ${clock(day.startSec)}` : isLastCut ? ` to ${clock(day.endSec)}` : '';
    return { label: span === '' ? date : `${date}${span} (partial)`, values: sums[i] as Record<string, number> };
  });
}

interface GroupTotal {
  keys: string[];
  values: Record<string, number>;
  share: number;
}

/** The report's groups (each combination of group keys) by their judged volume: the top TOP_GROUPS and the rest summed. */
export function topGroups(
  report: OrgReport,
  spec: ReportSpec,
): { listed: GroupTotal[]; rest: { count: number; values: Record<string, number>; share: number } | null; count: number } {
  const volume = (values: Record<string, number>): number => spec.volume.fields.reduce((sum, f) => sum + (values[f] ?? 0), 0);
  const groups = new Map<string, { keys: string[]; values: Record<string, number> }>();
  for (const row of report.rows) {
    const keys = report.group_by.map((key) => displayKey(row[key]));
    const id = JSON.stringify(keys);
    const group = groups.get(id) ?? { keys, values: Object.fromEntries(spec.metrics.map((m) => [m, 0])) };
    for (const m of spec.metrics) group.values[m] = (group.values[m] ?? 0) + (row[m] as number);
    groups.set(id, group);
  }
  const total = volume(report.totals);
  const ranked = [...groups.values()]
    .map((g) => ({ ...g, share: total > 0 ? volume(g.values) / total : 0 }))
    .sort((a, b) => volume(b.values) - volume(a.values) || (a.keys.join() < b.keys.join() ? -1 : 1));
  const listed = ranked.slice(0, TOP_GROUPS);
  const others = ranked.slice(TOP_GROUPS);
  if (others.length === 0) return { listed, rest: null, count: ranked.length };
  const values = Object.fromEntries(spec.metrics.map((m) => [m, others.reduce((sum, g) => sum + (g.values[m] ?? 0), 0)]));
  return { listed, rest: { count: others.length, values, share: total > 0 ? volume(values) / total : 0 }, count: ranked.length };
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

/** What was flagged, or how many days were judged and found ordinary. */
export function anomalyLines(built: BuiltReport, spec: ReportSpec, threshold: number): string[] {
  const unit = metricUnit(spec.volume.metric);
  const scored = built.judgements.filter((j) => j.verdict === 'scored').length;
  const unjudged = summariseUnjudged(built.judgements);
  const what = `daily ${label(spec.volume.metric)}`;
  if (built.report.anomalies.length === 0) {
    return [`No anomalies in ${what}: ${scored} day${scored === 1 ? '' : 's'} judged against the trailing 14 days (robust score above ${threshold} flags a day)${unjudged}.`];
  }
  const lines = [`Anomalies in ${what} (robust score above ${threshold} against the trailing 14 days; ${scored} days judged${unjudged}):`];
  for (const a of built.report.anomalies) {
    const direction = a.value > a.baseline ? 'above' : 'below';
    lines.push(`  ${a.date}  ${formatValue(a.value, unit)} vs a median of ${formatValue(a.baseline, unit)}  score ${a.score.toFixed(2)}  (${direction})`);
  }
  return lines;
}

function summariseUnjudged(judgements: readonly Judgement[]): string {
  const counts = { incomplete: 0, too_few_days: 0, flat_baseline: 0 };
  for (const j of judgements) if (j.verdict !== 'scored') counts[j.verdict]++;
  const parts: string[] = [];
  if (counts.incomplete > 0) parts.push(`${counts.incomplete} partial`);
  if (counts.too_few_days > 0) parts.push(`${counts.too_few_days} with fewer than 7 earlier days`);
  if (counts.flat_baseline > 0) parts.push(`${counts.flat_baseline} with a flat baseline`);
  return parts.length > 0 ? `; not judged: ${parts.join(', ')}` : '';
}
