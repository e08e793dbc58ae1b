// The organisation report as one self-contained HTML page (`--html FILE`):
// totals, anomalies, the charts of views.ts, shares, daily totals and rows.
//
// In:  a BuiltReport, its spec, views, a title.  Out: the page's HTML.
// Owns only the composition; page building, uPlot and escaping live in
// src/report/page.ts.

import { chartHtml, paragraphHtml, renderPage, sectionHtml, shareBarsHtml, tableHtml, type Cell } from '../observe/html-page.js';
import { forecastSentences, type MonthForecast } from './forecast.js';
import type { ReportSpec } from './kinds.js';
import { bucketLabel, formatCompact, formatValue, rangeLabel } from './numbers.js';
import { dayStart, isoDate } from './range.js';
import type { BuiltReport } from './report.js';
import { displayKey, label, metricUnit, type OrgViews } from './views.js';

export interface HtmlContext {
  title: string;
  built: BuiltReport;
  spec: ReportSpec;
  views: OrgViews;
  threshold: number;
  /** When the report was made, Unix seconds (shown on the page). */
  generatedSec: number;
  /** `costs --forecast`: a section after the totals. */
  forecast?: MonthForecast | undefined;
}

export function renderHtml(ctx: HtmlContext): string {
  const { report } = ctx.built;
  const volumeUnit = metricUnit(ctx.spec.volume.metric);
  const sections: string[] = [];

  sections.push(
    sectionHtml(
      'Totals',
      tableHtml({
        columns: ['metric', { label: 'total', align: 'right' }],
        rows: ctx.spec.metrics.map((m) => [m, formatValue(report.totals[m] ?? 0, metricUnit(m))]),
      }),
    ),
  );

  if (ctx.forecast) sections.push(forecastSectionHtml(ctx.forecast));

  const anomalyDays = new Set(report.anomalies.map((a) => a.date));
  sections.push(
    sectionHtml(
      'Anomalies',
      report.anomalies.length === 0
        ? paragraphHtml(`No day's ${label(ctx.spec.volume.metric)} scored above ${ctx.threshold} against its trailing 14 days.`)
        : tableHtml({
            caption: `Days whose ${label(ctx.spec.volume.metric)} scored above ${ctx.threshold} (robust score against the trailing 14 days)`,
            columns: ['date', { label: 'value', align: 'right' }, { label: 'median of the 14 days before', align: 'right' }, { label: 'score', align: 'right' }],
            rows: report.anomalies.map((a) => [a.date, formatValue(a.value, volumeUnit), formatValue(a.baseline, volumeUnit), a.score.toFixed(2)]),
          }),
    ),
  );

  const marks = report.anomalies.map((a) => ({ x: Date.parse(`${a.date}T00:00:00Z`) / 1000, label: `anomaly ${a.date}` }));
  const charts = ctx.views.times.map((view) =>
    chartHtml({
      title: view.title,
      x: view.x,
      series: view.series.map((s) => ({ label: s.label, values: s.values })),
      unit: view.unit,
      ...(view.kind === 'stacked' ? { kind: 'bars' as const, stacked: true } : {}),
      // A flagged first day may start before the range (its first bucket starts at the range start).
      marks: marks.map((m) => ({ ...m, x: Math.max(m.x, report.range.start) })),
      shaded: view.partial.map((p) => ({ ...slotAround(view.x, p.x), label: p.label })),
    }),
  );
  const shares = ctx.views.shares.map((share) =>
    shareBarsHtml({
      title: share.title,
      measures: share.measures,
      items: share.items.map((item) => ({
        label: item.label,
        shares: item.shares,
        texts: item.shares.map((s, i) => `${(s * 100).toFixed(1)}% · ${formatCompact(item.values[i] ?? 0, metricUnit(share.measures[i] ?? ''))}`),
      })),
    }),
  );
  const totals = ctx.views.totals.map((view) =>
    tableHtml({
      caption: view.title,
      columns: [view.key, { label: 'total', align: 'right' }, { label: 'share', align: 'right' }],
      rows: view.items.map((item) => [item.label, formatValue(item.total, view.unit), `${(item.share * 100).toFixed(1)}%`]),
      footer: [`total (${view.items.length})`, formatValue(view.total, view.unit), view.total > 0 ? '100.0%' : ''],
    }),
  );
  sections.push(sectionHtml('Charts', [...charts, ...totals, ...shares].join('\n')));

  const dailyRows: Cell[][] = ctx.built.judgements.map((j) => [
    isoDate(j.dayStartSec),
    formatValue(j.value, volumeUnit),
    j.verdict === 'scored' ? formatValue(j.baseline, volumeUnit) : '',
    j.verdict === 'scored' ? j.score.toFixed(2) : '',
    j.verdict === 'scored' ? (anomalyDays.has(isoDate(j.dayStartSec)) ? 'anomaly' : 'ordinary') : VERDICT_TEXT[j.verdict],
  ]);
  sections.push(
    sectionHtml(
      `Daily ${label(ctx.spec.volume.metric)}`,
      tableHtml({
        columns: ['day (UTC)', { label: 'value', align: 'right' }, { label: 'baseline median', align: 'right' }, { label: 'score', align: 'right' }, 'verdict'],
        rows: dailyRows,
      }),
      { collapsed: true },
    ),
  );

  sections.push(
    sectionHtml(
      `Rows (${report.rows.length})`,
      tableHtml({
        columns: ['bucket (UTC)', ...report.group_by, ...ctx.spec.metrics.map((m) => ({ label: m, align: 'right' as const }))],
        rows: report.rows.map((row) => [
          bucketLabel(row.start_time, row.end_time, report.bucket),
          ...report.group_by.map((key) => displayKey(row[key])),
          ...ctx.spec.metrics.map((m) => formatValue(row[m] as number, metricUnit(m))),
        ]),
        footer: ['total', ...report.group_by.map(() => ''), ...ctx.spec.metrics.map((m) => formatValue(report.totals[m] ?? 0, metricUnit(m)))],
      }),
      { collapsed: true },
    ),
  );

  const grouping = report.group_by.length > 0 ? ` · grouped by ${report.group_by.join(', ')}` : '';
  return renderPage({
    title: ctx.title,
    subtitle: `${rangeLabel(report.range.start, report.range.end)} · ${report.bucket} buckets${grouping} · made ${isoDate(dayStart(ctx.generatedSec))} by oai-batch`,
    sections,
  });
}

function forecastSectionHtml(f: MonthForecast): string {
  const usd = (x: number): string => formatValue(x, 'usd');
  const [headline, basis] = forecastSentences(f);
  return sectionHtml(
    `Forecast for ${f.month}`,
    [
      tableHtml({
        columns: ['', { label: 'USD', align: 'right' }],
        rows: [
          ['spent so far', usd(f.monthToDate)],
          ['expected month total', usd(f.expected)],
          ['low (90% range)', usd(f.low)],
          ['high (90% range)', usd(f.high)],
        ],
      }),
      paragraphHtml(`${headline ?? ''} ${(basis ?? '').trim()}`),
    ].join('\n'),
  );
}

/** The span a bucket's bar or point takes on the chart: halfway to its neighbours (a lone bucket: its own width either side). */
function slotAround(x: readonly number[], at: number): { from: number; to: number } {
  const i = x.indexOf(at);
  const before = i > 0 ? at - (x[i - 1] as number) : undefined;
  const after = i >= 0 && i < x.length - 1 ? (x[i + 1] as number) - at : undefined;
  const left = before ?? after ?? 1;
  const right = after ?? before ?? 1;
  return { from: at - left / 2, to: at + right / 2 };
}

const VERDICT_TEXT = {
  incomplete: 'partial day, not judged',
  too_few_days: 'fewer than 7 earlier days',
  flat_baseline: 'flat baseline (MAD 0)',
} as const;
