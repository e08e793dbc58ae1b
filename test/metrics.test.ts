// Prometheus metrics of a run: what each oai_batch_* metric counts (events fed
// in-process), the /metrics endpoint, and a real run of the CLI with faults
// and 429s whose last scrape matches the simulator's own counts.

import { afterEach, describe, expect, it } from 'vitest';
import type { RunEvent } from '../src/shared/events.js';
import type { ModelLimitState } from '../src/shared/types.js';
import type { Summary, Usage } from '../src/shared/types.js';
import { createRunMetrics, serveMetrics, type MetricsServer } from '../src/observe/metrics.js';
import { startSimulator } from '../src/sim/server.js';
import { startCli } from './support/cli.js';
import { chatLine, readJson, tempDir, writeJsonl } from './support/files.js';
import { limitState, progressSnapshot } from './support/events.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples of `name` whose labels include `where`. */
function total(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

function labelValues(samples: Sample[], name: string, label: string): string[] {
  return [...new Set(samples.filter((s) => s.name === name).map((s) => s.labels[label] ?? ''))].sort();
}

const usage = (input: number, cached: number, output: number, reasoning: number): Usage => ({
  input_tokens: input,
  cached_input_tokens: cached,
  cache_write_input_tokens: 0,
  output_tokens: output,
  reasoning_tokens: reasoning,
  input_audio_tokens: 0,
  output_audio_tokens: 0,
});

function progress(inFlight: number, queued: number, limits: Record<string, ModelLimitState>): RunEvent {
  return { type: 'progress', progress: progressSnapshot({ inFlight, queued, limits }) };
}

const endpoint = '/v1/chat/completions' as const;

describe('createRunMetrics', () => {
  it('counts final outcomes, every attempt by code, 429 pauses, tokens and cost by the answered model, and latency', async () => {
    const metrics = createRunMetrics({ processMetrics: false });
    const events: RunEvent[] = [
      { type: 'request_started', customId: 'a', line: 1, model: 'gpt-4o-mini', endpoint, attempt: 1, chargedTokens: 20 },
      { type: 'attempt', customId: 'a', model: 'gpt-4o-mini', endpoint, code: '429', latencyMs: 3, requestId: 'req_1' },
      { type: 'rate_limited', customId: 'a', model: 'gpt-4o-mini', waitMs: 500, pausedUntil: '2026-01-01T00:00:00Z', requestId: 'req_1' },
      { type: 'attempt', customId: 'a', model: 'gpt-4o-mini', endpoint, code: '500', latencyMs: 40, requestId: 'req_2' },
      { type: 'retry', customId: 'a', line: 1, model: 'gpt-4o-mini', reason: 'server_error', code: 'http_500', waitMs: 200, attempt: 3, requestId: 'req_2' },
      { type: 'attempt', customId: 'a', model: 'gpt-4o-mini', endpoint, code: '200', latencyMs: 300, requestId: 'req_3' },
      {
        type: 'request_finished',
        customId: 'a',
        line: 1,
        model: 'gpt-4o-mini',
        endpoint,
        status: 'succeeded',
        httpStatus: 200,
        code: null,
        attempts: 3,
        latencyMs: 300,
        usage: usage(100, 40, 20, 5),
        costUsd: 0.25,
        requestId: 'req_3',
        body: { model: 'gpt-4o-mini-2024-07-18' },
      },
      { type: 'request_started', customId: 'b', line: 2, model: 'gpt-4o-mini', endpoint, attempt: 1, chargedTokens: 20 },
      { type: 'attempt', customId: 'b', model: 'gpt-4o-mini', endpoint, code: 'connection_error', latencyMs: 1, requestId: null },
      {
        type: 'request_finished',
        customId: 'b',
        line: 2,
        model: 'gpt-4o-mini',
        endpoint,
        status: 'failed',
        httpStatus: null,
        code: 'connection_error',
        attempts: 1,
        latencyMs: 0,
        usage: null,
        costUsd: null,
        requestId: null,
      },
      progress(7, 12, { 'gpt-4o-mini': limitState(900, 90_000) }),
    ];
    for (const event of events) metrics.onEvent(event);
    const samples = parseExposition(await metrics.registry.metrics());

    expect(total(samples, 'oai_batch_requests_total', { status: 'succeeded', model: 'gpt-4o-mini', endpoint })).toBe(1);
    expect(total(samples, 'oai_batch_requests_total', { status: 'failed' })).toBe(1);
    expect(total(samples, 'oai_batch_attempts_total')).toBe(4);
    for (const code of ['429', '500', '200', 'connection_error']) expect(total(samples, 'oai_batch_attempts_total', { code })).toBe(1);
    expect(total(samples, 'oai_batch_rate_limited_total', { model: 'gpt-4o-mini' })).toBe(1);
    const answered = { model: 'gpt-4o-mini-2024-07-18' };
    expect(total(samples, 'oai_batch_tokens_total', { ...answered, kind: 'input' })).toBe(100);
    expect(total(samples, 'oai_batch_tokens_total', { ...answered, kind: 'cached_input' })).toBe(40);
    expect(total(samples, 'oai_batch_tokens_total', { ...answered, kind: 'output' })).toBe(20);
    expect(total(samples, 'oai_batch_tokens_total', { ...answered, kind: 'reasoning' })).toBe(5);
    expect(labelValues(samples, 'oai_batch_tokens_total', 'model')).toEqual(['gpt-4o-mini-2024-07-18']);
    expect(total(samples, 'oai_batch_cost_usd_total', answered)).toBe(0.25);
    expect(total(samples, 'oai_batch_in_flight')).toBe(7);
    expect(total(samples, 'oai_batch_queue_depth')).toBe(12);
    expect(total(samples, 'oai_batch_budget', { model: 'gpt-4o-mini', kind: 'rpm' })).toBe(900);
    expect(total(samples, 'oai_batch_budget', { model: 'gpt-4o-mini', kind: 'tpm' })).toBe(90_000);
    // Only the success is timed, as in summary.timing.latency_ms: 0.3 s falls in the 0.5 bucket, not in 0.25.
    expect(total(samples, 'oai_batch_request_duration_seconds_count')).toBe(1);
    expect(total(samples, 'oai_batch_request_duration_seconds_bucket', { le: '0.25' })).toBe(0);
    expect(total(samples, 'oai_batch_request_duration_seconds_bucket', { le: '0.5' })).toBe(1);
    expect(total(samples, 'oai_batch_request_duration_seconds_sum')).toBeCloseTo(0.3, 9);
  });

  it('shows a model’s outcome and 429 counters at 0 from its first request, before anything happened', async () => {
    const metrics = createRunMetrics({ processMetrics: false });
    metrics.onEvent({ type: 'request_started', customId: 'a', line: 1, model: 'o4-mini', endpoint, attempt: 1, chargedTokens: 20 });
    const samples = parseExposition(await metrics.registry.metrics());
    expect(samples.filter((s) => s.name === 'oai_batch_requests_total').map((s) => [s.labels.status, s.value])).toEqual([
      ['succeeded', 0],
      ['failed', 0],
    ]);
    expect(samples.find((s) => s.name === 'oai_batch_rate_limited_total')).toMatchObject({ labels: { model: 'o4-mini' }, value: 0 });
  });

  it('drops a budget sample when the budget becomes unknown rather than inventing one', async () => {
    const metrics = createRunMetrics({ processMetrics: false });
    metrics.onEvent(progress(0, 0, { m: limitState(600, 60_000) }));
    metrics.onEvent(progress(0, 0, { m: limitState(600, null) }));
    const samples = parseExposition(await metrics.registry.metrics());
    expect(samples.filter((s) => s.name === 'oai_batch_budget').map((s) => s.labels.kind)).toEqual(['rpm']);
  });

  it('keeps each run’s counters apart (its own registry, not the global one)', async () => {
    const first = createRunMetrics({ processMetrics: false });
    const second = createRunMetrics({ processMetrics: false });
    first.onEvent({ type: 'rate_limited', customId: 'a', model: 'm', waitMs: 1, pausedUntil: '', requestId: null });
    expect(total(parseExposition(await first.registry.metrics()), 'oai_batch_rate_limited_total')).toBe(1);
    expect(total(parseExposition(await second.registry.metrics()), 'oai_batch_rate_limited_total')).toBe(0);
  });
});

describe('serveMetrics', () => {
  let server: MetricsServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('serves the registry at /metrics in the Prometheus text format on the port the OS chose, and 404 elsewhere', async () => {
    const metrics = createRunMetrics();
    server = await serveMetrics(metrics.registry, { host: '127.0.0.1', port: 0 });
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('# TYPE oai_batch_request_duration_seconds histogram');
    expect(text).toContain('# TYPE oai_batch_attempts_total counter');
    // The process metrics help spot a long run's memory growing.
    expect(parseExposition(text).some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
  });

  it('refuses a port already taken', async () => {
    const metrics = createRunMetrics({ processMetrics: false });
    server = await serveMetrics(metrics.registry, { host: '127.0.0.1', port: 0 });
    await expect(serveMetrics(metrics.registry, { host: '127.0.0.1', port: server.port })).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('run --metrics-port against the simulator with faults and 429s', () => {
  it('matches the simulator’s own counts of attempts, 429s and billed tokens at the last scrape, scraped during and after the run', async () => {
    // 600 requests/min (10 per second) on the server while the client is told 1,200: 429s happen.
    // Faults are drawn per body and seed: seed 3 gives these 60 bodies both 500s and resets.
    const sim = await startSimulator({ rpm: 600, latencyMs: 30, faults: { '500': 0.1, reset: 0.02 }, seed: 3 });
    const dir = await tempDir();
    const key = 'sk-test-metrics-0123456789abcdef';
    try {
      const input = dir.file('in.jsonl');
      const lines = Array.from({ length: 60 }, (_, i) => chatLine(i));
      await writeJsonl(input, lines);
      const { child, done } = startCli(
        ['run', input, '--base-url', sim.url, '--rpm', '1200', '--log-format', 'json', '--metrics-port', '0', '--metrics-linger', '30'],
        { env: { OPENAI_API_KEY: key } },
      );
      let stderr = '';
      const waiters: Array<() => void> = [];
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        for (const wake of waiters.splice(0)) wake();
      });
      const waitFor = async (pattern: RegExp): Promise<RegExpExecArray> => {
        for (;;) {
          const match = pattern.exec(stderr);
          if (match) return match;
          await new Promise<void>((resolve) => waiters.push(resolve));
        }
      };
      const url = (await waitFor(/"event":"metrics_listening","url":"([^"]+)"/))[1]!;

      // Scrape while the run goes on, until its last line is out.
      const during: Sample[][] = [];
      let finished = false;
      void waitFor(/"event":"run_finished"/).then(() => (finished = true));
      while (!finished) {
        during.push(parseExposition(await (await fetch(url)).text()));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const last = parseExposition(await (await fetch(url)).text());
      child.kill('SIGINT'); // ends the linger
      const result = await done;
      expect(result.code).toBe(0);

      // Counters only grow, and some scrape saw the run half-way.
      const finishedCounts = [...during, last].map((s) => total(s, 'oai_batch_requests_total'));
      expect(finishedCounts).toEqual([...finishedCounts].sort((a, b) => a - b));
      expect(finishedCounts.some((n) => n > 0 && n < lines.length)).toBe(true);

      const stats = sim.stats();
      const summary = await readJson<Summary>(dir.file('in.summary.json'));
      // The run met what the done-when asks for: 429s and both fault kinds.
      expect(stats.rateLimited).toBeGreaterThan(0);
      expect(stats.faults['500']).toBeGreaterThan(0);
      expect(stats.faults.reset).toBeGreaterThan(0);

      expect(total(last, 'oai_batch_rate_limited_total')).toBe(stats.rateLimited);
      expect(total(last, 'oai_batch_attempts_total')).toBe(stats.requests);
      expect(total(last, 'oai_batch_attempts_total', { code: '429' })).toBe(stats.byStatus['429']);
      expect(total(last, 'oai_batch_attempts_total', { code: '500' })).toBe(stats.byStatus['500']);
      expect(total(last, 'oai_batch_attempts_total', { code: '200' })).toBe(stats.byStatus['200']);
      expect(total(last, 'oai_batch_attempts_total', { code: 'connection_error' })).toBe(stats.byStatus.reset ?? 0);
      expect(total(last, 'oai_batch_requests_total', { status: 'succeeded' })).toBe(lines.length);
      expect(total(last, 'oai_batch_request_duration_seconds_count')).toBe(lines.length);

      const models = Object.keys(stats.billed).sort();
      expect(labelValues(last, 'oai_batch_tokens_total', 'model')).toEqual(models);
      for (const model of models) {
        const billed = stats.billed[model]!;
        expect(total(last, 'oai_batch_tokens_total', { model, kind: 'input' })).toBe(billed.input_tokens);
        expect(total(last, 'oai_batch_tokens_total', { model, kind: 'cached_input' })).toBe(billed.cached_input_tokens);
        expect(total(last, 'oai_batch_tokens_total', { model, kind: 'output' })).toBe(billed.output_tokens);
        expect(total(last, 'oai_batch_tokens_total', { model, kind: 'reasoning' })).toBe(billed.reasoning_tokens);
        // Cost is keyed like summary.by_model: the model as the API answered it.
        expect(total(last, 'oai_batch_cost_usd_total', { model })).toBeCloseTo(summary.by_model[model]!.cost_usd!, 9);
      }
      expect(total(last, 'oai_batch_budget', { model: 'gpt-4o-mini', kind: 'rpm' })).toBeGreaterThan(0);
      expect(total(last, 'oai_batch_in_flight')).toBe(0);
      expect(total(last, 'oai_batch_queue_depth')).toBe(0);

      // The JSON log of the same run: nothing but JSON, one request_finished per request, never the key.
      const logLines = stderr.split('\n').filter((line) => line !== '');
      const parsed = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const finishedIds = parsed.filter((l) => l.event === 'request_finished').map((l) => l.custom_id);
      expect(finishedIds).toHaveLength(lines.length);
      expect(new Set(finishedIds).size).toBe(lines.length);
      expect(parsed.filter((l) => l.event === 'rate_limited')).toHaveLength(stats.rateLimited);
      expect(stderr).not.toContain(key);
    } finally {
      await dir.remove();
      await sim.close();
    }
  });
});
