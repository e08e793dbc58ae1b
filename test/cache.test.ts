// Paying once: the response cache and in-run dedup, over real HTTP to the
// simulator (its ledger says what was bought), in-process and as CLI
// processes sharing one cache file.

import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { RunOptions } from '../src/pipeline/options.js';
import { runBatch } from '../src/pipeline/run.js';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import type { Simulator } from '../src/sim/server.js';
import { cacheKey, canonicalJson, openResponseCache } from '../src/stores/response-cache.js';
import { runCli, startCli } from './support/cli.js';
import { readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { runOptionsFor } from './support/run.js';

const KEY = 'sk-test-key-123456';
const { dir, simulator } = perTestFixture(KEY);

const ask = (text: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: text }],
  max_tokens: 30,
  ...extra,
});

function options(input: string, s: Simulator, extra: Partial<RunOptions> = {}): RunOptions {
  return runOptionsFor(input, s, KEY, { overwrite: true, ...extra });
}

/**
 * Answers the simulator sold (its billed ledger). Not its HTTP request count:
 * two processes at once without a shared budget can draw 429s, which are
 * retried and never billed.
 */
const bought = (s: Simulator): number => Object.values(s.stats().billed).reduce((sum, totals) => sum + totals.requests, 0);

describe('canonical keys', () => {
  it('ignore key order at every depth, and tell endpoints and bodies apart', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    const body = ask('hi');
    expect(cacheKey('/v1/chat/completions', body)).toBe(cacheKey('/v1/chat/completions', JSON.parse(canonicalJson(body))));
    expect(cacheKey('/v1/chat/completions', { messages: body.messages, max_tokens: 30, model: 'gpt-4o-mini' })).toBe(
      cacheKey('/v1/chat/completions', body),
    );
    expect(cacheKey('/v1/responses', body)).not.toBe(cacheKey('/v1/chat/completions', body));
    expect(cacheKey('/v1/chat/completions', { ...body, model: 'gpt-4.1-mini' })).not.toBe(cacheKey('/v1/chat/completions', body));
  });
});

describe('the cache file', () => {
  it('never answers with an entry stored under another key (a damaged file): each entry carries its own key', async () => {
    const cachePath = dir.file('keys.lmdb');
    const answer = { storedAt: Date.now(), runId: 'r', status: 200, requestId: 'req_1', body: '{"id":"x"}', batch: false };
    const cache = await openResponseCache(cachePath);
    cache.put('good', answer);
    await cache.close();
    // Write an entry whose own key says it belongs elsewhere, as a damaged page might.
    const { open } = await import('lmdb');
    const raw = open({ path: cachePath, noSubdir: true });
    await raw.put('moved', { ...answer, key: 'good' });
    await raw.close();
    const again = await openResponseCache(cachePath);
    expect(again.get('good')).toMatchObject({ requestId: 'req_1' });
    expect(again.get('moved')).toBeUndefined();
    await again.close();
  });
});

describe('a cache that cannot store answers', () => {
  it('is a warning, never a crash: a full disk stops the storing, the run goes on and finishes', async () => {
    const s = await simulator();
    const input = dir.file('full.jsonl');
    await writeJsonl(input, Array.from({ length: 1000 }, (_, i) => ask(`full ${i}`)));
    const cachePath = dir.file('full.lmdb');
    // The cache grows faster than the results file (about 1.4 KB an answer against 0.6 KB): it hits the limit first.
    const result = await runCli(['run', input, '-q', `--cache=${cachePath}`], { env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url }, fileSizeLimitKiB: 1000 });
    // Nothing of ours on stderr. lmdb's C code prints its own "Write error: <errno> position N, size N"
    // (no newline) when a page write fails outright, rather than short: whether it does depends on
    // where the file-size limit falls against the pages being written.
    expect(result.stderr.replace(/Write error: [^\n]*? position \d+, size \d+/g, '')).toBe('');
    expect(result.code).toBe(0);
    const summary = await readJson<Summary>(dir.file('full.summary.json'));
    expect(summary.requests.succeeded).toBe(1000);
    expect(summary.warnings.join('\n')).toContain(`the response cache ${cachePath} could not store answers`);
  }, 60_000);
});

describe('--cache', () => {
  it('answers a second run entirely from the cache: nothing bought, $0, the original request_id, hits counted with what they saved', async () => {
    const s = await simulator();
    const input = dir.file('twice.jsonl');
    await writeJsonl(input, Array.from({ length: 40 }, (_, i) => ({ ...ask(`question ${i}`), metadata: { row: i } })));
    const cachePath = dir.file('cache.lmdb');
    const first = await runBatch(options(input, s, { cachePath }));
    expect(first.exitCode).toBe(0);
    expect(bought(s)).toBe(40);
    const firstResults = await readJsonl<ResultRecord>(dir.file('twice.results.jsonl'));
    expect(firstResults.every((r) => r.cache === undefined)).toBe(true);

    const second = await runBatch(options(input, s, { cachePath }));
    expect(second.exitCode).toBe(0);
    expect(bought(s)).toBe(40); // not one more
    const results = await readJsonl<ResultRecord>(dir.file('twice.results.jsonl'));
    expect(results).toHaveLength(40);
    const requestIds = new Map(firstResults.map((r) => [r.custom_id, r.response.request_id]));
    for (const r of results) {
      expect(r).toMatchObject({ cache: 'hit', cost_usd: 0, attempts: 0, error: null, metadata: { row: r.line - 1 } });
      expect(r.response.request_id).toBe(requestIds.get(r.custom_id));
    }
    const summary = second.summary;
    expect(summary.cost_usd.total).toBe(0);
    expect(summary.usage.input_tokens).toBe(0);
    expect(summary.attempts.total).toBe(0);
    expect(summary.cache).toMatchObject({ hits: 40, dedup: 0 });
    expect(summary.cache?.saved_usd).toBeCloseTo(first.summary.cost_usd.total, 9);
    expect(summary.cache?.saved_tokens).toBe(first.summary.usage.input_tokens + first.summary.usage.output_tokens);
  });

  it('re-run after editing 1% of the lines bills exactly the edited lines', async () => {
    const s = await simulator();
    const input = dir.file('edit.jsonl');
    const lines = Array.from({ length: 300 }, (_, i) => ({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: ask(`item ${i}`) }));
    await writeJsonl(input, lines);
    const cachePath = dir.file('cache.lmdb');
    await runBatch(options(input, s, { cachePath }));
    expect(bought(s)).toBe(300);
    for (const i of [7, 77, 177]) lines[i] = { ...lines[i]!, body: ask(`item ${i}, reworded`) };
    await writeJsonl(input, lines);
    const { summary } = await runBatch(options(input, s, { cachePath }));
    expect(bought(s)).toBe(303);
    expect(summary.cache).toMatchObject({ hits: 297, dedup: 0 });
    expect(summary.requests.succeeded).toBe(300);
  });

  it('never stores failures: a request that failed is sent again next time', async () => {
    const s = await simulator({ faults: { 400: 1 } }); // first attempts only: the next run's attempt succeeds
    const input = dir.file('fail.jsonl');
    await writeJsonl(input, [ask('one'), ask('two')]);
    const cachePath = dir.file('cache.lmdb');
    const first = await runBatch(options(input, s, { cachePath }));
    expect(first.summary.requests.failed).toBe(2);
    const second = await runBatch(options(input, s, { cachePath }));
    expect(second.exitCode).toBe(0);
    expect(second.summary.cache).toMatchObject({ hits: 0 });
    expect(s.stats().requests).toBe(4); // both sent twice: the 400s were not kept
    expect(bought(s)).toBe(2);
  });

  it('ignores entries older than --cache-ttl', async () => {
    const s = await simulator();
    const input = dir.file('ttl.jsonl');
    await writeJsonl(input, [ask('old'), ask('new')]);
    const cachePath = dir.file('cache.lmdb');
    const cache = await openResponseCache(cachePath);
    const day = 86_400_000;
    const stored = (text: string, ageMs: number) => ({ storedAt: Date.now() - ageMs, runId: 'earlier', status: 200, requestId: 'req_x', body: text, batch: false });
    const body = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    cache.put(cacheKey('/v1/chat/completions', ask('old')), stored(body, 40 * day));
    cache.put(cacheKey('/v1/chat/completions', ask('new')), stored(body, 1 * day));
    await cache.close();
    const { summary } = await runBatch(options(input, s, { cachePath, cacheTtlMs: 30 * day }));
    expect(summary.cache).toMatchObject({ hits: 1 });
    expect(bought(s)).toBe(1);
  });

  it('reports a corrupt cache file and goes on without it', async () => {
    const s = await simulator();
    const input = dir.file('corrupt.jsonl');
    await writeJsonl(input, [ask('a'), ask('b')]);
    const cachePath = dir.file('broken.lmdb');
    await writeFile(cachePath, 'not a database '.repeat(1000));
    const { summary, exitCode } = await runBatch(options(input, s, { cachePath }));
    expect(exitCode).toBe(0);
    expect(summary.requests.succeeded).toBe(2);
    expect(summary.warnings.join('\n')).toContain(`the response cache ${cachePath} cannot be used (${cachePath} is not a cache file (no LMDB header))`);
  });

  it('counts hits as 0 under --max-cost, and treats them as successes when resumed', async () => {
    const s = await simulator();
    const input = dir.file('capped.jsonl');
    await writeJsonl(input, Array.from({ length: 10 }, (_, i) => ask(`capped ${i}`)));
    const cachePath = dir.file('cache.lmdb');
    await runBatch(options(input, s, { cachePath }));
    const capped = await runBatch(options(input, s, { cachePath, maxCostUsd: 0, limit: 6 }));
    expect(capped.exitCode).toBe(0);
    expect(capped.summary.cache).toMatchObject({ hits: 6 });
    const resumed = await runBatch(options(input, s, { cachePath, resume: true, overwrite: false }));
    expect(resumed.exitCode).toBe(0);
    expect(resumed.summary.requests).toMatchObject({ succeeded: 10, skipped: 6 });
    expect(resumed.summary.cache).toMatchObject({ hits: 10 });
    expect(bought(s)).toBe(10);
  });
});

describe('--dedup', () => {
  it('sends each distinct body once in a file where 30% of the rows repeat: billed requests = distinct bodies, exactly', async () => {
    const s = await simulator({ latencyMs: 30 });
    const input = dir.file('repeats.jsonl');
    // 1,000 rows, 700 distinct: every tenth row … and the rest repeat earlier ones, near (in flight) and far (finished).
    const rows = Array.from({ length: 1000 }, (_, i) => (i < 700 ? ask(`distinct ${i}`) : ask(`distinct ${(i * 37) % 700}`)));
    await writeJsonl(input, rows);
    const { summary, exitCode } = await runBatch(options(input, s, { dedup: true, rpm: 600_000 }));
    expect(exitCode).toBe(0);
    expect(bought(s)).toBe(700);
    expect(summary.requests.succeeded).toBe(1000);
    expect(summary.cache).toMatchObject({ hits: 0, dedup: 300 });
    const results = await readJsonl<ResultRecord>(dir.file('repeats.results.jsonl'));
    expect(results.filter((r) => r.cache === 'dedup')).toHaveLength(300);
    expect(results.filter((r) => r.cache === 'dedup').every((r) => r.cost_usd === 0)).toBe(true);
  });
});

describe('one cache file shared by processes', () => {
  it('two CLI runs at once share the cache file, and a third process finds every answer in it', async () => {
    const s = await simulator({ latencyMs: 20 });
    const cachePath = dir.file('shared.lmdb');
    const a = dir.file('a.jsonl');
    const b = dir.file('b.jsonl');
    await writeJsonl(a, Array.from({ length: 200 }, (_, i) => ask(`shared ${i}`)));
    await writeJsonl(b, Array.from({ length: 200 }, (_, i) => ask(`shared ${199 - i}`)));
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url };
    const [ra, rb] = await Promise.all([startCli(['run', a, '-q', '--cache', cachePath], { env }).done, startCli(['run', b, '-q', '--cache', cachePath], { env }).done]);
    expect([ra.code, rb.code, ra.stderr, rb.stderr]).toEqual([0, 0, '', '']);
    expect(bought(s)).toBeLessThanOrEqual(400);
    const before = bought(s);
    const c = dir.file('c.jsonl');
    await writeJsonl(c, Array.from({ length: 200 }, (_, i) => ask(`shared ${i}`)));
    const rc = await runCli(['run', c, '-q', `--cache=${cachePath}`], { env });
    expect(rc.code).toBe(0);
    expect(bought(s)).toBe(before);
    const summary = await readJson<Summary>(dir.file('c.summary.json'));
    expect(summary.cache).toMatchObject({ hits: 200 });
  }, 60_000);
});

describe('oai-batch cache and estimate --cache', () => {
  it('stats, prune --older-than and clear look after the file; estimate --cache prices only what the cache cannot answer', async () => {
    const s = await simulator();
    const cachePath = dir.file('managed.lmdb');
    const input = dir.file('managed.jsonl');
    await writeJsonl(input, Array.from({ length: 12 }, (_, i) => ask(`managed ${i}`)));
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url };
    expect((await runCli(['run', input, '-q', '--limit', '8', `--cache=${cachePath}`], { env })).code).toBe(0);

    // 8 of 12 in the cache, and two more lines repeat earlier ones: 2 left to buy.
    const more = dir.file('more.jsonl');
    await writeJsonl(more, [...Array.from({ length: 12 }, (_, i) => ask(`managed ${i}`)), ask('managed 10'), ask('managed 11')]);
    const estimate = await runCli(['estimate', more, '--format', 'json', `--cache=${cachePath}`], { env });
    expect(estimate.code).toBe(0);
    expect(JSON.parse(estimate.stdout)).toMatchObject({ lines: 14, requests: 4, reused_requests: 10 });
    const plain = JSON.parse((await runCli(['estimate', more, '--format', 'json'], { env })).stdout);
    expect(plain).toMatchObject({ requests: 14, reused_requests: 0 });

    const stats = await runCli(['cache', 'stats', cachePath, '--format', 'json'], { env });
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ path: cachePath, entries: 8 });
    const pruned = await runCli(['cache', 'prune', cachePath, '--older-than', '1d'], { env });
    expect(pruned.stdout).toContain('removed 0 entries older than 1d');
    const cleared = await runCli(['cache', 'clear', cachePath], { env });
    expect(cleared.stdout).toContain('removed all 8 entries');
    expect(JSON.parse((await runCli(['cache', 'stats', cachePath, '--format', 'json'], { env })).stdout)).toMatchObject({ entries: 0 });
    const missing = await runCli(['cache', 'stats', dir.file('nowhere.lmdb')], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no response cache at');
  }, 60_000);

  it('prune removes the entries older than the age it is given', async () => {
    const cachePath = dir.file('aged.lmdb');
    const cache = await openResponseCache(cachePath);
    const day = 86_400_000;
    for (const [i, age] of [2, 10, 40, 50].entries()) {
      cache.put(`k${i}`, { storedAt: Date.now() - age * day, runId: 'r', status: 200, requestId: null, body: '{}', batch: false });
    }
    await cache.close();
    const result = await runCli(['cache', 'prune', cachePath, '--older-than', '30d']);
    expect(result.stdout).toContain('removed 2 entries older than 30d');
    expect(JSON.parse((await runCli(['cache', 'stats', cachePath, '--format', 'json'])).stdout)).toMatchObject({ entries: 2 });
  });
});

describe('batch download --cache', () => {
  it('stores the answers that came back through the Batch API, and a later run --cache buys none of them (saved at the batch price)', async () => {
    const input = dir.file('batched.jsonl');
    await writeJsonl(input, Array.from({ length: 30 }, (_, i) => ask(`batched ${i}`)));
    const cachePath = dir.file('batched.lmdb');
    const batch = await runCli(['batch', 'submit', input, '--simulate', '-q', `--cache=${cachePath}`, '--summary', dir.file('batch.summary.json'), '-o', dir.file('batch.results.jsonl')]);
    expect(batch.code).toBe(0);
    const batchSummary = await readJson<Summary>(dir.file('batch.summary.json'));
    expect(batchSummary.requests.succeeded).toBe(30);

    const run = await runCli(['run', input, '--simulate', '-q', '--overwrite', `--cache=${cachePath}`]);
    expect(run.code).toBe(0);
    const summary = await readJson<Summary>(dir.file('batched.summary.json'));
    expect(summary.attempts.total).toBe(0);
    expect(summary.cache).toMatchObject({ hits: 30, dedup: 0 });
    expect(summary.cache?.saved_usd).toBeCloseTo(batchSummary.cost_usd.total, 9);
    const results = await readJsonl<ResultRecord>(dir.file('batched.results.jsonl'));
    expect(results.every((r) => r.cache === 'hit' && r.cost_usd === 0)).toBe(true);
  }, 60_000);
});
