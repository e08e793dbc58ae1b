// Self-contained HTML pages (src/report/page.ts) and the organisation report
// page built on them: escaping, no outside resources, and — in headless
// Chromium — every uPlot chart drawn, no console errors, no request beyond
// the file itself, and a screenshot.

import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderHtml } from '../src/org/html.js';
import { COSTS_SPEC, USAGE_SPECS } from '../src/org/kinds.js';
import { bucketsOf } from '../src/org/range.js';
import { buildReport } from '../src/org/report.js';
import { viewsOf } from '../src/org/views.js';
import { chartHtml, escapeHtml, renderPage, sectionHtml, shareBarsHtml, tableHtml } from '../src/observe/html-page.js';
import { spikeDaySec, syntheticCosts, syntheticUsage, type OrgHistoryConfig } from '../src/sim/org.js';
import { CHROMIUM, chromiumPerSuite, hasChromium } from './support/chromium.js';

const DAY = 86_400;
const HOSTILE = `</script><script>window.__pwned = 1</script><img src="https://example.com/x.png">`;

describe('page building', () => {
  it('escapes text for content and attributes', () => {
    expect(escapeHtml(`<a href="x">Tom & 'Jerry'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;');
  });

  it('puts chart data in an escaped data- attribute and text in escaped cells', () => {
    const chart = chartHtml({ title: HOSTILE, x: [1, 2], series: [{ label: HOSTILE, values: [1, null] }] });
    expect(chart).not.toContain('</script>');
    expect(chart).toContain('&lt;/script&gt;');
    const json = /data-chart="([^"]*)"/.exec(chart)?.[1] ?? '';
    const data = JSON.parse(json.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&'));
    expect(data).toMatchObject({ title: HOSTILE, x: [1, 2], series: [{ label: HOSTILE, values: [1, null] }], kind: 'line', unit: 'count', xIsTime: true });
    const table = tableHtml({ columns: ['a', { label: 'n', align: 'right' }], rows: [[HOSTILE, 3]], footer: ['total', 3] });
    expect(table).not.toContain('<script>');
    expect(table).toContain('<td class="num">3</td>');
    expect(table).toContain('<tfoot><tr><th>total</th><th class="num">3</th></tr></tfoot>');
  });

  it('inlines uPlot and refers to nothing outside the page', () => {
    const html = renderPage({ title: HOSTILE, subtitle: HOSTILE, sections: [sectionHtml(HOSTILE, chartHtml({ title: 't', x: [0], series: [] }))] });
    expect(html).toContain('uPlot');
    expect(html).toContain('.uplot');
    expect(html).toContain(`Content-Security-Policy" content="default-src 'none'`);
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i);
    // Only the two inline scripts: uPlot and the drawing script.
    expect(html.match(/<script>/g)).toHaveLength(2);
  });
});

/** The little of the DOM the page checks use (the tests compile without DOM types). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}

/** `globalThis` in the page, typed with just the document calls the checks make. */
type PageGlobal = { document: { querySelectorAll(selector: string): Iterable<CanvasLike> & { length: number } } };

/** A page exercising every kind of chart and block page.ts offers. */
function samplePage(): string {
  const start = Date.UTC(2026, 9, 1) / 1000;
  const x = Array.from({ length: 30 }, (_, i) => start + i * DAY);
  const wave = x.map((_, i) => 1_000 + 400 * Math.sin(i / 3) + (i === 20 ? 3_000 : 0));
  return renderPage({
    title: `Sample ${HOSTILE}`,
    subtitle: 'every block of page.ts',
    sections: [
      sectionHtml(
        'Charts',
        [
          chartHtml({ title: 'Lines with a mark', x, series: [{ label: 'a', values: wave }, { label: 'b', values: wave.map((v) => v / 2) }], marks: [{ x: x[20] as number, label: 'spike' }] }),
          chartHtml({ title: 'Bars in USD', x, series: [{ label: 'cost', values: wave.map((v) => v / 1_000) }], kind: 'bars', unit: 'usd' }),
          chartHtml({ title: 'Plain numbers, a gap', x: [1, 2, 3, 4], xIsTime: false, series: [{ label: 'n', values: [3, null, 5, 4] }], unit: 'ms' }),
        ].join(''),
      ),
      shareBarsHtml({ title: 'Shares', measures: ['tokens', 'requests'], items: [{ label: HOSTILE, shares: [0.7, 0.4] }, { label: 'b', shares: [0.3, 0.6] }] }),
      sectionHtml('Table', tableHtml({ columns: ['k', { label: 'v', align: 'right' }], rows: [['a', 1], ['b', 2]] }), { collapsed: true }),
    ],
  });
}

/** The org usage and costs pages, from the simulator's ground truth around its spike day. */
function orgPages(): Array<{ name: string; html: string; charts: number }> {
  const config: OrgHistoryConfig = { seed: 3, anchorDaySec: Date.UTC(2026, 5, 1) / 1000 };
  const spike = spikeDaySec(config);
  const range = { startSec: spike - 25 * DAY + 3_600, endSec: spike + 5 * DAY };
  const baselineRange = { startSec: spike - 40 * DAY, endSec: range.startSec };
  const pages: Array<{ name: string; html: string; charts: number }> = [];
  for (const [name, spec, buckets, baseline, groupBy] of [
    ['usage', USAGE_SPECS.completions, syntheticUsage('completions', { ...range, width: '1d', groupBy: ['model'], filters: {} }, config), syntheticUsage('completions', { ...baselineRange, width: '1d', groupBy: [], filters: {} }, config), ['model']],
    ['costs', COSTS_SPEC, syntheticCosts({ ...range, groupBy: ['line_item', 'project_id'], filters: {} }, config), syntheticCosts({ ...baselineRange, groupBy: [], filters: {} }, config), ['line_item', 'project_id']],
  ] as const) {
    const built = buildReport({ spec, range, bucket: '1d', groupBy: [...groupBy], buckets, baseline, nowSec: range.endSec + DAY, threshold: 3.5 });
    expect(built.report.anomalies.length).toBeGreaterThan(0);
    const views = viewsOf(built.report, spec);
    expect(views.times[0]?.x).toEqual(bucketsOf(range, '1d').map((b) => b.startSec));
    pages.push({ name, html: renderHtml({ title: `Org ${name}`, built, spec, views, threshold: 3.5, generatedSec: range.endSec }), charts: views.times.length });
  }
  return pages;
}

describe.skipIf(!hasChromium)('in headless Chromium', () => {
  const chrome = chromiumPerSuite('oai-batch-page-');

  /** Opens `html` from a file; returns what the page drew and did. */
  async function open(name: string, html: string, expectedCharts: number) {
    const file = join(chrome.dir, `${name}.html`);
    await writeFile(file, html);
    const page = await chrome.browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    // These callbacks run in the browser (Playwright sends their source): they may use nothing from this file.
    await page.waitForFunction((n) => (globalThis as unknown as PageGlobal).document.querySelectorAll('.uplot canvas').length >= n, expectedCharts, { timeout: 10_000 });
    const canvases = await page.evaluate(() =>
      [...(globalThis as unknown as PageGlobal).document.querySelectorAll('.uplot canvas')].map((canvas) => {
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        let inked = 0;
        let coloured = 0;
        for (let i = 0; i < data.length; i += 4) {
          if ((data[i + 3] as number) === 0) continue;
          inked++;
          const [r, g, b] = [data[i] as number, data[i + 1] as number, data[i + 2] as number];
          // Series are drawn in saturated palette colours; the grid and axes are grey.
          if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
        }
        return { width: canvas.width, height: canvas.height, inked, coloured };
      }),
    );
    const pwned = await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned ?? 0);
    const screenshot = join(chrome.dir, `${name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.close();
    return { canvases, problems, requests, pwned, screenshot, file };
  }

  it('draws every chart of a page.ts page, runs no injected script, and fetches nothing', async () => {
    const result = await open('sample', samplePage(), 3);
    expect(result.problems).toEqual([]);
    expect(result.pwned).toBe(0);
    expect(result.requests).toEqual([pathToFileURL(result.file).href]);
    expect(result.canvases).toHaveLength(3);
    for (const canvas of result.canvases) {
      expect(canvas.width).toBeGreaterThan(300);
      expect(canvas.height).toBeGreaterThan(100);
      expect(canvas.coloured).toBeGreaterThan(200);
    }
    const png = await readFile(result.screenshot);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect((await stat(result.screenshot)).size).toBeGreaterThan(10_000);
  });

  it('renders the usage and costs reports with their charts', async () => {
    for (const { name, html, charts } of orgPages()) {
      const result = await open(`org-${name}`, html, charts);
      expect(result.problems, name).toEqual([]);
      expect(result.requests).toEqual([pathToFileURL(result.file).href]);
      expect(result.canvases).toHaveLength(charts);
      for (const canvas of result.canvases) {
        expect(canvas.width, name).toBeGreaterThan(300);
        expect(canvas.coloured, name).toBeGreaterThan(200);
      }
      expect((await stat(result.screenshot)).size).toBeGreaterThan(10_000);
    }
  });
});

if (!hasChromium) {
  console.warn(`report-page.test.ts: ${CHROMIUM} not found, so the Chromium rendering tests are skipped (apt-get install -y chromium; CI installs it).`);
}
