// The run report read by a person (issue 15 item 17): latency bins drawn over
// their true range, a tokens/min chart that is not flattened under a far
// budget, legends that show numbers before any hover, thousands separators.
// The page is drawn in headless Chromium and its pixels checked.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderRunReport } from '../src/observe/report.js';
import { RunTimeline } from '../src/observe/timeline.js';
import type { RunEvent } from '../src/shared/events.js';
import { emptyUsage, type Summary } from '../src/shared/types.js';
import { limitState, progressSnapshot } from './support/events.js';
import { chromiumPerSuite, hasChromium } from './support/chromium.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const endpoint = '/v1/chat/completions' as const;

interface ChartData {
  title: string;
  x: number[];
  kind: string;
  series: Array<{ label: string; values: Array<number | null>; color: string }>;
}

function chartsOf(html: string): ChartData[] {
  return [...html.matchAll(/data-chart="([^"]*)"/g)].map(
    (m) => JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as ChartData,
  );
}

/** A 40-second run: 1,234 requests of 60–64 ms each (one latency bin), ~800 tokens/min under an 18M TPM budget. */
function sampleRun(options: { tpm: number; tokensPerRequest: number }): { summary: Summary; html: string } {
  let now = T0;
  const timeline = new RunTimeline({ now: () => now });
  timeline.onEvent({ type: 'started', input: 'in.jsonl', resumed: false, skippedAlready: 0, at: new Date(T0).toISOString() });
  for (let i = 0; i < 1_234; i++) {
    now = T0 + Math.floor((i / 1_234) * 40_000);
    const finished: RunEvent = {
      type: 'request_finished',
      customId: `c${i}`,
      line: i + 1,
      model: 'm',
      endpoint,
      status: 'succeeded',
      httpStatus: 200,
      code: null,
      attempts: 1,
      latencyMs: 60 + (i % 5),
      usage: { input_tokens: options.tokensPerRequest, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 0, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0 },
      costUsd: null,
      requestId: null,
    };
    timeline.onEvent({ type: 'attempt', customId: `c${i}`, model: 'm', endpoint, code: '200', latencyMs: 60, requestId: null });
    timeline.onEvent(finished);
    if (i % 50 === 0) timeline.onEvent({ type: 'progress', progress: progressSnapshot({ limits: { m: limitState(3_000, options.tpm) } }) });
  }
  const summary: Summary = {
    tool: { name: 'oai-batch', version: '0.0.0' },
    mode: 'online',
    input: { path: 'in.jsonl', fingerprint: 'x', lines: 1_234 },
    requests: { total: 1_234, succeeded: 1_234, failed: 0, skipped: 0, pending: 0 },
    attempts: { total: 1_234, retries: 0, rate_limited: 0, server_errors: 0, timeouts: 0 },
    usage: { ...emptyUsage(), input_tokens: 1_234 * options.tokensPerRequest },
    cost_usd: { total: 1.5, input: 1.5, cached_input: 0, cache_write_input: 0, output: 0 },
    by_model: {
      m: {
        requests: 1_234,
        ...emptyUsage(),
        input_tokens: 1_234 * options.tokensPerRequest,
        cost_usd: 1.5,
      },
    },
    unpriced_models: [],
    pricing: { as_of: '2026-01-01', source: 'test', batch_discount_applied: false },
    timing: {
      started_at: new Date(T0).toISOString(),
      finished_at: new Date(T0 + 40_000).toISOString(),
      wall_seconds: 40,
      requests_per_minute: 1_851,
      tokens_per_minute: 1_851 * options.tokensPerRequest,
      charged_tokens_per_minute: 0,
      latency_ms: { p50: 62, p90: 64, p95: 64, p99: 64, max: 64 },
    },
    limits: { m: { rpm: 3_000, tpm: options.tpm, source: 'headers' } },
    alerts: [],
    warnings: [],
    run_cost_usd: 1.5,
    requests_without_usage: 0,
    stopped_reason: null,
  };
  return { summary, html: renderRunReport({ summary, series: timeline.series(), latency: timeline.latency() }) };
}

describe('the run report page', () => {
  it('gives the latency histogram bin edges: 60–64 ms requests fill the bin from 57 to 80 ms', () => {
    const { html } = sampleRun({ tpm: 18_000_000, tokensPerRequest: 1 });
    const histogram = chartsOf(html).find((c) => c.kind === 'histogram');
    expect(histogram?.x).toEqual([40, 57, 80, 113]);
    expect(histogram?.series[0]?.values).toEqual([0, 1_234, 0]);
  });

  it('leaves out a TPM budget far above the usage, naming it in the title, and draws one that is near', () => {
    const far = chartsOf(sampleRun({ tpm: 18_000_000, tokensPerRequest: 1 }).html).find((c) => c.title.startsWith('Tokens per minute'));
    expect(far?.series.map((s) => s.label)).toEqual(['tokens/min (input + output, as reported)']);
    expect(far?.title).toMatch(/TPM budget 18,000,000, not drawn: the peak used 0\.\d+% of it/);
    const near = chartsOf(sampleRun({ tpm: 200_000, tokensPerRequest: 100 }).html).find((c) => c.title.startsWith('Tokens per minute'));
    expect(near?.series.map((s) => s.label)).toContain('TPM budget');
  });

  it('writes counts with thousands separators', () => {
    const { html } = sampleRun({ tpm: 18_000_000, tokensPerRequest: 1 });
    expect(html).toContain('1,234 total · 1,234 succeeded');
    expect(html).toContain('<td class="num">3,000</td>');
    expect(html).toContain('1,851 requests/min');
  });
});

describe.skipIf(!hasChromium)('the run report in headless Chromium', () => {
  const chrome = chromiumPerSuite('oai-batch-legible-');

  /** Per chart: legend texts before any hover, the plot area within the canvas, and the columns (upper half) and rows holding the first series' colour. */
  async function drawn(html: string): Promise<
    Array<{ legend: string[]; plot: { left: number; top: number; width: number; height: number }; columns: number[]; rows: number[] }>
  > {
    const file = join(chrome.dir, 'report.html');
    await writeFile(file, html);
    const page = await chrome.browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction("document.querySelectorAll('.chart-plot canvas').length === document.querySelectorAll('.chart-plot').length");
    const colours = chartsOf(html).map((c) => c.series[0]!.color);
    // Page code as a string: the tests compile without the DOM library.
    const result = (await page.evaluate(`[...document.querySelectorAll('.chart-plot')].map((el, i) => {
      const canvas = el.querySelector('canvas');
      const over = el.querySelector('.u-over').getBoundingClientRect();
      const box = canvas.getBoundingClientRect();
      const plot = { left: Math.round(over.left - box.left), top: Math.round(over.top - box.top), width: Math.round(over.width), height: Math.round(over.height) };
      const [r, g, b] = [1, 3, 5].map((at) => parseInt(${JSON.stringify(colours)}[i].slice(at, at + 2), 16));
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      // A pixel "of the series": its colour, or its translucent fill over white.
      const near = (p) => data[p + 3] > 0 && [r, g, b].every((c, k) => Math.abs(data[p + k] - c) < 12 || Math.abs(data[p + k] - (c * 0.6 + 255 * 0.4)) < 12);
      const columns = new Set(), rows = new Set();
      for (let y = plot.top; y < plot.top + plot.height; y++) {
        for (let x = plot.left; x < plot.left + plot.width; x++) {
          if (!near((y * canvas.width + x) * 4)) continue;
          rows.add(y - plot.top);
          // Columns only from the upper half: a bar's body, not the baseline an empty bin runs along.
          if (y < plot.top + plot.height / 2) columns.add(x - plot.left);
        }
      }
      const legend = [...el.querySelectorAll('.u-legend .u-value')].map((v) => v.textContent);
      return { legend, plot, columns: [...columns].sort((a, b) => a - b), rows: [...rows].sort((a, b) => a - b) };
    })`)) as Array<{ legend: string[]; plot: { left: number; top: number; width: number; height: number }; columns: number[]; rows: number[] }>;
    await page.close();
    expect(problems).toEqual([]);
    return result;
  }

  it('draws each latency bin over its own range, shows legend values before any hover, and scales tokens/min to the usage', async () => {
    const { html } = sampleRun({ tpm: 18_000_000, tokensPerRequest: 1 });
    const charts = chartsOf(html);
    const plots = await drawn(html);
    expect(plots).toHaveLength(charts.length);

    // The histogram: the filled bin spans 57 → 80 ms on an axis from 40 to 113 ms.
    const h = charts.findIndex((c) => c.kind === 'histogram');
    const histogram = plots[h]!;
    const xOf = (ms: number): number => ((ms - 40) / (113 - 40)) * histogram.plot.width;
    const middle = histogram.columns;
    expect(middle.length).toBeGreaterThan(0);
    expect(Math.min(...middle)).toBeGreaterThanOrEqual(Math.floor(xOf(57)) - 3);
    expect(Math.min(...middle)).toBeLessThanOrEqual(Math.ceil(xOf(57)) + 3);
    expect(Math.max(...middle)).toBeGreaterThanOrEqual(Math.floor(xOf(80)) - 3);
    expect(Math.max(...middle)).toBeLessThanOrEqual(Math.ceil(xOf(80)) + 3);

    // Legends: a number for every series before any hover, none a dash; thousands separated.
    for (const [i, chart] of plots.entries()) {
      for (const text of chart.legend.slice(1)) expect(text, charts[i]!.title).toMatch(/^(total|max|last|mean) [\d,.]+/);
      expect(chart.legend.join(' ')).not.toMatch(/—|--/);
    }
    expect(plots[h]!.legend).toEqual(['40 ms – 113 ms', 'total 1,234']);

    // Tokens/min: with the far budget left out, the usage line reaches the upper part of its plot.
    const t = charts.findIndex((c) => c.title.startsWith('Tokens per minute'));
    const tokens = plots[t]!;
    expect(Math.min(...tokens.rows)).toBeLessThan(tokens.plot.height * 0.2);
  }, 60_000);
});
