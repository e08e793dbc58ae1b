// Many workers, one budget (DESIGN.md §6): the CLI as real child processes,
// sharing a real redis-server (on a free loopback port, with a password that
// must never be printed) and one simulator; shards merged and exported; Redis
// down at start, lost and restarted mid-run, away past --redis-timeout.

import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Simulator } from '../src/sim/server.js';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import type { ExportRow } from '../src/commands/export.js';
import { runCli, startCli, type CliResult } from './support/cli.js';
import { batchLine, chatLine, readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { freePort, startRedisServer, type RedisServer } from './support/redis-server.js';

const KEY = 'sk-fleet-test-key-0123456789abcdef';
const PASSWORD = 'fleet-redis-pw-7c1e';
const { dir, simulator } = perTestFixture(KEY);

let redis: RedisServer | null = null;
afterEach(async () => {
  await redis?.close();
  redis = null;
});

async function startRedis(): Promise<RedisServer> {
  redis = await startRedisServer({ password: PASSWORD });
  return redis;
}

function env(s: Simulator): Record<string, string> {
  return { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url };
}

/** Batch-form lines with their own ids, and a few bare ones (keyed line-N). */
function mixedLines(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => (i % 10 === 9 ? chatLine(i + 1) : batchLine(`req-${i + 1}`, i + 1)));
}

/** Success records per custom_id. */
async function successCounts(...paths: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const path of paths) {
    for (const r of await readJsonl<ResultRecord>(path)) {
      if (r.response?.status_code === 200) counts.set(r.custom_id, (counts.get(r.custom_id) ?? 0) + 1);
    }
  }
  return counts;
}

function expectNoSecret(result: CliResult): void {
  expect(result.stderr).not.toContain(PASSWORD);
  expect(result.stdout).not.toContain(PASSWORD);
  expect(result.stderr).not.toContain(KEY);
}

describe('a fleet of shards on one Redis', () => {
  it('covers every line once; merge gives one run’s usage and cost; export reads the merge', async () => {
    const r = await startRedis();
    const s = await simulator({ latencyMs: 10 });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(100));
    const workers = [0, 1, 2].map((i) => startCli(['run', input, '--shard', `${i}/3`, '--redis', r.url, '--quiet'], { env: env(s) }).done);
    const results = await Promise.all(workers);
    for (const result of results) {
      expect(result.code).toBe(0);
      expectNoSecret(result);
    }
    const summaries = await Promise.all([0, 1, 2].map((i) => readJson<Summary>(dir.file(`in.shard-${i}-of-3.summary.json`))));
    for (const summary of summaries) expect(summary.requests.total).toBeGreaterThan(10);
    expect(summaries.reduce((n, summary) => n + summary.requests.total, 0)).toBe(100);
    const shardFiles = [0, 1, 2].map((i) => dir.file(`in.shard-${i}-of-3.results.jsonl`));
    const counts = await successCounts(...shardFiles);
    expect(counts.size).toBe(100);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    // The budget lives under the default scope: a hash, with no key material in Redis.
    const keys = await r.keys();
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(/^oai-batch:budget:[0-9a-f]{16}:gpt-4(o|\.1)-mini$/);

    const merged = await runCli(['merge', input, '--shards', '3'], { env: env(s) });
    expect(merged.code).toBe(0);
    expect(merged.stdout).toContain('100 lines, 100 succeeded, 0 failed, 0 pending');
    const mergedSummary = await readJson<Summary>(dir.file('in.summary.json'));
    expect(mergedSummary.requests).toEqual({ total: 100, succeeded: 100, failed: 0, skipped: 0, pending: 0 });

    // One run over the whole input (the simulator answers a body the same way every time).
    const whole = await runCli(['run', input, '-o', dir.file('whole.results.jsonl'), '--errors', dir.file('whole.errors.jsonl'), '--summary', dir.file('whole.summary.json'), '--quiet'], {
      env: env(s),
    });
    expect(whole.code).toBe(0);
    const wholeSummary = await readJson<Summary>(dir.file('whole.summary.json'));
    expect(mergedSummary.usage).toEqual(wholeSummary.usage);
    expect(mergedSummary.cost_usd).toEqual(wholeSummary.cost_usd);
    expect(mergedSummary.by_model).toEqual(wholeSummary.by_model);

    const exported = await runCli(['export', input], { env: env(s) });
    expect(exported.code).toBe(0);
    const rows = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as ExportRow);
    expect(rows.map((row) => row.line)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(rows.every((row) => row.status === 'succeeded')).toBe(true);
  }, 90_000);

  it('resumes a shard on its own, from its own files', async () => {
    const r = await startRedis();
    const s = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(40));
    const first = await runCli(['run', input, '--shard', '1/2', '--redis', r.url, '--limit', '5', '--quiet'], { env: env(s) });
    expect(first.code).toBe(0);
    const resumed = await runCli(['run', input, '--shard', '1/2', '--redis', r.url, '--resume', '--quiet'], { env: env(s) });
    expect(resumed.code).toBe(0);
    const summary = await readJson<Summary>(dir.file('in.shard-1-of-2.summary.json'));
    expect(summary.requests.skipped).toBe(5);
    expect(summary.requests.pending).toBe(0);
    const counts = await successCounts(dir.file('in.shard-1-of-2.results.jsonl'));
    expect(counts.size).toBe(summary.requests.total);
    expect(s.stats().duplicates).toBe(0);
    // Shard 0 was never run: merging leaves its lines pending (exit 3).
    const merged = await runCli(['merge', input, '--shards', '2'], { env: env(s) });
    expect(merged.code).toBe(3);
    expect((await readJson<Summary>(dir.file('in.summary.json'))).requests.pending).toBe(40 - summary.requests.total);
  }, 60_000);

  it('warns that shards without --redis will contend', async () => {
    const s = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(6));
    const result = await runCli(['run', input, '--shard', '0/2'], { env: env(s) });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('warning: --shard 0/2 without --redis');
  });
});

describe('when Redis fails', () => {
  it('stops at start with one line and sends nothing when Redis is down', async () => {
    const s = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(5));
    const port = await freePort();
    const result = await runCli(['run', input, '--redis', `redis://:${PASSWORD}@127.0.0.1:${port}`], { env: env(s) });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining(`cannot reach Redis at redis://127.0.0.1:${port} (--redis)`) as string]);
    expectNoSecret(result);
    expect(s.stats().requests).toBe(0);
    expect((await readJsonl(dir.file('in.results.jsonl'))).length).toBe(0);
  });

  it('waits while Redis is away, then goes on when it comes back empty, re-learning the limits', async () => {
    const r = await startRedis();
    // 1,200 RPM learned from headers (no flags): about 18 requests a second at 0.9 headroom.
    const s = await simulator({ rpm: 1200, latencyMs: 20 });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(80));
    const { done } = startCli(['run', input, '--redis', r.url], { env: env(s) });
    while (s.stats().requests < 15) await sleep(20);
    await r.stop();
    await sleep(1000);
    // Nothing leaves while the shared budget is away: no private fallback.
    const during = s.stats().requests;
    await sleep(1500);
    expect(s.stats().requests).toBe(during);
    expect(during).toBeLessThan(80);
    await r.start();
    const result = await done;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/lost Redis at redis:\/\/127\.0\.0\.1:\d+ .*; requests wait up to 60 s/);
    expect(result.stderr).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+ is back after/);
    expectNoSecret(result);
    const counts = await successCounts(dir.file('in.results.jsonl'));
    expect(counts.size).toBe(80);
    expect(s.stats().duplicates).toBe(0);
    // Limits were learned again (written back by the worker) after the restart.
    expect(await r.keys()).not.toEqual([]);
    expect(s.stats().rateLimited).toBeLessThanOrEqual(4);
  }, 60_000);

  it('drains and exits 3 when Redis stays away past --redis-timeout; --resume finishes with every line once', async () => {
    const r = await startRedis();
    const s = await simulator({ rpm: 1200, latencyMs: 20 });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(80));
    const { done } = startCli(['run', input, '--redis', r.url, '--redis-timeout', '1.5'], { env: env(s) });
    while (s.stats().requests < 15) await sleep(20);
    await r.stop();
    const result = await done;
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('lost the shared budget in Redis at redis://127.0.0.1:');
    expect(result.stderr).toContain('--resume continues once Redis is back');
    expectNoSecret(result);
    const summary = await readJson<Summary>(dir.file('in.summary.json'));
    expect(summary.stopped_reason).toBe('budget_store_unavailable');
    const paid = Object.values(s.stats().answered).reduce((a, b) => a + b, 0);
    const counts = await successCounts(dir.file('in.results.jsonl'));
    // Nothing lost: every answer paid for is on disk, and the rest is pending.
    expect(counts.size).toBe(paid);
    expect(summary.requests).toMatchObject({ total: 80, succeeded: paid, failed: 0, pending: 80 - paid });

    await r.start();
    const resumed = await runCli(['run', input, '--redis', r.url, '--resume', '--quiet'], { env: env(s) });
    expect(resumed.code).toBe(0);
    const after = await successCounts(dir.file('in.results.jsonl'));
    expect(after.size).toBe(80);
    expect([...after.values()].every((n) => n === 1)).toBe(true);
    expect(s.stats().duplicates).toBe(0);
  }, 60_000);
});
