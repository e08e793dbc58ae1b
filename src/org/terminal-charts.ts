// The views drawn as compact text charts under the table: an asciichart line
// chart of the volume over time, one sparkline per series with its total,
// and bars for shares.
//
// In:  OrgViews, the terminal width, whether to use colour.
// Out: text lines.  Pure (asciichart is a pure function of its input).
// Long ranges are summed into at most `maxPoints` columns so a chart fits.

import { createRequire } from 'node:module';
import { formatCompact } from './numbers.js';
import { isoDate } from './range.js';
import type { OrgViews, SeriesView, ShareView, TimeView } from './views.js';

interface AsciiChart {
  plot(series: number[] | number[][], config?: { height?: number; format?: (x: number) => string; colors?: string[]; padding?: string }): string;
  blue: string;
  green: string;
  magenta: string;
  yellow: string;
  cyan: string;
  red: string;
  reset: string;
}

// asciichart is CommonJS without types; its one function is described above.
const asciichart = createRequire(import.meta.url)('asciichart') as AsciiChart;

const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const CHART_HEIGHT_ROWS = 8;
const LABEL_WIDTH = 9;
const BAR_WIDTH = 24;

export interface ChartTextOptions {
  /** Terminal columns; charts use at most this width. */
  columns: number;
  color: boolean;
}

export function renderTextCharts(views: OrgViews, options: ChartTextOptions): string[] {
  const lines: string[] = [];
  const maxPoints = Math.max(10, Math.min(120, options.columns - LABEL_WIDTH - 4));
  views.times.forEach((view, i) => {
    const fitted = fit(view, maxPoints);
    if (fitted.x.length === 0) return;
    lines.push('', `${view.title}${fitted.mergedBuckets > 1 ? ` (${fitted.mergedBuckets} buckets per column)` : ''}, ${spanText(fitted.x)}`);
    // The first view gets a full line chart; every view gets a sparkline per series.
    if (i === 0) lines.push(...lineChart(fitted.view, options.color));
    lines.push(...sparklines(fitted.view));
  });
  for (const share of views.shares) lines.push('', ...shareBars(share));
  return lines;
}

function lineChart(view: TimeView, color: boolean): string[] {
  const palette = [asciichart.blue, asciichart.magenta, asciichart.green, asciichart.yellow, asciichart.cyan, asciichart.red];
  const plotted = view.series.filter((s) => s.values.length > 0);
  if (plotted.length === 0) return [];
  const text = asciichart.plot(
    plotted.map((s) => s.values),
    {
      height: CHART_HEIGHT_ROWS,
      format: (v) => formatCompact(v, view.unit).padStart(LABEL_WIDTH),
      ...(color ? { colors: palette.slice(0, plotted.length) } : {}),
    },
  );
  // Without colour the lines look alike; the sparklines below name each series.
  const legend =
    color && plotted.length > 1
      ? [' '.repeat(LABEL_WIDTH + 2) + plotted.map((s, i) => `${palette[i % palette.length]}───${asciichart.reset} ${s.label}`).join('   ')]
      : [];
  return [...text.split('\n'), ...legend];
}

function sparklines(view: TimeView): string[] {
  const width = Math.min(28, Math.max(...view.series.map((s) => s.label.length)));
  return view.series.map((s) => `  ${truncate(s.label, width).padEnd(width)}  ${spark(s.values)}  ${formatCompact(s.total, view.unit)}`);
}

/** One character per value, scaled to the series' own maximum; a zero is a blank. */
export function spark(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values
    .map((v) => {
      if (!(v > 0) || max === 0) return ' ';
      const level = Math.min(SPARKS.length - 1, Math.ceil((v / max) * SPARKS.length) - 1);
      return SPARKS[level];
    })
    .join('');
}

function shareBars(view: ShareView): string[] {
  const width = Math.min(28, Math.max(5, ...view.items.map((item) => item.label.length)));
  const header = `${view.title}`.padEnd(width + 2) + view.measures.map((m) => `  ${m.padEnd(BAR_WIDTH + 7)}`).join('');
  const rows = view.items.map((item) => {
    const cells = item.shares.map((share) => {
      const filled = Math.round(share * BAR_WIDTH);
      return `  ${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)} ${(share * 100).toFixed(1).padStart(5)}%`;
    });
    return `  ${truncate(item.label, width).padEnd(width)}${cells.join('')}`;
  });
  return [header, ...rows];
}

/** Sums runs of consecutive buckets so at most `maxPoints` remain. */
function fit(view: TimeView, maxPoints: number): { view: TimeView; x: number[]; mergedBuckets: number } {
  const k = Math.max(1, Math.ceil(view.x.length / maxPoints));
  if (k === 1) return { view, x: view.x, mergedBuckets: 1 };
  const x = view.x.filter((_, i) => i % k === 0);
  const series: SeriesView[] = view.series.map((s) => {
    const values = x.map((_, j) => s.values.slice(j * k, j * k + k).reduce((a, b) => a + b, 0));
    return { ...s, values };
  });
  return { view: { ...view, x, series }, x, mergedBuckets: k };
}

function spanText(x: readonly number[]): string {
  const first = x[0] as number;
  const last = x[x.length - 1] as number;
  return isoDate(first) === isoDate(last) ? isoDate(first) : `${isoDate(first)} … ${isoDate(last)}`;
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
