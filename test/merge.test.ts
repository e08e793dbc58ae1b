// merge over crafted part files: which record counts, and the summary's arithmetic.

import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { mergeResults, type MergeOptions, type MergePart } from '../src/commands/merge.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { optionsOf } from './support/argv.js';
import { mergeCommand, partOfResultsFile } from '../src/cli/merge.js';
import { readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import type { ErrorRecord, ResultRecord, Summary } from '../src/shared/types.js';
import { ConfigError, InputError } from '../src/shared/errors.js';

const { dir } = perTestFixture(null);

const request = (id: string) => ({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: id }] } });

function success(id: string, line: number, promptTokens: number, completionTokens: number, latencyMs = 100): ResultRecord {
  return {
    id: `oaib_req_${id}`,
    custom_id: id,
    response: {
      status_code: 200,
      request_id: `req_${id}`,
      body: {
        object: 'chat.completion',
        model: 'gpt-4o-mini-2024-07-18',
        choices: [{ index: 0, message: { role: 'assistant', content: `answer ${id}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      },
    },
    error: null,
    line,
    attempts: 1,
    latency_ms: latencyMs,
    cost_usd: null,
  };
}

function failure(id: string, line: number, code = 'http_400'): ErrorRecord {
  return { id: `oaib_err_${id}`, custom_id: id, line, response: null, error: { code, message: 'bad' }, attempts: 1 };
}

/** An input of `n` requests a0 … a(n-1), lines 1 … n, plus what `extra` adds after them. */
async function input(n: number, extra: string[] = []): Promise<string> {
  const path = dir.file('in.jsonl');
  await writeFile(path, [...Array.from({ length: n }, (_, i) => JSON.stringify(request(`a${i}`))), ...extra].join('\n') + '\n');
  return path;
}

async function part(name: string, results: unknown[], errors: unknown[] = [], summary: Partial<Summary> | null = null): Promise<MergePart> {
  const p = { results: dir.file(`${name}.results.jsonl`), errors: dir.file(`${name}.errors.jsonl`), summary: dir.file(`${name}.summary.json`) };
  await writeJsonl(p.results, results);
  await writeJsonl(p.errors, errors);
  if (summary) await writeFile(p.summary, JSON.stringify(summary));
  return p;
}

function options(inputPath: string, parts: MergePart[], extra: Partial<MergeOptions> = {}): MergeOptions {
  return {
    input: inputPath,
    parts,
    output: dir.file('in.results.jsonl'),
    errors: dir.file('in.errors.jsonl'),
    summary: dir.file('in.summary.json'),
    overwrite: false,
    prices: loadPriceTable(),
    ...extra,
  };
}

describe('merge', () => {
  it('keeps one success per custom_id and reports the repeats', async () => {
    const path = await input(3);
    const p0 = await part('p0', [success('a0', 1, 10, 5), success('a1', 2, 10, 5)]);
    const p1 = await part('p1', [success('a1', 2, 10, 5), success('a2', 3, 10, 5), success('a2', 3, 10, 5)]);
    const result = await mergeResults(options(path, [p0, p1]));
    expect(result.duplicates).toEqual({ count: 2, examples: ['a1', 'a2'] });
    expect(result.summary.requests).toEqual({ total: 3, succeeded: 3, failed: 0, skipped: 0, pending: 0 });
    expect(result.summary.usage.input_tokens).toBe(30);
    expect(result.summary.warnings.some((w) => w.includes('2 success records repeated'))).toBe(true);
    expect(result.exitCode).toBe(0);
    const merged = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(merged.map((r) => r.custom_id).sort()).toEqual(['a0', 'a1', 'a2']);
  });

  it('sums integer token totals and prices them once, as one run would', async () => {
    const path = await input(4);
    const parts = [await part('p0', [success('a0', 1, 1001, 333), success('a1', 2, 7, 1)]), await part('p1', [success('a2', 3, 12345, 678), success('a3', 4, 1, 99999)])];
    const result = await mergeResults(options(path, parts));
    expect(result.summary.usage).toMatchObject({ input_tokens: 1001 + 7 + 12345 + 1, output_tokens: 333 + 1 + 678 + 99999 });
    // gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
    const expected = ((1001 + 7 + 12345 + 1) * 0.15 + (333 + 1 + 678 + 99999) * 0.6) / 1e6;
    expect(result.summary.cost_usd.total).toBeCloseTo(expected, 12);
    expect(result.summary.by_model['gpt-4o-mini-2024-07-18']?.requests).toBe(4);
  });

  it('counts an answer from the cache or dedup as a saving, not as billed usage', async () => {
    const path = await input(2);
    const hit = { ...success('a1', 2, 1000, 1000), cache: 'hit' as const, cost_usd: 0 };
    const result = await mergeResults(options(path, [await part('p0', [success('a0', 1, 10, 5), hit])]));
    expect(result.summary.requests.succeeded).toBe(2);
    expect(result.summary.usage).toMatchObject({ input_tokens: 10, output_tokens: 5 });
    expect(result.summary.cache).toMatchObject({ hits: 1, dedup: 0, saved_tokens: 2000 });
  });

  it('drops a failure when another part succeeded for the same custom_id, and counts a failure once', async () => {
    const path = await input(3);
    const p0 = await part('p0', [success('a0', 1, 1, 1)], [failure('a1', 2), failure('a2', 3)]);
    const p1 = await part('p1', [success('a1', 2, 1, 1)], [failure('a2', 3)]);
    const result = await mergeResults(options(path, [p0, p1]));
    expect(result.summary.requests).toMatchObject({ total: 3, succeeded: 2, failed: 1, pending: 0 });
    expect((await readJsonl<ErrorRecord>(dir.file('in.errors.jsonl'))).map((r) => r.custom_id)).toEqual(['a2']);
    expect(result.exitCode).toBe(2);
  });

  it('counts a bad line once by its line, even when it names a custom_id that succeeded', async () => {
    const path = await input(2, [JSON.stringify(request('a0')), '{not json']);
    const p0 = await part('p0', [success('a0', 1, 1, 1), success('a1', 2, 1, 1)], [failure('a0', 3, 'duplicate_custom_id'), failure('line-4', 4, 'invalid_json')]);
    const p1 = await part('p1', [], [failure('line-4', 4, 'invalid_json')]);
    const result = await mergeResults(options(path, [p0, p1]));
    expect(result.summary.requests).toMatchObject({ total: 4, succeeded: 2, failed: 2, pending: 0 });
    expect(result.exitCode).toBe(2);
  });

  it('counts lines in no part as pending and names the missing files (exit 3)', async () => {
    const path = await input(4);
    const p0 = await part('p0', [success('a0', 1, 1, 1)]);
    const absent = { results: dir.file('gone.results.jsonl'), errors: dir.file('gone.errors.jsonl'), summary: dir.file('gone.summary.json') };
    const result = await mergeResults(options(path, [p0, absent]));
    expect(result.summary.requests).toMatchObject({ total: 4, succeeded: 1, failed: 0, pending: 3 });
    expect(result.missing).toContain(absent.results);
    expect(result.missing).not.toContain(absent.errors);
    expect(result.exitCode).toBe(3);
  });

  it('leaves out successes for custom_ids the input does not have', async () => {
    const path = await input(1);
    const result = await mergeResults(options(path, [await part('p0', [success('a0', 1, 1, 1), success('zzz', 9, 1, 1)])]));
    expect(result.foreign).toBe(1);
    expect(result.summary.requests.succeeded).toBe(1);
  });

  it('adds up the parts’ attempts and spans their times; takes the stopped reason of a part that left lines pending', async () => {
    const path = await input(3);
    const summary = (start: string, end: string, attempts: number, stopped: Summary['stopped_reason']): Partial<Summary> => ({
      timing: { started_at: start, finished_at: end, wall_seconds: 1, requests_per_minute: 0, tokens_per_minute: 0, charged_tokens_per_minute: 0, latency_ms: { p50: 0, p90: 0, p95: 0, p99: 0, max: 0 } },
      attempts: { total: attempts, retries: 0, rate_limited: 1, server_errors: 0, timeouts: 0 },
      stopped_reason: stopped,
      warnings: [],
    });
    const p0 = await part('p0', [success('a0', 1, 1, 1)], [], summary('2026-11-20T10:00:00.000Z', '2026-11-20T10:01:00.000Z', 4, null));
    const p1 = await part('p1', [success('a1', 2, 1, 1)], [], summary('2026-11-20T10:00:30.000Z', '2026-11-20T10:02:00.000Z', 5, 'budget_store_unavailable'));
    const result = await mergeResults(options(path, [p0, p1]));
    expect(result.summary.attempts).toMatchObject({ total: 9, rate_limited: 2 });
    expect(result.summary.timing).toMatchObject({ started_at: '2026-11-20T10:00:00.000Z', finished_at: '2026-11-20T10:02:00.000Z', wall_seconds: 120 });
    expect(result.summary.stopped_reason).toBe('budget_store_unavailable');
    expect(await readJson<Summary>(dir.file('in.summary.json'))).toEqual(result.summary);
  });

  it('refuses to replace merged files without --overwrite, and to write over a part', async () => {
    const path = await input(1);
    const p0 = await part('p0', [success('a0', 1, 1, 1)]);
    await writeFile(dir.file('in.results.jsonl'), 'paid work\n');
    await expect(mergeResults(options(path, [p0]))).rejects.toBeInstanceOf(InputError);
    expect((await mergeResults(options(path, [p0], { overwrite: true }))).exitCode).toBe(0);
    await expect(mergeResults(options(path, [p0], { output: p0.results, overwrite: true }))).rejects.toBeInstanceOf(ConfigError);
    expect(existsSync(`${p0.results}.merge-${process.pid}.tmp`)).toBe(false);
  });
});

describe('merge: argv → options', () => {
  it('names the parts of --shards N and the merged files after the input', () => {
    const o = optionsOf(mergeCommand, ['merge', 'data/req.jsonl', '--shards', '2']);
    expect(o.merge).toMatchObject({
      input: 'data/req.jsonl',
      parts: [
        { results: 'data/req.shard-0-of-2.results.jsonl', errors: 'data/req.shard-0-of-2.errors.jsonl', summary: 'data/req.shard-0-of-2.summary.json' },
        { results: 'data/req.shard-1-of-2.results.jsonl', errors: 'data/req.shard-1-of-2.errors.jsonl', summary: 'data/req.shard-1-of-2.summary.json' },
      ],
      output: 'data/req.results.jsonl',
      errors: 'data/req.errors.jsonl',
      summary: 'data/req.summary.json',
      overwrite: false,
    });
  });

  it('takes results files with their siblings, and merged names from flags', () => {
    const o = optionsOf(mergeCommand, ['merge', 'in.jsonl', 'a.results.jsonl', 'b.results.jsonl.gz', 'c.jsonl', '-o', 'all.jsonl', '--errors', 'e.jsonl', '--summary', 's.json', '--overwrite']);
    expect(o.merge.parts).toEqual([partOfResultsFile('a.results.jsonl'), partOfResultsFile('b.results.jsonl.gz'), { results: 'c.jsonl', errors: null, summary: null }]);
    expect(partOfResultsFile('b.results.jsonl.gz')).toEqual({ results: 'b.results.jsonl.gz', errors: 'b.errors.jsonl', summary: 'b.summary.json' });
    expect(o.merge).toMatchObject({ output: 'all.jsonl', errors: 'e.jsonl', summary: 's.json', overwrite: true });
  });

  it.each([
    [['merge', 'in.jsonl'], 'name what to merge: --shards N (the files run --shard I/N wrote) or results files'],
    [['merge', 'in.jsonl', '--shards', '2', 'a.results.jsonl'], 'give either --shards N or results files, not both'],
    [['merge', 'in.jsonl', '--shards', '0'], 'Expected `shards` to be an integer ≥ 1, got `0`'],
  ])('refuses %j', (argv, message) => {
    expect(() => optionsOf(mergeCommand, argv)).toThrow(message);
  });
});
