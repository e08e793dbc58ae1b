// The costs page and the organisation tables read by a person (issue 15 item
// 18): cost by line item as stacked bars, a per-line-item totals table, the
// partial last day marked, an anomaly label never clipped at the right edge;
// and `usage --days 30` in table mode prints per-day totals and the top
// groups, not every row (csv and json keep every row).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { renderHtml } from '../src/org/html.js';
import { COSTS_SPEC } from '../src/org/kinds.js';
import type { OrgReport } from '../src/org/report.js';
import { buildReport } from '../src/org/report.js';
import { viewsOf } from '../src/org/views.js';
import { spikeDaySec, syntheticCosts, type OrgHistoryConfig } from '../src/sim/org.js';
import { chromiumPerSuite, hasChromium } from './support/chromium.js';

const DAY = 86_400;
const CONFIG: OrgHistoryConfig = { seed: 3, anchorDaySec: Date.UTC(2026, 5, 1) / 1000 };
const SPIKE = spikeDaySec(CONFIG);

interface ChartData {
  title: string;
  x: number[];
  kind: string;
  stacked: boolean;
  shaded: Array<{ from: number; to: number; label: string }>;
  marks: Array<{ x: number; label: string }>;
  series: Array<{ label: string; values: number[]; color: string }>;
}

function chartsOf(html: string): ChartData[] {
  return [...html.matchAll(/data-chart="([^"]*)"/g)].map(
    (m) => JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as ChartData,
  );
}

/**
 * The costs page by line item over a range from `startBeforeSpikeSec` before the
 * spike day's midnight to `endAfterSpikeSec` after it (a day not over yet); the
 * spike day is its one anomaly.
 */
function costsPage(endAfterSpikeSec: number, startBeforeSpikeSec = 20 * DAY - 3_600): { html: string; report: OrgReport } {
  const range = { startSec: SPIKE - startBeforeSpikeSec, endSec: SPIKE + endAfterSpikeSec };
  const baselineRange = { startSec: SPIKE - 40 * DAY, endSec: range.startSec };
  const built = buildReport({
    spec: COSTS_SPEC,
    range,
    bucket: '1d',
    groupBy: ['line_item'],
    buckets: syntheticCosts({ ...range, groupBy: ['line_item'], filters: {} }, CONFIG),
    baseline: syntheticCosts({ ...baselineRange, groupBy: [], filters: {} }, CONFIG),
    nowSec: range.endSec,
    threshold: 3.5,
  });
  expect(built.report.anomalies.map((a) => a.date)).toEqual([new Date(SPIKE * 1000).toISOString().slice(0, 10)]);
  const views = viewsOf(built.report, COSTS_SPEC);
  return { html: renderHtml({ title: 'Costs', built, spec: COSTS_SPEC, views, threshold: 3.5, generatedSec: range.endSec }), report: built.report };
}

describe('the costs page', () => {
  it('draws cost by line item as stacked bars and shades the partial first and last days', () => {
    const { html } = costsPage(DAY + 6 * 3_600);
    const byLineItem = chartsOf(html).find((c) => c.title.startsWith('Cost by line item'));
    expect(byLineItem).toMatchObject({ kind: 'bars', stacked: true });
    expect(byLineItem?.shaded.map((s) => s.label)).toEqual(['partial day: from 01:00 UTC', 'partial day: to 06:00 UTC']);
    const last = byLineItem!.x.at(-1)!;
    expect(byLineItem?.shaded[1]).toMatchObject({ from: last - DAY / 2, to: last + DAY / 2 });
    // The day total chart marks them too.
    expect(chartsOf(html).find((c) => c.title.startsWith('Cost per day'))?.shaded).toHaveLength(2);
  });

  it('has a totals table with every line item, its cost and share, largest first', () => {
    const { html, report } = costsPage(DAY + 6 * 3_600);
    const table = /<table><caption>Cost by line item<\/caption>([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
    const items = [...new Set(report.rows.map((r) => String(r.line_item)))];
    const rows = [...table.matchAll(/<tr><td>([^<]*)<\/td><td class="num">\$([\d,.]+)<\/td><td class="num">([\d.]+)%<\/td><\/tr>/g)];
    expect(rows.map((r) => r[1]).sort()).toEqual(items.sort());
    const costs = rows.map((r) => Number(r[2]!.replace(/,/g, '')));
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
    expect(costs.reduce((a, b) => a + b, 0)).toBeCloseTo(report.totals.amount_usd!, 2);
    expect(rows.map((r) => Number(r[3])).reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
    expect(table).toContain(`total (${items.length})`);
  });
});

describe.skipIf(!hasChromium)('the costs page in headless Chromium', () => {
  const chrome = chromiumPerSuite('oai-batch-costs-');

  interface Drawn {
    width: number;
    plot: { left: number; top: number; width: number; height: number };
    /** Per plot column (CSS px from the plot's left), the palette colours found in it and how many of its rows are saturated. */
    columns: Array<{ colours: string[]; saturated: number }>;
    /** Red (#dc2626) pixels in the top 20 px of the plot, as x within the plot. */
    red: number[];
    /** RGBA of the rightmost plot column at mid height. */
    rightEdge: number[];
  }

  async function draw(name: string, html: string, chartIndex: number, palette: string[]): Promise<Drawn> {
    const file = join(chrome.dir, `${name}.html`);
    await writeFile(file, html);
    const page = await chrome.browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(String(error)));
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction("document.querySelectorAll('.chart-plot canvas').length === document.querySelectorAll('.chart-plot').length");
    const drawn = (await page.evaluate(`(() => {
      const el = document.querySelectorAll('.chart-plot')[${chartIndex}];
      const canvas = el.querySelector('canvas');
      const over = el.querySelector('.u-over').getBoundingClientRect();
      const box = canvas.getBoundingClientRect();
      const plot = { left: Math.round(over.left - box.left), top: Math.round(over.top - box.top), width: Math.round(over.width), height: Math.round(over.height) };
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      const palette = ${JSON.stringify(palette)}.map((c) => [1, 3, 5].map((at) => parseInt(c.slice(at, at + 2), 16)));
      const at = (x, y) => { const p = (y * canvas.width + x) * 4; return [data[p], data[p + 1], data[p + 2], data[p + 3]]; };
      const columns = [], red = [];
      for (let x = plot.left; x < plot.left + plot.width; x++) {
        const colours = new Set(); let saturated = 0;
        for (let y = plot.top; y < plot.top + plot.height; y++) {
          const [r, g, b, a] = at(x, y);
          if (a === 0) continue;
          if (Math.max(r, g, b) - Math.min(r, g, b) > 60) saturated++;
          palette.forEach((c, i) => { if (c[0] === r && c[1] === g && c[2] === b) colours.add(${JSON.stringify(palette)}[i]); });
          if (y < plot.top + 20 && r === 0xdc && g === 0x26 && b === 0x26) red.push(x - plot.left);
        }
        columns.push({ colours: [...colours], saturated });
      }
      return { width: canvas.width, plot, columns, red, rightEdge: at(plot.left + plot.width - 1, plot.top + Math.round(plot.height / 2)) };
    })()`)) as Drawn;
    await page.close();
    expect(problems).toEqual([]);
    return drawn;
  }

  /** x of `value` within the plot, on the bar chart's padded scale (half a slot beyond each end). */
  function pixelOf(chart: ChartData, drawn: Drawn, value: number): number {
    const x = chart.x;
    const min = x[0]! - (x[1]! - x[0]!) / 2;
    const max = x.at(-1)! + (x.at(-1)! - x.at(-2)!) / 2;
    return Math.round(((value - min) / (max - min)) * drawn.plot.width);
  }

  it('stacks the line items in one bar per day, keeps the anomaly label whole at the right edge, and greys the partial day', async () => {
    // The spike is the last full day; the day after it is not over (06:00).
    const { html } = costsPage(DAY + 6 * 3_600);
    const charts = chartsOf(html);
    const index = charts.findIndex((c) => c.title.startsWith('Cost by line item'));
    const chart = charts[index]!;
    const drawn = await draw('edge', html, index, chart.series.map((s) => s.color));

    // A column inside the spike day's bar (beside the dashed anomaly line) is filled most of the plot's height, by at least two line items.
    const spikeX = pixelOf(chart, drawn, SPIKE);
    const column = drawn.columns[spikeX + 6]!;
    expect(column.saturated).toBeGreaterThan(drawn.plot.height * 0.8);
    expect(column.colours.length).toBeGreaterThanOrEqual(2);

    // The label near the right edge, and one near the left edge, are drawn whole inside the plot:
    // as many red text pixels as the same label in the middle of a chart.
    const textPixels = async (name: string, page: { html: string }): Promise<number> => {
      const pageCharts = chartsOf(page.html);
      const i = pageCharts.findIndex((c) => c.title.startsWith('Cost by line item'));
      const d = name === 'right' ? drawn : await draw(name, page.html, i, pageCharts[i]!.series.map((s) => s.color));
      const lineX = pixelOf(pageCharts[i]!, d, SPIKE);
      return d.red.filter((x) => Math.abs(x - lineX) > 3).length;
    };
    const reference = await textPixels('middle', costsPage(5 * DAY + 6 * 3_600, 10 * DAY - 3_600));
    expect(reference).toBeGreaterThan(60);
    expect(await textPixels('right', { html })).toBeGreaterThanOrEqual(reference * 0.95);
    expect(await textPixels('left', costsPage(6 * DAY + 6 * 3_600, DAY - 3_600))).toBeGreaterThanOrEqual(reference * 0.95);

    // The partial last day is shaded grey (a translucent #6b7280 on the transparent canvas) to the plot's right edge.
    const [r, g, b, a] = drawn.rightEdge;
    expect(a!).toBeGreaterThan(20);
    for (const [c, grey] of [[r, 0x6b], [g, 0x72], [b, 0x80]] as const) expect(Math.abs(c! - grey)).toBeLessThan(12);
  }, 60_000);
});

async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  const stdout = new PassThrough();
  const out: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString('utf8')));
  const code = await main(args, {
    stdin: new PassThrough(),
    stdout,
    stderr: new PassThrough().resume(),
    env: {},
    cwd: process.cwd(),
    signal: new AbortController().signal,
    force: new AbortController().signal,
  });
  return { code, stdout: out.join('') };
}

describe('usage and costs in table mode', () => {
  it('usage --days 30 prints per-day totals and the top groups, not every row; csv and json keep every row', async () => {
    const json = JSON.parse((await cli(['usage', '--simulate', '--days', '30', '--format', 'json'])).stdout) as OrgReport;
    expect(json.rows.length).toBeGreaterThan(100);
    const csv = (await cli(['usage', '--simulate', '--days', '30', '--format', 'csv'])).stdout.trim().split('\n');
    expect(csv).toHaveLength(json.rows.length + 1);

    const table = await cli(['usage', '--simulate', '--days', '30']);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines.length).toBeLessThan(json.rows.length);
    // One line per UTC day the range touches (31: the first and last cut short), then a total.
    const dayLines = lines.filter((l) => /^│ \d{4}-\d{2}-\d{2}/.test(l));
    expect(dayLines).toHaveLength(31);
    expect(dayLines[0]).toMatch(/^│ \d{4}-\d{2}-\d{2} from \d\d:\d\d \(partial\)/);
    expect(dayLines.at(-1)).toMatch(/^│ \d{4}-\d{2}-\d{2} to \d\d:\d\d \(partial\)/);
    const models = [...new Set(json.rows.map((r) => String(r.model)))];
    expect(table.stdout).toMatch(new RegExp(`All ${models.length} groups \\(model\\) by tokens`));
    for (const model of models) expect(lines.filter((l) => l.startsWith(`│ ${model} `))).toHaveLength(1);
    expect(table.stdout).toContain(`${json.rows.length} rows in all: --format csv or --format json prints every one.`);
  }, 60_000);

  it('costs lists the top 10 line items and sums the rest', async () => {
    const table = await cli(['costs', '--simulate', '--days', '30']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/Top 10 of \d+ groups \(line_item\) by cost/);
    expect(table.stdout).toMatch(/│ other \(\d+\)\s+│\s+\$[\d,.]+ │\s+[\d.]+% │/);
  }, 60_000);
});
