// What a run spent and what it may spend: answers without usage are never
// free, --max-cost stays hard for them, and this run's spend is told apart
// from the whole file's (--max-total-cost), over real HTTP to the simulator.

import { describe, expect, it } from 'vitest';
import type { RunOptions } from '../src/pipeline/options.js';
import { runBatch } from '../src/pipeline/run.js';
import type { ResultRecord } from '../src/shared/types.js';
import type { Simulator } from '../src/sim/server.js';
import { chatLine, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { runOptionsFor } from './support/run.js';

const { dir, simulator } = perTestFixture('sk-test-key-123456');

function options(input: string, s: Simulator, extra: Partial<RunOptions> = {}): RunOptions {
  return runOptionsFor(input, s, 'sk-test-key-123456', { ...extra });
}

const miniLine = (i: number): Record<string, unknown> => chatLine(2 * i); // even lines are gpt-4o-mini

describe('answers without usage', () => {
  it('are counted, warned about and listed as unknown cost, never as free', async () => {
    const s = await simulator({ omitUsage: true });
    const input = dir.file('nousage.jsonl');
    await writeJsonl(input, Array.from({ length: 20 }, (_, i) => chatLine(i)));
    const { summary, exitCode } = await runBatch(options(input, s));
    expect(exitCode).toBe(0);
    expect(summary.requests.succeeded).toBe(20);
    expect(summary.requests_without_usage).toBe(20);
    // Models as the API named them (dated snapshots).
    const mini = Object.keys(summary.by_model).find((model) => model.startsWith('gpt-4o-mini')) as string;
    expect(summary.unpriced_models).toHaveLength(2);
    expect(summary.unpriced_models).toContain(mini);
    expect(summary.by_model[mini]).toMatchObject({ requests: 10, requests_without_usage: 10 });
    expect(summary.warnings.join('\n')).toMatch(/without usage: .*gpt-4o-mini\S* \(10\).*never as free/);
    const results = await readJsonl<ResultRecord>(dir.file('nousage.results.jsonl'));
    expect(results.every((r) => r.cost_usd === null)).toBe(true);
  });

  it('keep --max-cost hard: each counts its whole reservation as spent', async () => {
    const s = await simulator({ omitUsage: true });
    const input = dir.file('capped.jsonl');
    await writeJsonl(input, Array.from({ length: 200 }, (_, i) => miniLine(i)));
    // Each request reserves its worst case (~60 tokens at gpt-4o-mini rates, about $0.00003):
    // a $0.0003 cap admits about ten of them, not all 200 "free" ones.
    const { summary, exitCode } = await runBatch(options(input, s, { maxCostUsd: 0.0003, concurrency: 4 }));
    expect(exitCode).toBe(3);
    expect(summary.stopped_reason).toBe('max_cost');
    expect(s.stats().requests).toBeLessThan(20);
    expect(summary.warnings.join('\n')).toMatch(/carried no usage: --max-cost counted their worst case as spent/);
  });

  it('are read back as such by --resume', async () => {
    const s = await simulator({ omitUsage: true });
    const input = dir.file('again.jsonl');
    await writeJsonl(input, Array.from({ length: 6 }, (_, i) => miniLine(i)));
    await runBatch(options(input, s, { limit: 4 }));
    const { summary } = await runBatch(options(input, s, { resume: true }));
    expect(summary.requests).toMatchObject({ succeeded: 6, skipped: 4 });
    expect(summary.requests_without_usage).toBe(6);
  });
});

describe("this run's spend and the whole file's", () => {
  it('reports run_cost_usd apart from cost_usd, which covers earlier runs too', async () => {
    const s = await simulator();
    const input = dir.file('two.jsonl');
    await writeJsonl(input, Array.from({ length: 20 }, (_, i) => miniLine(i)));
    const first = await runBatch(options(input, s, { limit: 8 }));
    expect(first.summary.run_cost_usd).toBe(first.summary.cost_usd.total);
    const second = await runBatch(options(input, s, { resume: true }));
    expect(second.summary.cost_usd.total).toBeGreaterThan(first.summary.cost_usd.total);
    expect(second.summary.run_cost_usd).toBeCloseTo(second.summary.cost_usd.total - first.summary.cost_usd.total, 9);
  });

  it('--max-total-cost counts what earlier runs spent: a nightly --resume does not spend the cap again each night', async () => {
    const s = await simulator();
    const input = dir.file('nightly.jsonl');
    await writeJsonl(input, Array.from({ length: 60 }, (_, i) => miniLine(i)));
    const first = await runBatch(options(input, s, { limit: 20, concurrency: 4 }));
    const spent = first.summary.cost_usd.total;
    // The cap leaves room for a few more requests only, whatever --max-cost of this run alone would allow.
    const { summary, exitCode } = await runBatch(
      options(input, s, { resume: true, maxTotalCostUsd: spent * 1.25, maxCostUsd: 1, concurrency: 4 }),
    );
    expect(exitCode).toBe(3);
    expect(summary.stopped_reason).toBe('max_total_cost');
    expect(summary.cost_usd.total).toBeLessThanOrEqual(spent * 1.25 + 1e-12);
    expect(summary.requests.pending).toBeGreaterThan(0);
    expect(summary.run_cost_usd).toBeLessThan(spent);
  });
});

describe('requests abandoned in flight', () => {
  it('are counted as possibly billed and warned about after --drain-timeout', async () => {
    const s = await simulator({ latencyMs: 3000 });
    const input = dir.file('abandon.jsonl');
    await writeJsonl(input, Array.from({ length: 8 }, (_, i) => miniLine(i)));
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('SIGINT')), 300);
    const { summary, exitCode } = await runBatch(
      options(input, s, { rpm: 60_000, concurrency: 8, drainTimeoutMs: 100, signal: stop.signal, maxCostUsd: 1 }),
    );
    expect(exitCode).toBe(3);
    expect(summary.stopped_reason).toBe('interrupted');
    expect(summary.requests.pending).toBe(8);
    expect(summary.warnings.join('\n')).toContain('8 requests were abandoned in flight (--drain-timeout or a second signal): the server may have answered and billed them');
  });
});
