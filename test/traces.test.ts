// OpenTelemetry traces of a run (DESIGN.md §8): when tracing is on, events →
// spans with the GenAI attributes (in-process, an in-memory exporter), and
// end to end over real OTLP/HTTP to a receiver on loopback, in protobuf and
// JSON: one span per request under one run span, attributes equal to the
// results file, no prompt or answer text, nothing lost at exit.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { traceSettings, type TraceSettings } from '../src/observe/trace-settings.js';
import { createRunTracer } from '../src/observe/traces.js';
import type { RunEvent } from '../src/shared/events.js';
import type { Summary } from '../src/shared/types.js';
import { runCli, startCli } from './support/cli.js';
import { chatLine, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlp.js';

describe('traceSettings', () => {
  const on = (protocol: string, because: string, endpoint: string): TraceSettings => ({ enabled: true, protocol, because, endpoint }) as TraceSettings;
  it.each<[string, boolean, Record<string, string>, TraceSettings]>([
    ['off by default', false, {}, { enabled: false }],
    ['--otel: protobuf to the default endpoint', true, {}, on('http/protobuf', '--otel', 'http://localhost:4318/v1/traces')],
    ['an OTLP endpoint turns it on, /v1/traces appended', false, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, on('http/protobuf', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'http://collector:4318/v1/traces')],
    ['a traces endpoint is used as it is', false, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' }, on('http/protobuf', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'http://c:4318/custom')],
    ['OTEL_TRACES_EXPORTER=otlp turns it on', false, { OTEL_TRACES_EXPORTER: 'otlp' }, on('http/protobuf', 'OTEL_TRACES_EXPORTER', 'http://localhost:4318/v1/traces')],
    ['OTEL_TRACES_EXPORTER=none keeps it off despite an endpoint', false, { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, { enabled: false }],
    ['OTEL_TRACES_EXPORTER=console is not ours: off', false, { OTEL_TRACES_EXPORTER: 'console' }, { enabled: false }],
    ['OTEL_SDK_DISABLED=true keeps the variables from turning it on', false, { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, { enabled: false }],
    ['--otel wins over OTEL_SDK_DISABLED', true, { OTEL_SDK_DISABLED: 'true' }, on('http/protobuf', '--otel', 'http://localhost:4318/v1/traces')],
    ['http/json from OTEL_EXPORTER_OTLP_PROTOCOL', true, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, on('http/json', '--otel', 'http://localhost:4318/v1/traces')],
    ['the traces protocol variable wins', true, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }, on('http/protobuf', '--otel', 'http://localhost:4318/v1/traces')],
    ['an empty variable is unset', false, { OTEL_EXPORTER_OTLP_ENDPOINT: '' }, { enabled: false }],
  ])('%s', (_name, flag, env, expected) => {
    expect(traceSettings(flag, env)).toEqual(expected);
  });

  it('refuses grpc, naming the variable', () => {
    expect(() => traceSettings(true, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      'Expected `OTEL_EXPORTER_OTLP_PROTOCOL` to be http/protobuf or http/json (traces go over OTLP/HTTP), got `grpc`',
    );
  });
});

const endpoint = '/v1/chat/completions' as const;
const usage = { input_tokens: 120, cached_input_tokens: 20, cache_write_input_tokens: 0, output_tokens: 30, reasoning_tokens: 4, input_audio_tokens: 0, output_audio_tokens: 0 };

describe('createRunTracer', () => {
  it('turns run events into a run span and one GenAI client span per request, attempts and retries as events', async () => {
    // Keeps what it got through shutdown (the SDK's InMemorySpanExporter forgets it there).
    const finished: ReadableSpan[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        finished.push(...spans);
        done({ code: 0 });
      },
      shutdown: async () => {},
    };
    const tracer = await createRunTracer({ protocol: 'http/protobuf', serverUrl: 'https://api.example.com/v1', exporter });
    const events: RunEvent[] = [
      { type: 'started', input: 'in.jsonl', resumed: false, skippedAlready: 0, at: '2026-01-01T00:00:00Z' },
      { type: 'request_started', customId: 'a', line: 1, model: 'gpt-4o-mini', endpoint, attempt: 1, chargedTokens: 200 },
      { type: 'attempt', customId: 'a', model: 'gpt-4o-mini', endpoint, code: '500', latencyMs: 12.4, requestId: 'req_1' },
      { type: 'retry', customId: 'a', line: 1, model: 'gpt-4o-mini', reason: 'server_error', code: 'http_500', waitMs: 250, attempt: 2, requestId: 'req_1' },
      { type: 'request_started', customId: 'a', line: 1, model: 'gpt-4o-mini', endpoint, attempt: 2, chargedTokens: 200 },
      { type: 'attempt', customId: 'a', model: 'gpt-4o-mini', endpoint, code: '200', latencyMs: 80, requestId: 'req_2' },
      {
        type: 'request_finished', customId: 'a', line: 1, model: 'gpt-4o-mini', endpoint, status: 'succeeded', httpStatus: 200, code: null, attempts: 2, latencyMs: 80,
        usage, costUsd: 0.000123, requestId: 'req_2',
        body: { id: 'chatcmpl-1', model: 'gpt-4o-mini-2024-07-18', choices: [{ finish_reason: 'stop', message: { content: 'SECRET ANSWER' } }] },
      },
      { type: 'request_started', customId: 'b', line: 2, model: 'text-embedding-3-small', endpoint: '/v1/embeddings', attempt: 1, chargedTokens: 10 },
      { type: 'attempt', customId: 'b', model: 'text-embedding-3-small', endpoint: '/v1/embeddings', code: 'timeout', latencyMs: 1000, requestId: null },
      {
        type: 'request_finished', customId: 'b', line: 2, model: 'text-embedding-3-small', endpoint: '/v1/embeddings', status: 'failed', httpStatus: null, code: 'timeout',
        attempts: 1, latencyMs: 1000, usage: null, costUsd: null, requestId: null,
      },
      { type: 'request_started', customId: 'c', line: 3, model: 'gpt-4o-mini', endpoint, attempt: 1, chargedTokens: 10 },
      // Answered from the response cache: nothing sent, no request_started.
      {
        type: 'request_finished', customId: 'd', line: 4, model: 'gpt-4o-mini', endpoint, status: 'succeeded', httpStatus: 200, code: null, attempts: 0, latencyMs: 0,
        usage, costUsd: 0, requestId: 'req_old', body: { id: 'chatcmpl-old', model: 'gpt-4o-mini-2024-07-18' }, cache: 'hit', savedUsd: 0.0002,
      },
      { type: 'finished', summary: { requests: { total: 3, succeeded: 1, failed: 1, skipped: 0, pending: 1 }, attempts: { total: 4, retries: 1, rate_limited: 0, server_errors: 1, timeouts: 1 }, usage, cost_usd: { total: 0.000123, input: 0, cached_input: 0, output: 0 }, stopped_reason: 'interrupted' } as unknown as Summary },
    ];
    for (const event of events) tracer.onEvent(event);
    const report = await tracer.close();
    const spans = finished;
    expect(report).toMatchObject({ spans: 5, exported: 5, failed: 0 });

    const run = spans.find((s) => s.name === 'oai-batch run')!;
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => spans.find((s) => s.attributes['oai_batch.custom_id'] === id)!);
    for (const span of [a, b, c, d]) {
      expect(span!.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
      expect(span!.spanContext().traceId).toBe(run.spanContext().traceId);
      expect(span!.kind).toBe(2); // SpanKind.CLIENT in the API's numbering
    }
    expect(a!.name).toBe('chat gpt-4o-mini');
    expect(a!.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.id': 'chatcmpl-1',
      'gen_ai.usage.input_tokens': 120,
      'gen_ai.usage.output_tokens': 30,
      'http.response.status_code': 200,
      'oai_batch.custom_id': 'a',
      'oai_batch.attempts': 2,
      'oai_batch.cost_usd': 0.000123,
    });
    expect(a!.events.map((e) => [e.name, e.attributes])).toEqual([
      ['oai_batch.attempt', { 'oai_batch.attempt': 1, 'oai_batch.latency_ms': 12, 'http.response.status_code': 500, 'error.type': '500', 'oai_batch.request_id': 'req_1' }],
      ['oai_batch.retry', { 'oai_batch.reason': 'server_error', 'error.type': 'http_500', 'oai_batch.wait_ms': 250, 'oai_batch.attempt': 2 }],
      ['oai_batch.attempt', { 'oai_batch.attempt': 2, 'oai_batch.latency_ms': 80, 'http.response.status_code': 200, 'oai_batch.request_id': 'req_2' }],
    ]);
    expect(a!.status.code).toBe(0);
    expect(JSON.stringify(spans.map((s) => [s.attributes, s.events]))).not.toContain('SECRET ANSWER');

    expect(b!.name).toBe('embeddings text-embedding-3-small');
    expect(b!.attributes).toMatchObject({ 'error.type': 'timeout', 'oai_batch.attempts': 1 });
    // One attempt: the span is that attempt, no event repeats it.
    expect(b!.events).toEqual([]);
    expect(b!.status).toEqual({ code: 2, message: 'timeout' });

    // Still open when the run stopped: ended by close(), marked unfinished.
    expect(c!.attributes).toMatchObject({ 'error.type': 'unfinished' });
    expect(c!.status.code).toBe(2);

    // A cache hit is a span too, saying so; its usage was not bought, so it is not gen_ai.usage.
    expect(d!.attributes).toMatchObject({ 'oai_batch.cache': 'hit', 'oai_batch.saved_usd': 0.0002, 'oai_batch.cost_usd': 0, 'gen_ai.response.id': 'chatcmpl-old' });
    expect(d!.attributes['gen_ai.usage.input_tokens']).toBeUndefined();

    expect(run.attributes).toMatchObject({
      'oai_batch.requests.total': 3,
      'oai_batch.attempts': 4,
      'oai_batch.cost_usd': 0.000123,
      'oai_batch.stopped_reason': 'interrupted',
      'server.address': 'api.example.com',
      'server.port': 443,
    });
  });
});

describe('traces over OTLP/HTTP from the CLI', () => {
  const fixture = perTestFixture(null);
  let receiver: OtlpReceiver | null = null;
  afterEach(async () => {
    await receiver?.close();
    receiver = null;
  });

  interface ResultLine {
    custom_id: string;
    attempts: number;
    cost_usd: number | null;
    response: { status_code: number; body: { id: string; model: string; usage: { prompt_tokens: number; completion_tokens: number }; choices: Array<{ message: { content: string } }> } };
  }

  /** One request span per line, under one run span, each matching its line of the results or errors file. */
  async function expectSpansMatchFiles(spans: ReceivedSpan[], lines: number, dir: string): Promise<void> {
    const runs = spans.filter((s) => s.name === 'oai-batch run');
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    const requests = spans.filter((s) => s !== run);
    expect(requests).toHaveLength(lines);
    expect(new Set(requests.map((s) => s.attributes['oai_batch.custom_id'])).size).toBe(lines);
    for (const span of requests) {
      expect(span.parentSpanId).toBe(run.spanId);
      expect(span.traceId).toBe(run.traceId);
      expect(span.kind).toBe(3); // SPAN_KIND_CLIENT
      // From its first attempt to its answer, within the run.
      expect(span.startNs).toBeLessThan(span.endNs);
      expect(span.startNs).toBeGreaterThanOrEqual(run.startNs);
      expect(span.endNs).toBeLessThanOrEqual(run.endNs);
    }
    const byId = new Map(requests.map((s) => [s.attributes['oai_batch.custom_id'] as string, s]));
    const results = await readJsonl<ResultLine>(join(dir, 'in.results.jsonl'));
    for (const r of results) {
      const span = byId.get(r.custom_id)!;
      expect(span.name).toBe(`chat ${span.attributes['gen_ai.request.model']}`);
      expect(span.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.response.id': r.response.body.id,
        'gen_ai.response.model': r.response.body.model,
        'gen_ai.usage.input_tokens': r.response.body.usage.prompt_tokens,
        'gen_ai.usage.output_tokens': r.response.body.usage.completion_tokens,
        'http.response.status_code': 200,
        'oai_batch.attempts': r.attempts,
      });
      expect(span.attributes['oai_batch.cost_usd']).toBeCloseTo(r.cost_usd as number, 12);
      // Attempts are events when there was more than one.
      expect(span.events.filter((e) => e.name === 'oai_batch.attempt')).toHaveLength(r.attempts > 1 ? r.attempts : 0);
      expect(span.status.code).toBe(0);
    }
    const errors = await readJsonl<{ custom_id: string; attempts: number; error: { code: string } }>(join(dir, 'in.errors.jsonl')).catch(() => []);
    for (const e of errors) {
      const span = byId.get(e.custom_id)!;
      expect(span.attributes).toMatchObject({ 'error.type': e.error.code, 'oai_batch.attempts': e.attempts });
      expect(span.status.code).toBe(2);
    }
    expect(results.length + errors.length).toBe(lines);
  }

  it('protobuf (the default) to OTEL_EXPORTER_OTLP_ENDPOINT: every request a span with the GenAI attributes, no prompt or answer text, all of them there at exit', async () => {
    receiver = await startOtlpReceiver();
    const sim = await fixture.simulator({ apiKey: 'sk-trace-test', faults: { '500': 0.3 }, faultsEveryAttempt: true });
    const lines = 600;
    await writeJsonl(fixture.dir.file('in.jsonl'), Array.from({ length: lines }, (_, i) => chatLine(i)));
    const result = await runCli(['run', 'in.jsonl', '--base-url', sim.url, '--max-attempts', '2', '--quiet'], {
      cwd: fixture.dir.path,
      env: { OPENAI_API_KEY: 'sk-trace-test', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' },
    });
    expect(result.code, result.stderr).toBe(2); // some requests failed for good: their spans say so
    // Counted the moment the process is gone: the flush happened before exit (a 60 s batch delay would otherwise hold them).
    expect(receiver.spans).toHaveLength(lines + 1);
    // Uncompressed, the standard's default (OTEL_EXPORTER_OTLP_COMPRESSION unset).
    expect(receiver.requests.every((r) => r.contentType === 'application/x-protobuf' && r.headers['content-encoding'] === undefined)).toBe(true);
    await expectSpansMatchFiles(receiver.spans, lines, fixture.dir.path);
    expect(receiver.spans[0]!.resource['service.name']).toBe('oai-batch');
    const run = receiver.spans.find((s) => s.name === 'oai-batch run')!;
    expect(run.attributes).toMatchObject({ 'oai_batch.requests.total': lines, 'server.address': '127.0.0.1' });
    // Retried requests carry their attempts and the retries between them.
    const retried = receiver.spans.filter((s) => s !== run && (s.attributes['oai_batch.attempts'] as number) > 1);
    expect(retried.length).toBeGreaterThan(0);
    for (const span of retried) expect(span.events.map((e) => e.name), JSON.stringify({ ...span, startNs: 0, endNs: 0 })).toContain('oai_batch.retry');
    expect(result.stderr).toContain(`traces: ${lines + 1} spans exported`);

    // No prompt and no answer text anywhere in what was sent.
    const sent = Buffer.concat(receiver.requests.map((r) => r.body)).toString('latin1');
    expect(sent).not.toContain('what is');
    const answers = (await readJsonl<ResultLine>(fixture.dir.file('in.results.jsonl'))).map((r) => r.response.body.choices[0]!.message.content);
    expect(answers.length).toBeGreaterThan(0);
    for (const answer of answers.slice(0, 50)) expect(sent).not.toContain(Buffer.from(answer, 'utf8').toString('latin1'));
  }, 120_000);

  it('http/json with --otel, the traces endpoint, headers and service name from the standard variables', async () => {
    receiver = await startOtlpReceiver();
    const sim = await fixture.simulator({ apiKey: 'sk-trace-test' });
    const lines = 40;
    await writeJsonl(fixture.dir.file('in.jsonl'), Array.from({ length: lines }, (_, i) => chatLine(i)));
    const result = await runCli(['run', 'in.jsonl', '--base-url', sim.url, '--otel', '--quiet'], {
      cwd: fixture.dir.path,
      env: {
        OPENAI_API_KEY: 'sk-trace-test',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=abc123',
        OTEL_SERVICE_NAME: 'nightly-backfill',
        OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(receiver.requests.length).toBeGreaterThan(0);
    expect(receiver.requests.every((r) => r.contentType.startsWith('application/json') && r.headers['x-collector-token'] === 'abc123')).toBe(true);
    // Compressed because the standard variable says so.
    expect(receiver.requests.every((r) => r.headers['content-encoding'] === 'gzip')).toBe(true);
    await expectSpansMatchFiles(receiver.spans, lines, fixture.dir.path);
    expect(receiver.spans[0]!.resource['service.name']).toBe('nightly-backfill');
  }, 60_000);

  it('a collector that is not there does not fail the run: it says how many spans did not arrive', async () => {
    const closed = await startOtlpReceiver();
    const url = closed.url;
    await closed.close(); // nothing listens there now
    const sim = await fixture.simulator({ apiKey: 'sk-trace-test' });
    await writeJsonl(fixture.dir.file('in.jsonl'), Array.from({ length: 5 }, (_, i) => chatLine(i)));
    const result = await runCli(['run', 'in.jsonl', '--base-url', sim.url, '--quiet'], {
      cwd: fixture.dir.path,
      // The exporter retries a refused connection with backoff within its timeout: keep it short here.
      env: { OPENAI_API_KEY: 'sk-trace-test', OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_TIMEOUT: '1500' },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`traces: 6 of 6 spans did not reach ${url}/v1/traces`));
  }, 60_000);

  it('SIGINT: the requests it drained have their spans, the run span says it stopped, all exported before exit', async () => {
    receiver = await startOtlpReceiver();
    const sim = await fixture.simulator({ apiKey: 'sk-trace-test', latencyMs: 300 });
    await writeJsonl(fixture.dir.file('in.jsonl'), Array.from({ length: 300 }, (_, i) => chatLine(i)));
    const { child, done } = startCli(['run', 'in.jsonl', '--base-url', sim.url, '--concurrency', '20', '--quiet'], {
      cwd: fixture.dir.path,
      env: { OPENAI_API_KEY: 'sk-trace-test', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' },
    });
    while (sim.stats().requests < 40) await sleep(20);
    child.kill('SIGINT');
    const result = await done;
    expect(result.code, result.stderr).toBe(3);
    const answered = (await readJsonl<{ custom_id: string }>(fixture.dir.file('in.results.jsonl'))).length;
    expect(answered).toBeGreaterThanOrEqual(40);
    expect(answered).toBeLessThan(300);
    expect(receiver.spans).toHaveLength(answered + 1);
    await expectSpansMatchFiles(receiver.spans, answered, fixture.dir.path);
    const run = receiver.spans.find((s) => s.name === 'oai-batch run')!;
    expect(run.status).toEqual({ code: 2, message: 'stopped: interrupted' });
    expect(run.attributes).toMatchObject({ 'oai_batch.stopped_reason': 'interrupted', 'oai_batch.requests.total': 300, 'oai_batch.requests.succeeded': answered });
    expect(result.stderr).toContain(`traces: ${answered + 1} spans exported`);
  }, 60_000);

  it('refuses OTEL_EXPORTER_OTLP_PROTOCOL=grpc before sending anything', async () => {
    await writeJsonl(fixture.dir.file('in.jsonl'), [chatLine(1)]);
    const result = await runCli(['run', 'in.jsonl', '--simulate', '--otel'], { cwd: fixture.dir.path, env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Expected `OTEL_EXPORTER_OTLP_PROTOCOL` to be http/protobuf or http/json');
  }, 30_000);
});

describe('loading', () => {
  it('imports the OpenTelemetry SDK only from src/observe/span-export.ts, and the tracing modules only lazily', async () => {
    const root = join(import.meta.dirname, '..', 'src');
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts')).map((f) => join(root, f));
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      // `import type` is erased when compiled: it loads nothing.
      if (!file.endsWith(join('observe', 'span-export.ts'))) expect(text, file).not.toMatch(/^import (?!type )[^;]*'@opentelemetry\//m);
      expect(text, file).not.toMatch(/^import [^;]*from '\.{1,2}\/(observe\/)?(traces|span-export|span-thread)\.js'/m);
    }
  });
});
