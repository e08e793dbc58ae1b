// The progress display: a plain line every 10 s when stderr is not a
// terminal (or reports 0 columns), nothing with --quiet, and the end table.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { Writable } from 'node:stream';
import type { Summary } from '../src/shared/types.js';
import { createProgressView, progressLine, summaryTable } from '../src/cli/progress.js';
import { counted, fmtDuration } from '../src/cli/render.js';
import { progressSnapshot as snapshot } from './support/events.js';

function sink(tty: { isTTY?: boolean; columns?: number } = {}): Writable & { text: string; isTTY?: boolean; columns?: number } {
  const stream = new Writable({
    write(chunk, _enc, done) {
      stream.text += chunk.toString();
      done();
    },
  }) as Writable & { text: string; isTTY?: boolean; columns?: number };
  stream.text = '';
  Object.assign(stream, tty);
  return stream;
}


afterEach(() => {
  vi.useRealTimers();
});

describe('progress display', () => {
  it.each([
    ['stderr is not a terminal', {}],
    ['the terminal reports 0 columns', { isTTY: true, columns: 0 }],
  ])('prints a plain line at most every 10 s when %s', (_name, tty) => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const err = sink(tty);
    const view = createProgressView(err, { quiet: false, input: 'x.jsonl' });
    view.onEvent({ type: 'started', input: 'x.jsonl', resumed: false, skippedAlready: 0, at: new Date(0).toISOString() });
    for (let t = 1000; t <= 35_000; t += 1000) {
      vi.setSystemTime(t);
      view.onEvent({ type: 'progress', progress: snapshot() });
    }
    const lines = err.text.trim().split('\n');
    expect(lines).toHaveLength(3); // at 10 s, 20 s and 30 s
    expect(lines[0]).toBe(`oai-batch: ${progressLine(snapshot())}`);
    view.stop();
  });

  it('says so when --concurrency, not the budget, holds the rate, and when a model is paused', () => {
    const line = progressLine(
      snapshot({
        concurrencyBound: true,
        limits: {
          'gpt-4o-mini': {
            rpm: 500, tpm: 1e5, baseRpm: 500, baseTpm: 1e5, source: 'headers', headerRpm: 500, headerTpm: 1e5,
            pausedUntil: Date.now() + 20_000, rateFactor: 0.7, inFlight: 0, waiting: 3,
          },
        },
      }),
    );
    expect(line).toContain('held by --concurrency 16');
    expect(line).toMatch(/gpt-4o-mini paused (19|20)s/);
  });

  it('shows done and %, failures, rates, retries, 429s, cost and ETA', () => {
    expect(progressLine(snapshot())).toBe(
      '50 of 100 done (50.0%) · 2 failed · 7 in flight · 1,200 req/min · 45.0k tok/min · retries 4 · 429s 1 · $0.0123 · ETA 1m15s',
    );
    expect(progressLine(snapshot({ linesTotal: null, linesDone: 48, fraction: null, etaSeconds: null, failed: 0 }))).toMatch(/^48 done · 7 in flight .* ETA –$/);
  });

  it('prints no progress and no end table with --quiet, only why a run stopped when nobody asked it to', () => {
    const err = sink();
    const view = createProgressView(err, { quiet: true, input: 'x.jsonl' });
    view.onEvent({ type: 'progress', progress: snapshot() });
    view.onEvent({ type: 'stopping', reason: 'max_cost', message: 'stopping: --max-cost reached' });
    view.onEvent({ type: 'stopping', reason: 'interrupted', message: 'stopping: interrupted' });
    view.finish({} as Summary, { results: 'r', errors: 'e', summary: 's' });
    expect(err.text).toBe('');
    view.onEvent({ type: 'stopping', reason: 'unreachable', message: 'nothing connects to http://127.0.0.1:1/v1 (ECONNREFUSED)' });
    expect(err.text).toBe('oai-batch: nothing connects to http://127.0.0.1:1/v1 (ECONNREFUSED)\n');
  });

  it('prints nothing at all when JSON logs carry the events', () => {
    const err = sink();
    const view = createProgressView(err, { quiet: false, silent: true, input: 'x.jsonl' });
    view.onEvent({ type: 'progress', progress: snapshot() });
    view.onEvent({ type: 'stopping', reason: 'auth_failed', message: 'the API refused the key' });
    view.finish({} as Summary, { results: 'r', errors: 'e', summary: 's' });
    expect(err.text).toBe('');
  });

  it('formats durations and the end table', () => {
    expect([5, 75, 3600 + 120].map(fmtDuration)).toEqual(['5s', '1m15s', '1h02m']);
    expect([counted(1, 'request'), counted(0, 'line'), counted(1_000, 'line')]).toEqual(['1 request', '0 lines', '1,000 lines']);
    const table = summaryTable(
      {
        requests: { total: 3, succeeded: 2, failed: 1, skipped: 0, pending: 0 },
        attempts: { total: 4, retries: 1, rate_limited: 1, server_errors: 0, timeouts: 0 },
        usage: { input_tokens: 30, cached_input_tokens: 0, output_tokens: 20, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0 },
        cost_usd: { total: 0.000123, input: 0.0001, cached_input: 0, output: 0.000023 },
        unpriced_models: [],
        timing: { wall_seconds: 2, requests_per_minute: 90, tokens_per_minute: 1500, latency_ms: { p50: 100, p90: 150, p95: 160, p99: 170, max: 180 } },
        by_model: {},
        limits: { 'gpt-4o-mini': { rpm: 500, tpm: 200000, source: 'headers', concurrency_bound: true } },
        stopped_reason: null,
        alerts: [],
        warnings: [],
      } as unknown as Summary,
      { results: 'r.jsonl', errors: 'e.jsonl', summary: 's.json' },
    );
    expect(table).toMatch(/^requests\s+3 total · 2 succeeded · 1 failed/m);
    expect(table).toContain('held back by --concurrency');
    expect(table).toContain('$0.000123');
  });
});
