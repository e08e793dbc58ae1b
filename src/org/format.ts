// A report as text: `--format json` (the DESIGN.md §3 object), `csv` (one
// line per row) and `table` (rows, totals, anomalies, then the charts).
//
// In:  a BuiltReport, its spec and views.  Out: the text for stdout; for CSV
//      also the anomaly lines, which go to stderr so stdout stays one table.
// Pure.

import Table from 'cli-table3';
import type { Judgement } from './anomalies.js';
import { forecastJson, forecastSentences, type MonthForecast } from './forecast.js';
import type { ReportSpec } from './kinds.js';
import { bucketLabel, formatValue, rangeLabel } from './numbers.js';
import { isoSeconds } from './range.js';
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

export function renderTable(ctx: TableContext): string {
  const { report } = ctx.built;
  const grouping = report.group_by.length > 0 ? ` · grouped by ${report.group_by.join(', ')}` : '';
  const lines = [`${ctx.title} · ${rangeLabel(report.range.start, report.range.end)} · ${report.bucket} buckets${grouping}`];

  const table = new Table({
    head: ['bucket (UTC)', ...report.group_by, ...ctx.spec.metrics.map((m) => SHORT_HEADERS[m] ?? m)],
    colAligns: ['left', ...report.group_by.map(() => 'left' as const), ...ctx.spec.metrics.map(() => 'right' as const)],
    style: { head: ctx.color ? ['cyan'] : [], border: ctx.color ? ['grey'] : [], compact: true },
  });
  for (const row of report.rows) {
    table.push([
      bucketLabel(row.start_time, row.end_time, report.bucket),
      ...report.group_by.map((key) => displayKey(row[key])),
      ...ctx.spec.metrics.map((m) => formatValue(row[m] as number, metricUnit(m))),
    ]);
  }
  table.push([
    `total (${report.rows.length} rows)`,
    ...report.group_by.map(() => ''),
    ...ctx.spec.metrics.map((m) => formatValue(report.totals[m] ?? 0, metricUnit(m))),
  ]);
  lines.push(report.rows.length > 0 ? table.toString() : '(no usage in this range)');
  lines.push('', ...anomalyLines(ctx.built, ctx.spec, ctx.threshold));
  if (ctx.forecast) lines.push('', ...forecastSentences(ctx.forecast));
  lines.push(...renderTextCharts(ctx.views, { columns: ctx.columns, color: ctx.color }));
  return `${lines.join('\n')}\n`;
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
