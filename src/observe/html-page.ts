// Self-contained HTML pages: one file with uPlot (script and CSS) inlined,
// charts, tables and share bars, that opens with no network.
//
// In:  chart specs ({title, x, series}), table specs, and page sections.
// Out: HTML strings; renderPage() wraps sections into the whole page.
// Owns escaping (every text goes through escapeHtml; chart data travels as
// JSON in a data- attribute) and the one inline script that draws each
// chart. Used by the organisation reports (src/org/html.ts) and the run report.
// A Content-Security-Policy forbids every fetch, so a page that works offline
// is one that works at all.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface ChartSeries {
  label: string;
  /** One value per x; null leaves a gap. */
  values: ReadonlyArray<number | null>;
  /** Colour as #rrggbb; default from the page palette. */
  color?: string;
  /**
   * What the legend shows while the cursor is off the chart (it shows the
   * hovered value otherwise): the series' total, maximum, last or mean value.
   * Default `total` for bars and histograms, `max` for lines.
   */
  idle?: 'total' | 'max' | 'last' | 'mean';
}

export interface ChartSpec {
  title: string;
  /**
   * x values: Unix seconds when `xIsTime` (default), else plain numbers. For
   * a `histogram`, the bin edges: one more than each series has values (bin
   * i spans x[i] to x[i + 1]).
   */
  x: readonly number[];
  series: readonly ChartSeries[];
  /** `line` (default), `bars` (one bar centred on each x), or `histogram` (each bin filled over its own range). */
  kind?: 'line' | 'bars' | 'histogram';
  /** How y values read: counts (1.2M), USD ($1.23), bytes (1.2 MiB) or milliseconds. Default `count`. */
  unit?: 'count' | 'usd' | 'bytes' | 'ms';
  /** How plain x values read (not for time axes). Default `count`. */
  xUnit?: 'count' | 'usd' | 'bytes' | 'ms';
  /** Default true: x is Unix seconds, shown as UTC dates. */
  xIsTime?: boolean;
  /** Vertical markers, e.g. anomalous days. */
  marks?: ReadonlyArray<{ x: number; label: string }>;
  /** `bars` only: stack the series in each bar (parts of one whole, e.g. cost by line item), the first at the bottom. */
  stacked?: boolean;
  /** Shaded spans of x with a label, e.g. a day not over yet. */
  shaded?: ReadonlyArray<{ from: number; to: number; label: string }>;
  /** Plot height in CSS pixels. Default 280. */
  heightPx?: number;
}

export interface TableColumn {
  label: string;
  /** Numbers read best right-aligned. Default `left`. */
  align?: 'left' | 'right';
}

export type Cell = string | number | boolean | null | undefined;

export interface TableSpec {
  caption?: string;
  columns: ReadonlyArray<string | TableColumn>;
  rows: ReadonlyArray<ReadonlyArray<Cell>>;
  /** A last row set apart, e.g. totals. */
  footer?: ReadonlyArray<Cell>;
}

export interface ShareBarsSpec {
  title: string;
  /** Column names, one bar per column, e.g. ["tokens", "requests"]. */
  measures: readonly string[];
  /** Each share is 0..1; `text` is shown beside the bar (default the percentage). */
  items: ReadonlyArray<{ label: string; shares: readonly number[]; texts?: readonly string[] }>;
}

export interface PageSpec {
  title: string;
  /** A line under the title (range, source, …). */
  subtitle?: string;
  /** HTML fragments from the functions below, in order. */
  sections: readonly string[];
}

const PALETTE = ['#2563eb', '#db2777', '#16a34a', '#ea580c', '#7c3aed', '#0891b2', '#ca8a04', '#dc2626', '#4b5563'];

/** Text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** A chart: the container the page script draws into, with its data as JSON. */
export function chartHtml(spec: ChartSpec): string {
  const data = {
    title: spec.title,
    x: spec.x,
    series: spec.series.map((s, i) => ({
      label: s.label,
      values: s.values,
      color: s.color ?? PALETTE[i % PALETTE.length],
      idle: s.idle ?? ((spec.kind ?? 'line') === 'line' ? 'max' : 'total'),
    })),
    kind: spec.kind ?? 'line',
    unit: spec.unit ?? 'count',
    xUnit: spec.xUnit ?? 'count',
    xIsTime: spec.kind === 'histogram' ? false : (spec.xIsTime ?? true),
    marks: spec.marks ?? [],
    stacked: spec.kind === 'bars' && spec.stacked === true,
    shaded: spec.shaded ?? [],
    heightPx: spec.heightPx ?? 280,
  };
  // Shaded spans are named under the title: a label inside the plot would sit on the data.
  const shadedNote = data.shaded.length > 0 ? ` <small class="note">(grey: ${escapeHtml(data.shaded.map((s) => s.label).join(' · '))})</small>` : '';
  return (
    `<figure class="chart"><figcaption>${escapeHtml(spec.title)}${shadedNote}</figcaption>` +
    `<div class="chart-plot" data-chart="${escapeHtml(JSON.stringify(data))}"></div></figure>`
  );
}

export function tableHtml(spec: TableSpec): string {
  const columns = spec.columns.map((c) => (typeof c === 'string' ? { label: c } : c));
  const cellHtml = (tag: 'td' | 'th', value: Cell, i: number): string => {
    const align = columns[i]?.align === 'right' ? ' class="num"' : '';
    return `<${tag}${align}>${value === null || value === undefined ? '' : escapeHtml(cellText(value))}</${tag}>`;
  };
  const head = `<thead><tr>${columns.map((c) => `<th${c.align === 'right' ? ' class="num"' : ''}>${escapeHtml(c.label)}</th>`).join('')}</tr></thead>`;
  const body = `<tbody>${spec.rows.map((row) => `<tr>${row.map((v, i) => cellHtml('td', v, i)).join('')}</tr>`).join('')}</tbody>`;
  const foot = spec.footer ? `<tfoot><tr>${spec.footer.map((v, i) => cellHtml('th', v, i)).join('')}</tr></tfoot>` : '';
  const caption = spec.caption ? `<caption>${escapeHtml(spec.caption)}</caption>` : '';
  return `<table>${caption}${head}${body}${foot}</table>`;
}

/** A number with thousands separators (1,234,567; 0.000123 keeps its digits); other cells as they are. */
function cellText(value: Exclude<Cell, null | undefined>): string {
  return typeof value === 'number' ? value.toLocaleString('en-US', { maximumFractionDigits: 6 }) : String(value);
}

/** Horizontal bars for shares of a whole, one column per measure. */
export function shareBarsHtml(spec: ShareBarsSpec): string {
  const head = `<tr><th></th>${spec.measures.map((m) => `<th>${escapeHtml(m)}</th>`).join('')}</tr>`;
  const rows = spec.items
    .map((item) => {
      const cells = item.shares
        .map((share, i) => {
          const pct = Math.max(0, Math.min(1, share)) * 100;
          const text = item.texts?.[i] ?? `${pct.toFixed(1)}%`;
          return `<td><div class="bar"><span style="width:${pct.toFixed(2)}%"></span></div><small>${escapeHtml(text)}</small></td>`;
        })
        .join('');
      return `<tr><th>${escapeHtml(item.label)}</th>${cells}</tr>`;
    })
    .join('');
  return `<figure class="shares"><figcaption>${escapeHtml(spec.title)}</figcaption><table class="share-table">${head}${rows}</table></figure>`;
}

/** A titled section; `collapsed` puts long content (such as every row) behind a disclosure. */
export function sectionHtml(title: string, content: string, options: { collapsed?: boolean } = {}): string {
  if (options.collapsed) return `<section><details><summary>${escapeHtml(title)}</summary>${content}</details></section>`;
  return `<section><h2>${escapeHtml(title)}</h2>${content}</section>`;
}

/** Plain text as a paragraph. */
export function paragraphHtml(text: string): string {
  return `<p>${escapeHtml(text)}</p>`;
}

export function renderPage(page: PageSpec): string {
  const { script, css } = uplotAssets();
  const subtitle = page.subtitle ? `<p class="subtitle">${escapeHtml(page.subtitle)}</p>` : '';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Nothing may be fetched: scripts and styles are inline, images only data: URLs.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${escapeHtml(page.title)}</title>`,
    `<style>${css}\n${PAGE_CSS}</style>`,
    `<script>${inlineScript(script)}</script>`,
    '</head><body><main>',
    `<h1>${escapeHtml(page.title)}</h1>${subtitle}`,
    ...page.sections,
    '</main>',
    `<script>${inlineScript(DRAW_SCRIPT)}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

let cachedAssets: { script: string; css: string } | undefined;

/** uPlot's minified script and stylesheet, read from node_modules at run time. */
function uplotAssets(): { script: string; css: string } {
  if (!cachedAssets) {
    const require = createRequire(import.meta.url);
    cachedAssets = {
      script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  }
  return cachedAssets;
}

/** `</script` inside a script would end it early; `<\/script` means the same to JavaScript. */
function inlineScript(code: string): string {
  return code.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

const PAGE_CSS = `
:root { color-scheme: light; --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.subtitle { color: var(--muted); margin: 0 0 16px; }
figure { margin: 20px 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
.chart-plot { width: 100%; min-height: 120px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; white-space: nowrap; }
thead th { border-bottom: 2px solid #d1d5db; }
tfoot th { border-top: 2px solid #d1d5db; }
.num { text-align: right; }
tbody tr:nth-child(even) { background: #f9fafb; }
.share-table td { min-width: 220px; }
.bar { display: inline-block; vertical-align: middle; width: 160px; height: 10px; background: var(--line); margin-right: 8px; }
.bar span { display: block; height: 100%; background: var(--accent); }
details summary { cursor: pointer; font-weight: 600; font-size: 17px; margin: 28px 0 8px; }
.flag { color: #b91c1c; font-weight: 600; }
.note { color: var(--muted); font-weight: 400; }
`;

/** Draws every [data-chart] element with uPlot (UTC time axis, unit-aware labels, marks as dashed lines). */
const DRAW_SCRIPT = `
(function () {
  function compact(v, unit) {
    if (v == null || !isFinite(v)) return '';
    if (unit === 'bytes') {
      var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
      while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
      return +v.toPrecision(3) + ' ' + u[i];
    }
    var p = unit === 'usd' ? '$' : '', s = unit === 'ms' ? ' ms' : '', a = Math.abs(v);
    if (a >= 1e9) return p + +(v / 1e9).toPrecision(3) + 'B' + s;
    if (a >= 1e6) return p + +(v / 1e6).toPrecision(3) + 'M' + s;
    if (a >= 1e4) return p + +(v / 1e3).toPrecision(3) + 'k' + s;
    if (unit === 'usd') return p + (v === 0 ? '0' : a >= 1 ? v.toFixed(2) : v.toFixed(4));
    return (+v.toPrecision(4)).toLocaleString('en-US') + s;
  }
  // A legend value in full, with thousands separators: 1,234,567 tokens/min, not 1.23M.
  function exact(v, unit) {
    if (v == null || !isFinite(v)) return '';
    if (unit === 'bytes') return compact(v, unit);
    if (unit === 'usd') return '$' + (Math.abs(v) >= 1 ? v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : +v.toPrecision(3));
    return v.toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) >= 100 ? 0 : 2 }) + (unit === 'ms' ? ' ms' : '');
  }
  // What a legend shows while no point is hovered, instead of uPlot's dash.
  function idleText(values, how, unit) {
    var seen = values.filter(function (v) { return v != null && isFinite(v); });
    if (seen.length === 0) return '–';
    if (how === 'last') return 'last ' + exact(seen[seen.length - 1], unit);
    if (how === 'max') return 'max ' + exact(Math.max.apply(null, seen), unit);
    var sum = seen.reduce(function (a, b) { return a + b; }, 0);
    return how === 'mean' ? 'mean ' + exact(sum / seen.length, unit) : 'total ' + exact(sum, unit);
  }
  function markPlugin(marks) {
    return { hooks: { draw: function (u) {
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = '#dc2626';
      ctx.fillStyle = '#dc2626';
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.font = (12 * devicePixelRatio) + 'px system-ui, sans-serif';
      // uPlot leaves its own text alignment on the context: set ours, and put a label that would
      // run past the plot's right edge on the left of its line, so it is never clipped.
      ctx.textBaseline = 'top';
      marks.forEach(function (m) {
        var x = Math.round(u.valToPos(m.x, 'x', true));
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        var gap = 4 * devicePixelRatio;
        var fitsRight = x + gap + ctx.measureText(m.label).width <= u.bbox.left + u.bbox.width;
        ctx.textAlign = fitsRight ? 'left' : 'right';
        ctx.fillText(m.label, fitsRight ? x + gap : x - gap, u.bbox.top + 4 * devicePixelRatio);
      });
      ctx.restore();
    } } };
  }
  // Grey spans under the series (drawn with the axes); the caption names them.
  function shadePlugin(spans) {
    return { hooks: { drawAxes: function (u) {
      var ctx = u.ctx, left = u.bbox.left, right = u.bbox.left + u.bbox.width;
      ctx.save();
      ctx.fillStyle = 'rgba(107, 114, 128, 0.14)';
      spans.forEach(function (span) {
        var a = Math.max(left, u.valToPos(span.from, 'x', true)), b = Math.min(right, u.valToPos(span.to, 'x', true));
        if (b > a) ctx.fillRect(a, u.bbox.top, b - a, u.bbox.height);
      });
      ctx.restore();
    } } };
  }
  var charts = [];
  document.querySelectorAll('[data-chart]').forEach(function (el) {
    var spec = JSON.parse(el.getAttribute('data-chart'));
    // The data as given, before any widening below: what idle legends sum up.
    var idleValues = spec.series.map(function (s) { return s.values.slice(); });
    if (spec.x.length === 1) {
      // One point (a run shorter than one bucket) gives uPlot an empty x range: widen it to a flat step.
      spec.x = [spec.x[0] - 1, spec.x[0]];
      spec.series.forEach(function (s) { s.values = [s.values[0], s.values[0]]; });
    }
    var isHistogram = spec.kind === 'histogram';
    if (isHistogram) {
      // Bin i spans edges i..i+1: a step after each edge, the last value repeated to reach the last edge.
      spec.series.forEach(function (s) { s.values = s.values.concat([s.values[s.values.length - 1]]); });
    }
    var bars = spec.kind === 'bars' && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 60] }) : null;
    // Stacked bars: series i is drawn as the sum of series 0..i, tallest first, so each bar shows its own part
    // on top of those before it; uPlot draws (and lists) them from the top of the stack down.
    var order = spec.series.map(function (s, i) { return i; });
    if (spec.stacked && bars) {
      var running = spec.x.map(function () { return 0; });
      spec.series.forEach(function (s) {
        running = running.map(function (r, k) { return r + (s.values[k] || 0); });
        s.values = running.slice();
      });
      order.reverse();
    }
    var steps = isHistogram && uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : null;
    var filled = bars || steps;
    var edges = spec.x;
    var isDaily = spec.x.every(function (t) { return t % 86400 === 0; });
    var xSeries = isHistogram
      ? { label: 'bin', value: function (u, v, si, idx) {
          if (idx == null) return exact(edges[0], spec.xUnit) + ' – ' + exact(edges[edges.length - 1], spec.xUnit);
          var i = Math.min(idx, edges.length - 2);
          return exact(edges[i], spec.xUnit) + ' – ' + exact(edges[i + 1], spec.xUnit);
        } }
      : spec.xIsTime
        ? { label: 'UTC', value: function (u, v, si, idx) { return idx == null ? utc(edges[0]) + ' → ' + utc(edges[edges.length - 1]) : utc(v); } }
        : { label: 'x', value: function (u, v) { return v == null ? '' : exact(v, spec.xUnit); } };
    // Whole days read as dates, anything finer as date and time (UTC).
    function utc(sec) {
      if (sec == null || !isFinite(sec)) return '';
      var iso = new Date(sec * 1000).toISOString();
      return isDaily ? iso.slice(0, 10) : iso.slice(0, 19).replace('T', ' ');
    }
    var series = [xSeries].concat(order.map(function (i) {
      var s = spec.series[i];
      return {
        label: s.label,
        stroke: s.color,
        width: spec.stacked ? 1 : 2,
        // Stacked parts are opaque: translucent ones would mix with the parts behind them.
        fill: filled && /^#[0-9a-f]{6}$/i.test(s.color) ? s.color + (spec.stacked ? '' : '99') : undefined,
        paths: filled || undefined,
        points: { show: !filled && spec.x.length <= 62 },
        value: function (u, v, si, idx) {
          if (idx == null) return idleText(idleValues[i], s.idle, spec.unit);
          // The series' own value: histograms repeat their last bin, stacks plot running sums.
          if (isHistogram || spec.stacked) v = idleValues[i][Math.min(idx, idleValues[i].length - 1)];
          return v == null ? '–' : exact(v, spec.unit);
        }
      };
    }));
    var xScale = { time: spec.xIsTime };
    if (isHistogram) xScale.range = function () { return [edges[0], edges[edges.length - 1]]; };
    else if (bars && edges.length > 1) {
      // Room for the first and last bars: half a slot beyond each end, so neither is cut in half.
      var padLeft = (edges[1] - edges[0]) / 2, padRight = (edges[edges.length - 1] - edges[edges.length - 2]) / 2;
      xScale.range = function () { return [edges[0] - padLeft, edges[edges.length - 1] + padRight]; };
    }
    var opts = {
      width: Math.max(320, el.clientWidth || 900),
      height: spec.heightPx,
      series: series,
      // Volumes read against zero: the y axis starts at 0 unless the data go below it.
      // Marks' labels get a free row above the tallest value.
      scales: { x: xScale, y: { range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * (spec.marks.length ? 1.15 : 1.05) : 1]; } } },
      axes: [
        spec.xIsTime ? {} : { values: function (u, splits) { return splits.map(function (v) { return compact(v, spec.xUnit); }); } },
        { size: 72, values: function (u, splits) { return splits.map(function (v) { return compact(v, spec.unit); }); } }
      ],
      plugins: (spec.shaded.length ? [shadePlugin(spec.shaded)] : []).concat(spec.marks.length ? [markPlugin(spec.marks)] : [])
    };
    if (spec.xIsTime) opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'); };
    var data = [spec.x].concat(order.map(function (i) { return spec.series[i].values; }));
    charts.push({ el: el, plot: new uPlot(opts, data, el) });
  });
  window.addEventListener('resize', function () {
    charts.forEach(function (c) { c.plot.setSize({ width: Math.max(320, c.el.clientWidth), height: c.plot.height }); });
  });
})();
`;
