// JSON logs (--log-format json): the line for each run event, what never
// appears in a line (keys, bodies unless --log-bodies), and a real run of the
// CLI in-process whose stderr is nothing but JSON, errors included.

import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../src/shared/events.js';
import { RunStats, buildSummary } from '../src/pipeline/summarise.js';
import type { Summary } from '../src/shared/types.js';
import { main } from '../src/cli/main.js';
import type { CliIO } from '../src/cli/command.js';
import { LOG_EVENTS, createJsonLog } from '../src/observe/logs.js';
import { CostLedger } from '../src/pricing/ledger.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { chatLine, tempDir, writeJsonl } from './support/files.js';

type Line = Record<string, unknown>;

function collector(): { stream: Writable; text: () => string; lines: () => Line[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text, lines: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line) };
}

const endpoint = '/v1/chat/completions' as const;
const KEY = 'sk-test-logs-0123456789abcdef';

function finishedSummary(): Summary {
  const stats = new RunStats(Date.parse('2026-01-01T00:00:00Z'));
  stats.lines = 1;
  stats.succeeded = 1;
  stats.sent = 1;
  stats.attempts = 2;
  const prices = loadPriceTable(undefined);
  return buildSummary({
    stats,
    ledger: new CostLedger(prices),
    prices,
    mode: 'online',
    input: { path: 'in.jsonl', fingerprint: 'x' },
    limits: {},
    stoppedReason: null,
    finished: true,
    now: Date.parse('2026-01-01T00:00:02Z'),
    warnings: [],
    thresholds: {},
  });
}

const requestEvents: RunEvent[] = [
  { type: 'started', input: 'in.jsonl', resumed: false, skippedAlready: 0, at: '2026-01-01T00:00:00.000Z' },
  { type: 'request_started', customId: 'a1', line: 1, model: 'gpt-4o-mini', endpoint, attempt: 1, chargedTokens: 20 },
  { type: 'attempt', customId: 'a1', model: 'gpt-4o-mini', endpoint, code: '503', latencyMs: 20, requestId: 'req_1' },
  { type: 'retry', customId: 'a1', line: 1, model: 'gpt-4o-mini', reason: 'server_error', code: 'http_503', waitMs: 812.4, attempt: 2, requestId: 'req_1' },
  { type: 'request_started', customId: 'a1', line: 1, model: 'gpt-4o-mini', endpoint, attempt: 2, chargedTokens: 20 },
  { type: 'rate_limited', customId: 'a1', model: 'gpt-4o-mini', waitMs: 1500, pausedUntil: '2026-01-01T00:00:03.000Z', requestId: 'req_2' },
  {
    type: 'request_finished',
    customId: 'a1',
    line: 1,
    model: 'gpt-4o-mini',
    endpoint,
    status: 'succeeded',
    httpStatus: 200,
    code: null,
    attempts: 3,
    latencyMs: 412.6,
    usage: { input_tokens: 12, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 7, reasoning_tokens: 0, input_audio_tokens: 0, output_audio_tokens: 0 },
    costUsd: 0.0000061,
    requestId: 'req_3',
    body: { model: 'gpt-4o-mini-2024-07-18', choices: [{ message: { content: 'a private answer' } }] },
  },
  { type: 'input_problem', line: 2, customId: 'line-2', code: 'invalid_json', message: 'line 2: not JSON' },
  { type: 'stopping', reason: 'interrupted', message: `interrupted (key ${KEY} must not show)` },
];

describe('createJsonLog', () => {
  it('writes one JSON object per event with its name, level, time, custom_id and request_id', () => {
    const out = collector();
    const log = createJsonLog(out.stream, { secrets: [KEY] });
    for (const event of requestEvents) log.onEvent(event);
    log.onEvent({ type: 'finished', summary: finishedSummary() });
    const lines = out.lines();
    expect(lines.map((l) => l.event)).toEqual([
      'run_started',
      'request_started',
      'request_retried',
      'request_started',
      'rate_limited',
      'request_finished',
      'input_problem',
      'stopping',
      'run_finished',
    ]);
    for (const line of lines) {
      expect(LOG_EVENTS).toContain(line.event);
      expect(typeof line.msg).toBe('string');
      expect(new Date(line.time as string).toISOString()).toBe(line.time);
      expect(['info', 'warn']).toContain(line.level);
    }
    for (const line of lines.filter((l) => String(l.event).startsWith('request_') || l.event === 'rate_limited' || l.event === 'input_problem')) {
      expect(line).toHaveProperty('custom_id');
      expect(line).toHaveProperty('request_id');
    }
  });

  it('says why a request is retried and how long it waits, and what a finished request got and cost', () => {
    const out = collector();
    const log = createJsonLog(out.stream);
    for (const event of requestEvents) log.onEvent(event);
    const byEvent = (name: string): Line[] => out.lines().filter((l) => l.event === name);
    expect(byEvent('request_retried')[0]).toMatchObject({ custom_id: 'a1', request_id: 'req_1', reason: 'server_error', code: 'http_503', wait_ms: 812, next_attempt: 2, level: 'warn' });
    expect(byEvent('rate_limited')[0]).toMatchObject({ custom_id: 'a1', request_id: 'req_2', model: 'gpt-4o-mini', wait_ms: 1500, paused_until: '2026-01-01T00:00:03.000Z' });
    expect(byEvent('request_finished')[0]).toMatchObject({
      custom_id: 'a1',
      request_id: 'req_3',
      status: 'succeeded',
      http_status: 200,
      attempts: 3,
      latency_ms: 413,
      usage: { input_tokens: 12, output_tokens: 7 },
      cost_usd: 0.0000061,
      level: 'info',
    });
  });

  it('never writes a response body unless asked, and then only on request_finished', () => {
    const plain = collector();
    const withBodies = collector();
    const quiet = createJsonLog(plain.stream);
    const loud = createJsonLog(withBodies.stream, { logBodies: true });
    for (const event of requestEvents) {
      quiet.onEvent(event);
      loud.onEvent(event);
    }
    expect(plain.text()).not.toContain('a private answer');
    expect(plain.lines().every((l) => !('body' in l))).toBe(true);
    const bodies = withBodies.lines().filter((l) => 'body' in l);
    expect(bodies.map((l) => l.event)).toEqual(['request_finished']);
    expect(bodies[0]?.body).toMatchObject({ choices: [{ message: { content: 'a private answer' } }] });
  });

  it('scrubs the key from any line it slipped into', () => {
    const out = collector();
    const log = createJsonLog(out.stream, { secrets: [KEY] });
    for (const event of requestEvents) log.onEvent(event);
    expect(out.text()).not.toContain(KEY);
    expect(out.lines().find((l) => l.event === 'stopping')?.message).toBe('interrupted (key [redacted] must not show)');
  });

  it('writes a progress line at most every progressIntervalMs, the first one at once', () => {
    let now = 0;
    const out = collector();
    const log = createJsonLog(out.stream, { progressIntervalMs: 10_000, now: () => now });
    const snapshot = { type: 'progress', progress: { elapsedSeconds: 0, bytesRead: 0, bytesTotal: null, fraction: null, etaSeconds: null, linesRead: 3, succeeded: 2, failed: 1, skipped: 0, inFlight: 4, queued: 5, retries: 1, rateLimited: 2, costUsd: 0.5, requestsPerMinute: 60, tokensPerMinute: 600, chargedTokensPerMinute: 900, concurrencyLimit: 16, concurrencyBound: false, limits: {} } } as RunEvent;
    for (const at of [0, 1_000, 9_999, 10_000, 15_000, 20_000]) {
      now = at;
      log.onEvent(snapshot);
    }
    const progress = out.lines().filter((l) => l.event === 'progress');
    expect(progress).toHaveLength(3);
    expect(progress[0]).toMatchObject({ lines_read: 3, succeeded: 2, failed: 1, in_flight: 4, queued: 5, rate_limited: 2, requests_per_minute: 60 });
  });

  it('ends with a run_finished line carrying the summary and the exit code it implies', () => {
    const out = collector();
    createJsonLog(out.stream).onEvent({ type: 'finished', summary: finishedSummary() });
    const [line] = out.lines();
    expect(line).toMatchObject({ event: 'run_finished', exit_code: 0, summary: { requests: { succeeded: 1 }, attempts: { total: 2 } } });
  });
});

function cliIO(env: Record<string, string>): { io: CliIO; stderr: ReturnType<typeof collector>; stdout: PassThrough } {
  const stderr = collector();
  const stdout = new PassThrough();
  stdout.resume();
  const io: CliIO = {
    stdin: Readable.from([]),
    stdout,
    stderr: stderr.stream,
    env,
    cwd: process.cwd(),
    signal: new AbortController().signal,
    force: new AbortController().signal,
  };
  return { io, stderr, stdout };
}

describe('run --log-format json (the CLI in-process, --simulate)', () => {
  it('puts nothing but JSON on stderr: one request_finished per request, a final run_finished, never the key', async () => {
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, [...Array.from({ length: 12 }, (_, i) => chatLine(i)), '{not json']);
      const { io, stderr } = cliIO({ OPENAI_API_KEY: KEY });
      const code = await main(['run', input, '--simulate', '--log-format', 'json'], io);
      expect(code).toBe(2); // the bad line failed for good
      const raw = stderr.text().split('\n').filter((l) => l !== '');
      const lines = raw.map((l) => JSON.parse(l) as Line);
      const finished = lines.filter((l) => l.event === 'request_finished');
      expect(finished).toHaveLength(12);
      expect(new Set(finished.map((l) => l.custom_id)).size).toBe(12);
      expect(finished.every((l) => typeof l.request_id === 'string' && l.status === 'succeeded' && !('body' in l))).toBe(true);
      expect(lines.filter((l) => l.event === 'input_problem').map((l) => l.custom_id)).toEqual(['line-13']);
      expect(lines.at(-1)).toMatchObject({ event: 'run_finished', exit_code: 2, summary: { requests: { total: 13, succeeded: 12, failed: 1 } } });
      expect(lines.filter((l) => l.event === 'progress').length).toBeGreaterThanOrEqual(1);
      expect(stderr.text()).not.toContain(KEY);
    } finally {
      await dir.remove();
    }
  });

  it('adds the response bodies with --log-bodies', async () => {
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, [chatLine(1)]);
      const { io, stderr } = cliIO({});
      expect(await main(['run', input, '--simulate', '--log-format', 'json', '--log-bodies'], io)).toBe(0);
      const finished = stderr.lines().find((l) => l.event === 'request_finished');
      expect(finished?.body).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant' } }] });
    } finally {
      await dir.remove();
    }
  });

  it('reports a fatal error as one JSON line with its code and exit code', async () => {
    const dir = await tempDir();
    try {
      const missing = dir.file('missing.jsonl');
      const { io, stderr } = cliIO({});
      expect(await main(['run', missing, '--simulate', '--log-format', 'json'], io)).toBe(1);
      const raw = stderr.text().split('\n').filter((l) => l !== '');
      expect(raw).toHaveLength(1);
      expect(JSON.parse(raw[0]!)).toMatchObject({ level: 'error', event: 'error', exit_code: 1, code: expect.any(String), msg: expect.stringContaining(missing) });
    } finally {
      await dir.remove();
    }
  });

  it('reports a bad flag as a JSON line too', async () => {
    const { io, stderr } = cliIO({});
    expect(await main(['run', 'in.jsonl', '--log-format=json', '--no-such-flag'], io)).toBe(1);
    expect(JSON.parse(stderr.text())).toMatchObject({ event: 'error', code: 'usage', exit_code: 1 });
  });

  it('refuses --log-bodies without --log-format json', async () => {
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, [chatLine(1)]);
      const { io, stderr } = cliIO({});
      expect(await main(['run', input, '--simulate', '--log-bodies'], io)).toBe(1);
      expect(stderr.text()).toContain('--log-bodies needs --log-format json');
    } finally {
      await dir.remove();
    }
  });
});
