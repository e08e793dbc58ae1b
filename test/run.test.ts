// runBatch end to end, in-process, over real HTTP to the simulator on port 0.

import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { runBatch } from '../src/pipeline/run.js';
import { INITIAL_CONCURRENCY } from '../src/pipeline/send/concurrency.js';
import type { RunOptions } from '../src/pipeline/options.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { requestDigest, type Simulator } from '../src/sim/server.js';
import type { ErrorRecord, ResultRecord } from '../src/shared/types.js';
import type { RunEvent } from '../src/shared/events.js';
import { batchLine, chatLine, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { runOptionsFor } from './support/run.js';

const prices = loadPriceTable();
const { dir, simulator } = perTestFixture('sk-test-key-123456');


function options(input: string, s: Simulator, extra: Partial<RunOptions> = {}): RunOptions {
  return runOptionsFor(input, s, 'sk-test-key-123456', { random: () => 0.01, ...extra });
}

/** The text an answer carries, for any body kind. */
function answerText(body: unknown): string {
  const b = body as Record<string, any>;
  if (b.object === 'chat.completion') return b.choices[0].message.content;
  if (b.object === 'response') return b.output.flatMap((o: any) => o.content ?? []).map((c: any) => c.text).join('');
  if (b.object === 'text_completion') return b.choices[0].text;
  return '';
}

function bodySent(line: Record<string, unknown>): string {
  if ('body' in line) return JSON.stringify(line.body);
  const { metadata: _m, ...rest } = line;
  return JSON.stringify(rest);
}

describe('runBatch', () => {
  it('runs both line forms mixed, each result answering its own request, metadata echoed and never sent', async () => {
    const s = await simulator();
    const lines: Array<Record<string, unknown>> = [];
    for (let i = 1; i <= 30; i++) {
      lines.push(i % 3 === 0 ? batchLine(`b-${i}`, i, { metadata: { row: i } }) : { ...chatLine(i), metadata: { row: i, tag: 'x' } });
    }
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, lines);
    const { summary, exitCode } = await runBatch(options(input, s));

    expect(exitCode).toBe(0);
    const results = await readJsonl<ResultRecord>(dir.file('mixed.results.jsonl'));
    expect(results).toHaveLength(30);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(30);
    for (const result of results) {
      const line = lines[result.line - 1] as Record<string, unknown>;
      expect(result.custom_id).toBe('body' in line ? line.custom_id : `line-${result.line}`);
      expect(answerText(result.response.body)).toContain(`[sim:${requestDigest(bodySent(line))}]`);
      expect(result.metadata).toEqual(line.metadata);
      expect(result.error).toBeNull();
      expect(result.response.status_code).toBe(200);
      expect(result.response.request_id).toMatch(/^req_/);
      expect(result.attempts).toBe(1);
      expect(result.cost_usd).toBeGreaterThan(0);
    }
    expect(s.stats().withMetadata).toBe(0);
    expect(summary.requests).toEqual({ total: 30, succeeded: 30, failed: 0, skipped: 0, pending: 0 });
    expect(summary.attempts.total).toBe(30);
    expect(summary.stopped_reason).toBeNull();
  });

  it('sends the API’s own body.metadata in batch form', async () => {
    const s = await simulator();
    const input = dir.file('meta.jsonl');
    const line = batchLine('m1', 1);
    (line.body as Record<string, unknown>).metadata = { api: 'yes' };
    await writeJsonl(input, [line]);
    await runBatch(options(input, s));
    expect(s.stats().withMetadata).toBe(1);
  });

  it.each([
    ['500', 'server_errors'],
    ['502', 'server_errors'],
    ['503', 'server_errors'],
    ['reset', null],
    ['malformed', null],
  ] as const)('retries a first-attempt %s fault until it succeeds', async (fault, counter) => {
    const s = await simulator({ faults: { [fault]: 1 } });
    const input = dir.file('f.jsonl');
    await writeJsonl(input, [chatLine(1), chatLine(2), chatLine(3)]);
    const { summary, exitCode } = await runBatch(options(input, s));
    expect(exitCode).toBe(0);
    const results = await readJsonl<ResultRecord>(dir.file('f.results.jsonl'));
    expect(results.map((r) => r.attempts)).toEqual([2, 2, 2]);
    expect(summary.attempts).toMatchObject({ total: 6, retries: 3 });
    if (counter) expect(summary.attempts[counter]).toBe(3);
    expect(s.stats().duplicates).toBe(0);
  });

  it('times out a hanging attempt and retries it', async () => {
    const s = await simulator({ faults: { hang: 1 }, hangMs: 30_000 });
    const input = dir.file('h.jsonl');
    await writeJsonl(input, [chatLine(1), chatLine(2)]);
    const { summary, exitCode } = await runBatch(options(input, s, { timeoutMs: 300 }));
    expect(exitCode).toBe(0);
    expect(summary.attempts.timeouts).toBe(2);
    expect(summary.requests.succeeded).toBe(2);
  });

  it('gives up after --max-attempts and records the last failure with its code', async () => {
    const s = await simulator({ faults: { '500': 1 }, faultsEveryAttempt: true });
    const input = dir.file('g.jsonl');
    await writeJsonl(input, [chatLine(1, { metadata: { keep: 1 } })]);
    const { summary, exitCode } = await runBatch(options(input, s, { maxAttempts: 3 }));
    expect(exitCode).toBe(2);
    const errors = await readJsonl<ErrorRecord>(dir.file('g.errors.jsonl'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ custom_id: 'line-1', line: 1, attempts: 3, metadata: { keep: 1 }, error: { code: 'http_500' } });
    expect(errors[0]?.response?.status_code).toBe(500);
    expect(summary.requests).toMatchObject({ total: 1, succeeded: 0, failed: 1, pending: 0 });
    // Every 500 counts, the last one (not retried) included.
    expect(summary.attempts).toMatchObject({ total: 3, retries: 2, server_errors: 3, timeouts: 0 });
  });

  it('counts a timeout on the last attempt among the summary’s timeouts', async () => {
    const s = await simulator({ faults: { hang: 1 }, faultsEveryAttempt: true, hangMs: 30_000 });
    const input = dir.file('t.jsonl');
    await writeJsonl(input, [chatLine(1)]);
    const { summary, exitCode } = await runBatch(options(input, s, { timeoutMs: 200, maxAttempts: 2 }));
    expect(exitCode).toBe(2);
    expect(summary.attempts).toMatchObject({ total: 2, retries: 1, server_errors: 0, timeouts: 2 });
  });

  it('reports the last attempt’s latency for a request that failed', async () => {
    const s = await simulator({ faults: { '500': 1 }, faultsEveryAttempt: true, latencyMs: 80 });
    const input = dir.file('lat.jsonl');
    await writeJsonl(input, [chatLine(1)]);
    const events: RunEvent[] = [];
    const { exitCode } = await runBatch(options(input, s, { maxAttempts: 1, onEvent: (event) => events.push(event) }));
    expect(exitCode).toBe(2);
    const finished = events.find((event) => event.type === 'request_finished');
    expect(finished).toMatchObject({ status: 'failed', code: 'http_500' });
    expect(finished?.type === 'request_finished' && finished.latencyMs).toBeGreaterThanOrEqual(60);
  });

  it('records a timeout as code "timeout" once attempts run out', async () => {
    const s = await simulator({ faults: { hang: 1 }, faultsEveryAttempt: true, hangMs: 30_000 });
    const input = dir.file('t.jsonl');
    await writeJsonl(input, [chatLine(1)]);
    const { exitCode } = await runBatch(options(input, s, { timeoutMs: 200, maxAttempts: 2 }));
    expect(exitCode).toBe(2);
    const errors = await readJsonl<ErrorRecord>(dir.file('t.errors.jsonl'));
    expect(errors[0]).toMatchObject({ error: { code: 'timeout' }, attempts: 2, response: null });
  });

  it('treats a 400 and a 404 as final after one attempt', async () => {
    const s = await simulator();
    const input = dir.file('final.jsonl');
    await writeJsonl(input, [
      // Past our own checks (plan refuses empty messages), refused by the API.
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 0 },
      { model: 'nonexistent-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 },
      chatLine(3),
    ]);
    const { summary, exitCode } = await runBatch(options(input, s));
    expect(exitCode).toBe(2);
    const errors = await readJsonl<ErrorRecord>(dir.file('final.errors.jsonl'));
    const byLine = new Map(errors.map((e) => [e.line, e]));
    expect(byLine.get(1)?.response?.status_code).toBe(400);
    expect(byLine.get(1)?.attempts).toBe(1);
    expect(byLine.get(2)).toMatchObject({ attempts: 1, error: { code: 'model_not_found' } });
    expect(summary.requests).toMatchObject({ succeeded: 1, failed: 2 });
  });

  it('stops the whole run on a 401 with auth_failed and exit 1, recording nothing as failed', async () => {
    const s = await simulator();
    const input = dir.file('auth.jsonl');
    await writeJsonl(input, Array.from({ length: 50 }, (_, i) => chatLine(i)));
    const o = options(input, s);
    o.transport.apiKey = 'sk-wrong-key-987654';
    const events: RunEvent[] = [];
    const { summary, exitCode } = await runBatch({ ...o, concurrency: 2, onEvent: (e) => events.push(e) });
    expect(exitCode).toBe(1);
    expect(summary.stopped_reason).toBe('auth_failed');
    // The API quotes the refused key with its ends visible (sk-*****…54): never repeated.
    const stopping = events.find((e) => e.type === 'stopping') as Extract<RunEvent, { type: 'stopping' }>;
    expect(stopping.message).toContain('Incorrect API key provided: sk-[redacted]');
    expect(JSON.stringify(events)).not.toMatch(/sk-\*|\*54|wrong-key/);
    expect(summary.requests.failed).toBe(0);
    expect(summary.requests.pending).toBe(50);
    expect(s.stats().requests).toBeLessThanOrEqual(3);
  });

  it('stops on insufficient_quota, keeping the answers already paid for', async () => {
    const s = await simulator({ quotaAfterRequests: 5 });
    const input = dir.file('quota.jsonl');
    await writeJsonl(input, Array.from({ length: 40 }, (_, i) => chatLine(i)));
    const { summary, exitCode } = await runBatch(options(input, s, { concurrency: 1 }));
    expect(exitCode).toBe(1);
    expect(summary.stopped_reason).toBe('quota_exhausted');
    const results = await readJsonl<ResultRecord>(dir.file('quota.results.jsonl'));
    expect(results).toHaveLength(5);
    expect(summary.requests).toMatchObject({ total: 40, succeeded: 5, failed: 0, pending: 35 });
  });

  it('waits out 429s without spending attempts', async () => {
    const s = await simulator({ rpm: 120, rateLimit429Headers: 'retry-after-ms' });
    const input = dir.file('rl.jsonl');
    await writeJsonl(input, Array.from({ length: 6 }, (_, i) => chatLine(i, { model: 'gpt-4o-mini' })));
    // Twice the server's real limit, and one attempt only: every 429 must be waited out, not spent.
    const { summary, exitCode } = await runBatch(options(input, s, { rpm: 600, maxAttempts: 1 }));
    expect(exitCode).toBe(0);
    expect(summary.requests.succeeded).toBe(6);
    expect(summary.attempts.rate_limited).toBe(s.stats().rateLimited);
  });

  it('never has more requests in flight than --concurrency', async () => {
    const s = await simulator({ latencyMs: 30 });
    const input = dir.file('c.jsonl');
    await writeJsonl(input, Array.from({ length: 120 }, (_, i) => chatLine(i)));
    const { exitCode } = await runBatch(options(input, s, { concurrency: 7 }));
    expect(exitCode).toBe(0);
    expect(s.stats().maxInFlight).toBe(7);
  });

  it('starts with 64 requests in flight, not --concurrency, before anything is measured', async () => {
    const s = await simulator({ latencyMs: 1500 });
    const input = dir.file('start.jsonl');
    await writeJsonl(input, Array.from({ length: 150 }, (_, i) => chatLine(i)));
    // No adjustment during the run: the limit stays where it started.
    const { exitCode } = await runBatch(options(input, s, { concurrency: 512, progressIntervalMs: 60_000 }));
    expect(exitCode).toBe(0);
    expect(s.stats().maxInFlight).toBe(INITIAL_CONCURRENCY);
  });

  it('raises the in-flight limit while the process has room (slow server, no budgets)', async () => {
    const s = await simulator({ latencyMs: 1500 });
    const input = dir.file('grow.jsonl');
    await writeJsonl(input, Array.from({ length: 300 }, (_, i) => chatLine(i)));
    const { exitCode } = await runBatch(options(input, s, { concurrency: 512, progressIntervalMs: 200 }));
    expect(exitCode).toBe(0);
    expect(s.stats().maxInFlight).toBeGreaterThan(INITIAL_CONCURRENCY);
  });

  it('writes gzip-compressed outputs when their names end in .gz', async () => {
    const s = await simulator();
    const input = dir.file('z.jsonl');
    await writeJsonl(input, [chatLine(1), { not: 'a request' }, chatLine(3)]);
    const { exitCode } = await runBatch({
      ...options(input, s),
      output: dir.file('out.results.jsonl.gz'),
      errors: dir.file('out.errors.jsonl.gz'),
    });
    expect(exitCode).toBe(2);
    expect(await readJsonl(dir.file('out.results.jsonl.gz'))).toHaveLength(2);
    expect(await readJsonl(dir.file('out.errors.jsonl.gz'))).toHaveLength(1);
  });

  it('reads gzip, JSON-array and stdin inputs', async () => {
    const s = await simulator();
    const lines = [chatLine(1), chatLine(2)];
    await writeFile(dir.file('a.jsonl.gz'), gzipSync(lines.map((l) => JSON.stringify(l)).join('\n')));
    await writeFile(dir.file('arr.json'), JSON.stringify([chatLine(1), batchLine('x', 2), chatLine(3)], null, 2));
    const gz = await runBatch({ ...options(dir.file('a.jsonl.gz'), s), output: dir.file('a.out.jsonl') });
    expect(gz.summary.requests.succeeded).toBe(2);
    const arr = await runBatch({ ...options(dir.file('arr.json'), s), output: dir.file('arr.out.jsonl') });
    expect(arr.summary.requests.succeeded).toBe(3);
    const ids = (await readJsonl<ResultRecord>(dir.file('arr.out.jsonl'))).map((r) => r.custom_id).sort();
    expect(ids).toEqual(['line-1', 'line-3', 'x']);
    const stdin = await runBatch({
      ...options('-', s),
      stdin: Readable.from([Buffer.from(lines.map((l) => JSON.stringify(l)).join('\r\n'))]),
      output: dir.file('s.results.jsonl'),
      errors: dir.file('s.errors.jsonl'),
      summary: dir.file('s.summary.json'),
    });
    expect(stdin.summary.requests.succeeded).toBe(2);
    expect(stdin.summary.input.fingerprint).toBe('stdin');
  });

  it('turns bad lines into error records with their line numbers and runs the rest (exit 2)', async () => {
    const s = await simulator();
    const input = dir.file('bad.jsonl');
    await writeJsonl(input, [
      chatLine(1),
      '{not json',
      '[1,2]',
      { messages: [{ role: 'user', content: 'no model' }] },
      { custom_id: 'b', method: 'POST', url: '/v1/chat/completions', body: 'text' },
      { custom_id: 'c', method: 'POST', url: '/v1/images/generations', body: { model: 'x' } },
      batchLine('dup', 7),
      batchLine('dup', 8),
      chatLine(9, { stream: true }),
      '',
      chatLine(11),
    ]);
    const events: RunEvent[] = [];
    const { summary, exitCode } = await runBatch(options(input, s, { onEvent: (e) => events.push(e) }));
    expect(exitCode).toBe(2);
    const errors = await readJsonl<ErrorRecord>(dir.file('bad.errors.jsonl'));
    expect(errors.map((e) => [e.line, e.error.code])).toEqual([
      [2, 'invalid_json'],
      [3, 'not_an_object'],
      [4, 'missing_model'],
      [5, 'invalid_body'],
      [6, 'unsupported_endpoint'],
      [8, 'duplicate_custom_id'],
      [9, 'stream_not_supported'],
    ]);
    for (const e of errors) expect(e.error.message).toContain(`line ${e.line}`);
    expect(summary.requests).toMatchObject({ total: 10, succeeded: 3, failed: 7, pending: 0 });
    expect(events.filter((e) => e.type === 'input_problem')).toHaveLength(7);
  });

  it('refuses to replace an existing results file without --resume or --overwrite', async () => {
    const s = await simulator();
    const input = dir.file('e.jsonl');
    await writeJsonl(input, [chatLine(1)]);
    await runBatch(options(input, s));
    await expect(runBatch(options(input, s))).rejects.toThrow(/--resume.*--overwrite/);
    const again = await runBatch(options(input, s, { overwrite: true }));
    expect(again.exitCode).toBe(0);
    expect(await readJsonl(dir.file('e.results.jsonl'))).toHaveLength(1);
  });

  it('fails before sending anything when the input is missing or an output folder does not exist', async () => {
    const s = await simulator();
    await expect(runBatch(options(dir.file('missing.jsonl'), s))).rejects.toMatchObject({ exitCode: 1, message: /no such file/ });
    const input = dir.file('ok.jsonl');
    await writeJsonl(input, [chatLine(1)]);
    await expect(runBatch({ ...options(input, s), output: dir.file('nope/out.jsonl') })).rejects.toMatchObject({ exitCode: 1 });
    expect(s.stats().requests).toBe(0);
  });

  it('runs only the first N lines with limit', async () => {
    const s = await simulator();
    const input = dir.file('l.jsonl');
    await writeJsonl(input, Array.from({ length: 10 }, (_, i) => chatLine(i)));
    const { summary } = await runBatch(options(input, s, { limit: 4 }));
    expect(summary.requests).toMatchObject({ total: 4, succeeded: 4 });
    expect(s.stats().requests).toBe(4);
  });

  it('sends every supported endpoint a line names', async () => {
    const s = await simulator();
    const input = dir.file('ep.jsonl');
    await writeJsonl(input, [
      { custom_id: 'c', method: 'POST', url: '/v1/chat/completions', body: chatLine(1) },
      { custom_id: 'r', method: 'POST', url: '/v1/responses', body: { model: 'gpt-4.1-mini', input: 'Say hi', max_output_tokens: 20 } },
      { custom_id: 'e', method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: ['a', 'b'] } },
      { custom_id: 'l', method: 'POST', url: '/v1/completions', body: { model: 'gpt-3.5-turbo-instruct', prompt: 'Once', max_tokens: 8 } },
      { custom_id: 'm', method: 'POST', url: '/v1/moderations', body: { input: 'hello' } },
    ]);
    const { summary, exitCode } = await runBatch(options(input, s));
    expect(exitCode).toBe(0);
    const results = await readJsonl<ResultRecord>(dir.file('ep.results.jsonl'));
    const objects = Object.fromEntries(results.map((r) => [r.custom_id, (r.response.body as { object?: string }).object]));
    expect(objects).toMatchObject({ c: 'chat.completion', r: 'response', e: 'list', l: 'text_completion' });
    expect(summary.usage.input_tokens).toBeGreaterThan(0);
  });

  it('matches the simulator’s billed tokens exactly and prices them per model', async () => {
    const s = await simulator();
    const input = dir.file('bill.jsonl');
    const long = 'The history of the printing press is long and varied. '.repeat(150);
    await writeJsonl(input, [
      ...Array.from({ length: 10 }, (_, i) => chatLine(i)),
      ...Array.from({ length: 6 }, (_, i) => ({
        model: 'o4-mini',
        messages: [{ role: 'user', content: `${long} Question ${i}?` }],
        max_completion_tokens: 300,
      })),
    ]);
    const { summary } = await runBatch(options(input, s));
    const billed = s.stats().billed;
    for (const [model, totals] of Object.entries(billed)) {
      expect(summary.by_model[model]).toMatchObject({
        requests: totals.requests,
        input_tokens: totals.input_tokens,
        cached_input_tokens: totals.cached_input_tokens,
        output_tokens: totals.output_tokens,
        reasoning_tokens: totals.reasoning_tokens,
      });
    }
    expect(summary.usage.reasoning_tokens).toBeGreaterThan(0);
    expect(summary.usage.cached_input_tokens).toBeGreaterThan(0);
    expect(summary.unpriced_models).toEqual([]);
  });

  it('keeps --max-cost a hard cap when attempts time out after the server has answered (and billed) them', async () => {
    const s = await simulator({ latencyMs: 200, latencyJitter: 0.5 });
    const input = dir.file('cap.jsonl');
    await writeJsonl(
      input,
      Array.from({ length: 120 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Story ${i}` }], max_tokens: 400 })),
    );
    const cap = 0.004;
    const { summary, exitCode } = await runBatch(options(input, s, { maxCostUsd: cap, timeoutMs: 200, concurrency: 16 }));
    expect(exitCode).toBe(3);
    expect(summary.stopped_reason).toBe('max_cost');
    // What the server billed, priced by the table, never passes the cap.
    let billedUsd = 0;
    for (const [model, t] of Object.entries(s.stats().billed)) {
      const price = prices.models[model.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
      expect(price).toBeDefined();
      billedUsd +=
        ((t.input_tokens - t.cached_input_tokens) * price!.input + t.cached_input_tokens * price!.cached_input + t.output_tokens * price!.output) / 1e6;
    }
    expect(billedUsd).toBeLessThanOrEqual(cap);
    expect(summary.attempts.timeouts).toBeGreaterThan(0);
    expect(summary.warnings.join(' ')).toMatch(/timed out .* counted their worst case/);
  });

  it('fails a request larger than the whole token budget once, with request_too_large, and counts it for the error-rate alert', async () => {
    const s = await simulator();
    const input = dir.file('big.jsonl');
    await writeJsonl(input, [chatLine(1, { max_tokens: 500 }), chatLine(2, { max_tokens: 500 })]);
    const { summary, exitCode } = await runBatch(options(input, s, { tpm: 100, failOnErrorRate: 0.5 }));
    expect(exitCode).toBe(5);
    expect(summary.alerts).toEqual([{ name: 'error_rate', value: 1, threshold: 0.5 }]);
    const errors = await readJsonl<ErrorRecord>(dir.file('big.errors.jsonl'));
    expect(errors.map((e) => [e.error.code, e.attempts])).toEqual([
      ['request_too_large', 0],
      ['request_too_large', 0],
    ]);
    expect(s.stats().requests).toBe(0);
  });

  it('counts lines an earlier run finished as done, not pending, when a resumed run stops early', async () => {
    const s = await simulator();
    // More lines than the reader reads ahead, so the stop comes before it reaches the done ones.
    const all = Array.from({ length: 150 }, (_, i) =>
      batchLine(`c-${i + 1}`, i + 1, { body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Q ${i}` }], max_tokens: 400 } }),
    );
    const input = dir.file('late.jsonl');
    await writeJsonl(dir.file('tail.jsonl'), all.slice(140));
    const first = await runBatch({ ...options(dir.file('tail.jsonl'), s), output: dir.file('late.results.jsonl') });
    expect(first.summary.requests.succeeded).toBe(10);
    await writeJsonl(input, all);
    // A cap that lets only a few of the 140 missing requests through.
    const { summary, exitCode } = await runBatch(options(input, s, { resume: true, maxCostUsd: 0.0008, concurrency: 1 }));
    expect(exitCode).toBe(3);
    expect(summary.stopped_reason).toBe('max_cost');
    expect(summary.requests.total).toBe(150);
    const sentNow = s.stats().requests - 10;
    expect(summary.requests.succeeded).toBe(10 + sentNow);
    expect(summary.requests.pending).toBe(150 - 10 - sentNow);
  });
});

