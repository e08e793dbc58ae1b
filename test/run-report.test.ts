// The run report (--report FILE.html): the bounded time series behind it
// (injected clock), the page it renders, and a real run's report drawn in
// headless Chromium.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../src/cli/command.js';
import { main } from '../src/cli/main.js';
import type { RunEvent } from '../src/shared/events.js';
import type { ModelLimitState } from '../src/shared/types.js';
import type { Summary } from '../src/shared/types.js';
import { renderRunReport } from '../src/observe/report.js';
import { RunTimeline } from '../src/observe/timeline.js';
import { startSimulator } from '../src/sim/server.js';
import { chatLine, readJson, tempDir, writeJsonl } from './support/files.js';
import { limitState, progressSnapshot } from './support/events.js';
import { CHROMIUM, hasChromium, launchChromium } from './support/chromium.js';

const endpoint = '/v1/chat/completions' as const;
const T0 = Date.parse('2026-03-01T12:00:00Z');

function clock(): { now: () => number; at(ms: number): void } {
  let current = T0;
  return { now: () => current, at: (ms) => (current = T0 + ms) };
}

const attempt = (code = '200'): RunEvent => ({ type: 'attempt', customId: 'a', model: 'm', endpoint, code, latencyMs: 10, requestId: null });
const finished = (latencyMs: number, status: 'succeeded' | 'failed' = 'succeeded', tokens = 0): RunEvent => ({
  type: 'request_finished',
  customId: 'a',
  line: 1,
  model: 'm',
  endpoint,
  status,
  httpStatus: status === 'succeeded' ? 200 : 400,
  code: null,
  attempts: 1,
  latencyMs,
  usage:
    status === 'succeeded'
      ? { input_tokens: tokens, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 0, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0 }
      : null,
  costUsd: null,
  requestId: null,
});
const progress = (limits: Record<string, ModelLimitState>, inFlight = 0): RunEvent => ({
  type: 'progress',
  progress: progressSnapshot({ inFlight, queued: 0, limits }),
});
const started: RunEvent = { type: 'started', input: 'in.jsonl', resumed: false, skippedAlready: 0, at: new Date(T0).toISOString() };

describe('RunTimeline', () => {
  it('counts events in the second they arrive and gives rates per minute over the trailing minute', () => {
    const c = clock();
    const timeline = new RunTimeline({ now: c.now });
    timeline.onEvent(started);
    for (const ms of [100, 200, 300, 1_500, 2_900]) {
      c.at(ms);
      timeline.onEvent(attempt());
      timeline.onEvent(finished(120, 'succeeded', 50));
    }
    c.at(2_950);
    timeline.onEvent({ type: 'rate_limited', customId: 'a', model: 'm', waitMs: 1, pausedUntil: '', requestId: null });
    const s = timeline.series();
    expect(s.bucketSeconds).toBe(1);
    expect(s.time).toEqual([T0 / 1000, T0 / 1000 + 1, T0 / 1000 + 2]);
    // 3 in the first second = 180/min; then 4 over 2 s = 120/min; then 5 over 3 s = 100/min.
    expect(s.attemptsPerMinute).toEqual([180, 120, 100]);
    expect(s.finishedPerMinute).toEqual([180, 120, 100]);
    expect(s.tokensPerMinute).toEqual([9_000, 6_000, 5_000]);
    expect(s.rateLimited).toEqual([0, 0, 1]);
  });

  it('forgets what is older than a minute in the rate', () => {
    const c = clock();
    const timeline = new RunTimeline({ now: c.now });
    timeline.onEvent(started);
    for (let second = 0; second < 90; second++) {
      c.at(second * 1000);
      // 2 per second for the first minute, then none.
      if (second < 60) for (let i = 0; i < 2; i++) timeline.onEvent(attempt());
      else timeline.onEvent(progress({}));
    }
    const rates = timeline.series().attemptsPerMinute;
    expect(rates[59]).toBe(120);
    expect(rates[89]).toBe(60); // seconds 30..59 of the 60-s window ending at 89
  });

  it('time-averages the budgets, summed over models, and has none while a model is unlimited', () => {
    const c = clock();
    const timeline = new RunTimeline({ now: c.now });
    timeline.onEvent(started);
    c.at(100);
    timeline.onEvent(progress({ a: limitState(600, 10_000), b: limitState(300, 5_000) }, 4));
    c.at(600);
    timeline.onEvent(progress({ a: limitState(400, 10_000), b: limitState(300, 5_000) }, 8));
    c.at(1_100);
    timeline.onEvent(progress({ a: limitState(600, null), b: limitState(300, 5_000) }));
    const s = timeline.series();
    expect(s.rpmBudget).toEqual([800, 900]);
    expect(s.tpmBudget).toEqual([15_000, null]);
    expect(s.inFlight).toEqual([6, 0]);
  });

  it('keeps at most `capacity` buckets: a long run merges neighbours and doubles the width, keeping every count', () => {
    const c = clock();
    const timeline = new RunTimeline({ now: c.now, capacity: 8 });
    timeline.onEvent(started);
    for (let second = 0; second < 100; second++) {
      c.at(second * 1000 + 500);
      for (let i = 0; i < (second % 3) + 1; i++) timeline.onEvent(attempt('429'));
      timeline.onEvent({ type: 'retry', customId: 'a', line: 1, model: 'm', reason: 'server_error', code: 'http_500', waitMs: 1, attempt: 2, requestId: null });
    }
    const s = timeline.series();
    // 100 s in 8 buckets: 1 → 2 → 4 → 8 → 16 s wide.
    expect(s.bucketSeconds).toBe(16);
    expect(s.time.length).toBeLessThanOrEqual(8);
    expect(s.time[1]! - s.time[0]!).toBe(16);
    expect(s.retries.reduce((a, b) => a + b, 0)).toBe(100);
    expect(s.retries.slice(0, 6)).toEqual([16, 16, 16, 16, 16, 16]);
    // The rate of bucket 5 (80–96 s) covers the 4 buckets (64 s) back to 32 s.
    let inWindow = 0;
    for (let second = 32; second < 96; second++) inWindow += (second % 3) + 1;
    expect(s.attemptsPerMinute[5]).toBeCloseTo((inWindow / 64) * 60, 2);
  });

  it('bins successful latencies on a log scale and leaves failures out', () => {
    const timeline = new RunTimeline();
    timeline.onEvent(started);
    for (const ms of [5, 10, 15, 400, 400, 2_000, 10_000_000]) timeline.onEvent(finished(ms));
    timeline.onEvent(finished(999, 'failed'));
    const { upperMs, counts } = timeline.latency();
    expect(counts.reduce((a, b) => a + b, 0)).toBe(7);
    const binOf = (ms: number): number => upperMs.findIndex((upper) => ms <= upper);
    expect(counts[0]).toBe(2); // 5 and 10 ms: at most 10
    expect(counts[binOf(15)]).toBe(1);
    expect(upperMs[binOf(15) - 1]).toBeLessThan(15);
    expect(counts[binOf(400)]).toBe(2);
    expect(counts.at(-1)).toBe(1); // far beyond every timeout: the last bin
  });
});

function summaryOf(overrides: Partial<Summary> = {}): Summary {
  return {
    tool: { name: 'oai-batch', version: '0.0.0' },
    mode: 'online',
    input: { path: '<script>alert(1)</script>.jsonl', fingerprint: 'x', lines: 2 },
    requests: { total: 2, succeeded: 2, failed: 0, skipped: 0, pending: 0 },
    attempts: { total: 3, retries: 1, rate_limited: 1, server_errors: 0, timeouts: 0 },
    usage: { input_tokens: 20, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 10, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0 },
    cost_usd: { total: 0.003, input: 0.001, cached_input: 0, cache_write_input: 0, output: 0.002 },
    by_model: {
      'gpt-4o-mini-2024-07-18': { requests: 1, input_tokens: 10, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 5, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0, cost_usd: 0.001 },
      '<b>odd</b>': { requests: 1, input_tokens: 10, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 5, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0, cost_usd: 0.002 },
    },
    unpriced_models: [],
    pricing: { as_of: '2026-01-01', source: 'test', batch_discount_applied: false },
    timing: {
      started_at: '2026-03-01T12:00:00.000Z',
      finished_at: '2026-03-01T12:00:03.000Z',
      wall_seconds: 3,
      requests_per_minute: 40,
      tokens_per_minute: 600,
      charged_tokens_per_minute: 900,
      latency_ms: { p50: 120, p90: 400, p95: 400, p99: 400, max: 400 },
    },
    limits: { 'gpt-4o-mini': { rpm: 600, tpm: 100_000, source: 'flags' } },
    alerts: [{ name: 'rate_limit_rate', value: 0.333333, threshold: 0.1 }],
    warnings: [],
    run_cost_usd: 0.003,
    requests_without_usage: 0,
    stopped_reason: null,
    ...overrides,
  };
}

describe('renderRunReport', () => {
  it('is one self-contained page: nothing fetched, every name escaped, the data of each chart inside', () => {
    const timeline = new RunTimeline();
    timeline.onEvent(started);
    timeline.onEvent(finished(120, 'succeeded', 30));
    const html = renderRunReport({ summary: summaryOf(), series: timeline.series(), latency: timeline.latency() });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('<b>odd</b>');
    expect(html).toContain('&lt;b&gt;odd&lt;/b&gt;');
    expect(html.match(/data-chart=/g)).toHaveLength(4);
    expect(html).toContain('rate_limit_rate 0.333333 &gt; 0.1');
  });

  it("shows what the cache saved and this run's spend apart from the file's", () => {
    const timeline = new RunTimeline();
    timeline.onEvent(started);
    const summary = summaryOf({ run_cost_usd: 0.001, cache: { hits: 1234, dedup: 5, saved_usd: 0.25, saved_tokens: 45_678 } });
    const html = renderRunReport({ summary, series: timeline.series(), latency: timeline.latency() });
    expect(html).toContain('1,234 from the cache · 5 by an identical request · saved');
    expect(html).toContain('45,678 tokens');
    expect(html).toMatch(/this run · .* the whole file/);
  });
});

function cliIO(env: Record<string, string> = {}): { io: CliIO; stderr: () => string } {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const io: CliIO = {
    stdin: Readable.from([]),
    stdout: new PassThrough().resume(),
    stderr,
    env,
    cwd: process.cwd(),
    signal: new AbortController().signal,
    force: new AbortController().signal,
  };
  return { io, stderr: () => text };
}

describe('run --report', () => {
  it('refuses a report in a folder it cannot write before sending anything', async () => {
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, [chatLine(1)]);
      const { io, stderr } = cliIO();
      expect(await main(['run', input, '--simulate', '--report', dir.file('missing/run.html')], io)).toBe(1);
      expect(stderr()).toContain(`cannot write the report ${dir.file('missing/run.html')}`);
      expect(existsSync(dir.file('in.results.jsonl'))).toBe(false);
    } finally {
      await dir.remove();
    }
  });
});

if (!hasChromium) console.warn(`run-report: ${CHROMIUM} is absent, so the report is not drawn in a browser (apt-get install chromium)`);

describe('run --report against the simulator, drawn in headless Chromium', () => {
  it.skipIf(!hasChromium)('writes a page whose four charts draw, with the run’s own 429s, latencies and costs', async () => {
    const sim = await startSimulator({ rpm: 600, latencyMs: 60, faults: { '500': 0.1, reset: 0.02 }, seed: 3 });
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, Array.from({ length: 60 }, (_, i) => chatLine(i)));
      const report = dir.file('run.html');
      const { io, stderr } = cliIO({ OPENAI_API_KEY: 'sk-test-report-0123456789' });
      const code = await main(['run', input, '--base-url', sim.url, '--rpm', '1200', '--quiet', '--report', report], io);
      expect(code).toBe(0);
      expect(stderr()).toContain(`report written to ${report}`);
      const summary = await readJson<Summary>(dir.file('in.summary.json'));
      expect(summary.attempts.rate_limited).toBeGreaterThan(0);

      // The charts carry this run's numbers.
      const html = await readFile(report, 'utf8');
      const charts = [...html.matchAll(/data-chart="([^"]*)"/g)].map(
        (m) => JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as {
          title: string;
          series: Array<{ label: string; values: Array<number | null>; color: string }>;
        },
      );
      const sum = (values: Array<number | null>): number => values.reduce<number>((a, b) => a + (b ?? 0), 0);
      const seriesOf = (label: string): Array<number | null> => charts.flatMap((c) => c.series).find((s) => s.label.startsWith(label))!.values;
      expect(sum(seriesOf('429'))).toBe(summary.attempts.rate_limited);
      expect(sum(seriesOf('retries'))).toBe(summary.attempts.retries - summary.attempts.rate_limited);
      expect(sum(seriesOf('requests'))).toBe(summary.requests.succeeded);
      for (const model of Object.keys(summary.by_model)) expect(html).toContain(model);
      expect(html).toContain('gpt-4o-mini-2024-07-18');

      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        const problems: string[] = [];
        const fetched: string[] = [];
        page.on('pageerror', (error) => problems.push(String(error)));
        page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
        page.on('request', (request) => fetched.push(request.url()));
        await page.goto(pathToFileURL(report).href);
        // Page code as strings: the tests compile without the DOM library.
        await page.waitForFunction("document.querySelectorAll('.chart-plot canvas').length === document.querySelectorAll('.chart-plot').length");
        // Per chart canvas: pixels inked at all, and pixels in the colour of its first series (its line or bars).
        const firstColours = charts.map((c) => c.series[0]!.color);
        const drawn = (await page.evaluate(`[...document.querySelectorAll('.chart-plot canvas')].map((canvas, i) => {
          const colour = ${JSON.stringify(firstColours)}[i];
          const [r, g, b] = [1, 3, 5].map((at) => parseInt(colour.slice(at, at + 2), 16));
          const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let inked = 0, series = 0;
          for (let p = 0; p < pixels.length; p += 4) {
            if (pixels[p + 3] > 0) inked++;
            if (pixels[p] === r && pixels[p + 1] === g && pixels[p + 2] === b && pixels[p + 3] === 255) series++;
          }
          return { inked, series };
        })`)) as Array<{ inked: number; series: number }>;
        const screenshot = await page.screenshot({ path: dir.file('run.png'), fullPage: true });
        expect(problems).toEqual([]);
        expect(fetched).toEqual([pathToFileURL(report).href]);
        expect(drawn).toHaveLength(4);
        for (const chart of drawn) {
          expect(chart.inked).toBeGreaterThan(2_000);
          expect(chart.series).toBeGreaterThan(100);
        }
        expect(screenshot.subarray(1, 4).toString()).toBe('PNG');
        expect(screenshot.length).toBeGreaterThan(20_000);
      } finally {
        await browser.close();
      }
    } finally {
      await dir.remove();
      await sim.close();
    }
  });
});
