// What the terminal shows at the end (issue 15 items 19 and 20): the end
// table fits 80 columns; compare's table keeps one number of decimals per
// column and shows `–` latency for a model with no success; --dry-run says
// what the real run will need for an existing results file; and a Batch API
// summary shows the batches' wall time, not per-request latency or rates.

import { describe, expect, it } from 'vitest';
import { copyFile } from 'node:fs/promises';
import { summaryTable, wrapFigures } from '../src/cli/progress.js';
import { comparisonTable, usdDecimals, type Comparison, type ModelComparison } from '../src/commands/compare.js';
import { batchSpanMs } from '../src/batch/download.js';
import type { ManifestPart } from '../src/batch/manifest.js';
import type { Summary } from '../src/shared/types.js';
import { runCli } from './support/cli.js';
import { chatLine, readJson, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-end-table-0001';
const { dir, simulator } = perTestFixture(KEY);

function summary(overrides: Partial<Summary> = {}): Summary {
  return {
    tool: { name: 'oai-batch', version: '0.0.0' },
    mode: 'online',
    input: { path: 'in.jsonl', fingerprint: 'x', lines: 1_234_567 },
    requests: { total: 1_234_567, succeeded: 1_200_000, failed: 34_000, skipped: 500_000, pending: 567 },
    attempts: { total: 1_300_000, retries: 65_433, rate_limited: 12_345, server_errors: 4_321, timeouts: 1_234 },
    usage: { input_tokens: 123_456_789, cached_input_tokens: 12_345_678, output_tokens: 98_765_432, reasoning_tokens: 9_876_543, input_audio_tokens: 0, output_audio_tokens: 0 },
    cost_usd: { total: 123.456789, input: 100, cached_input: 3, output: 20.456789 },
    by_model: {
      'gpt-4.1-mini-2025-04-14': { requests: 600_000, input_tokens: 61_000_000, cached_input_tokens: 6_000_000, output_tokens: 49_000_000, reasoning_tokens: 0, cost_usd: 61.123456 },
      'ft:gpt-4o-mini-2024-07-18:my-org:custom-suffix:abc123': { requests: 600_000, input_tokens: 62_456_789, cached_input_tokens: 6_345_678, output_tokens: 49_765_432, reasoning_tokens: 0, cost_usd: null },
    },
    unpriced_models: ['ft:gpt-4o-mini-2024-07-18:my-org:custom-suffix:abc123'],
    pricing: { as_of: '2026-01-01', source: 'x', batch_discount_applied: false },
    timing: {
      started_at: '2026-01-01T00:00:00.000Z',
      finished_at: '2026-01-01T05:00:00.000Z',
      wall_seconds: 18_000,
      requests_per_minute: 4_115,
      tokens_per_minute: 740_000,
      charged_tokens_per_minute: 800_000,
      latency_ms: { p50: 1_234, p90: 2_345, p95: 3_456, p99: 4_567, max: 12_345 },
    },
    limits: { 'gpt-4.1-mini-2025-04-14': { rpm: 30_000, tpm: 150_000_000, source: 'headers', concurrency_bound: true } },
    alerts: [{ name: 'error_rate', value: 0.027541, threshold: 0.01 }],
    warnings: ['the budget cap is an estimate: 12,345 requests set no output limit and reserved the default 4,096 output tokens each'],
    stopped_reason: 'max_cost',
    ...overrides,
  } as Summary;
}

const FILES = { results: 'data/requests.results.jsonl', errors: 'data/requests.errors.jsonl', summary: 'data/requests.summary.json' };
const widest = (text: string): number => Math.max(...text.split('\n').map((line) => line.length));

describe('the end table', () => {
  it('fits 80 columns with large figures, dated and fine-tuned model names, a warning and three files', () => {
    const table = summaryTable(summary(), FILES);
    expect(widest(table)).toBeLessThanOrEqual(80);
    // Nothing is lost by the wrapping.
    for (const text of ['1,234,567 total', '567 pending', '1,234 timeouts', 'ft:gpt-4o-mini-2024-07-18:my-org:custom-suffix:abc123:', 'held back by --concurrency', 'output tokens each', FILES.summary]) {
      expect(table.replace(/\n\s+/g, ' ')).toContain(text);
    }
    expect(table).toMatch(/^model {5}gpt-4\.1-mini-2025-04-14: 600,000 req/m);
  });

  it("shows this run's spend apart from the whole file's, answers without usage, and what the cache saved", () => {
    const table = summaryTable(
      summary({ run_cost_usd: 23.456789, requests_without_usage: 3, cache: { hits: 1_200, dedup: 34, saved_usd: 4.5, saved_tokens: 2_345_678 } }),
      FILES,
      200,
    );
    expect(table).toMatch(/^cost +\$23\.456789 this run · \$123\.456789 the whole file \(earlier runs included\) · unpriced: .* · 3 answers without usage \(cost unknown\)$/m);
    expect(table).toMatch(/^cache +1,200 hits · 34 dedup · saved \$4\.500000 \(2\.3M tokens\)$/m);
    const writes = summaryTable(summary({ usage: { ...summary().usage, cache_write_input_tokens: 4_321 } }), FILES, 200);
    expect(writes).toMatch(/\(12,345,678 cached, 4,321 written to the cache\)/);
    const single = summaryTable(summary({ run_cost_usd: 123.456789, requests_without_usage: 0 }), FILES, 200);
    expect(single).toMatch(/^cost +\$123\.456789 · unpriced/m);
    expect(single).not.toMatch(/^cache/m);
  });

  it('shows no latency when no request succeeded in this run', () => {
    const none = summaryTable(summary({ requests: { total: 10, succeeded: 4, failed: 6, skipped: 4, pending: 0 } }), FILES);
    expect(none).not.toMatch(/p50/);
    const cached = summaryTable(
      summary({ requests: { total: 10, succeeded: 10, failed: 0, skipped: 0, pending: 0 }, cache: { hits: 10, dedup: 0, saved_usd: 0.1, saved_tokens: 100 } }),
      FILES,
    );
    expect(cached).not.toMatch(/p50/);
    expect(summaryTable(summary(), FILES)).toMatch(/p50 1,234 ms · p95 3,456 ms/);
  });

  it('shows a short run’s time in tenths of a second, not 0s', () => {
    const timeOf = (wall: number): string => {
      const base = summary();
      const line = summaryTable({ ...base, timing: { ...base.timing, wall_seconds: wall } }, FILES).split('\n').find((l) => l.startsWith('time')) ?? '';
      return line.replace(/^time\s+/, '').split(' · ')[0] as string;
    };
    expect([0.004, 0.28, 9.94, 9.96, 75, 18_000].map(timeOf)).toEqual(['0.0s', '0.3s', '9.9s', '10s', '1m15s', '5h00m']);
  });

  it('uses the width of a wider terminal when it is given', () => {
    const table = summaryTable(summary(), FILES, 160);
    expect(widest(table)).toBeGreaterThan(80);
    expect(widest(table)).toBeLessThanOrEqual(160);
  });

  it.each<[string, string, number, string[]]>([
    ['a short line as is', 'a · b', 80, ['a · b']],
    ['at separators', 'aaaa · bbbb · cccc', 11, ['aaaa · bbbb', 'cccc']],
    ['a figure longer than the width at spaces', 'one two three four', 9, ['one two', 'three', 'four']],
    ['one long word on its own line', 'abcdefghijkl · x', 5, ['abcdefghijkl', 'x']],
  ])('wrapFigures breaks %s', (_name, text, width, expected) => {
    expect(wrapFigures(text, width)).toEqual(expected);
  });

  it('stays within 80 columns in a real run against the simulator (stderr is not a terminal)', async () => {
    const sim = await simulator();
    await writeJsonl(dir.file('requests-with-a-rather-long-name-for-the-folder.jsonl'), Array.from({ length: 10 }, (_, i) => chatLine(i)));
    const result = await runCli(['run', 'requests-with-a-rather-long-name-for-the-folder.jsonl', '--fail-on-429-rate', '0.5'], {
      cwd: dir.path,
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/gpt-4\.1-mini-2025-04-14: 5 req/);
    expect(widest(result.stderr)).toBeLessThanOrEqual(80);
  }, 30_000);
});

function modelFigures(overrides: Partial<ModelComparison>): ModelComparison {
  return {
    model: 'm',
    files: { results: 'r', errors: 'e', summary: 's' },
    requests: 20,
    succeeded: 20,
    failed: 0,
    pending: 0,
    success_rate: 1,
    mean_input_tokens: 20.25,
    mean_output_tokens: 40,
    cost_per_1000_usd: 0.0269,
    projected_cost_usd: 0.000537,
    latency_ms: { p50: 306, p95: 1343 },
    agreement: null,
    agreement_compared: 0,
    stopped_reason: null,
    ...overrides,
  };
}

describe('the compare table', () => {
  const comparison = (models: ModelComparison[]): Comparison => ({
    input: 'in.jsonl',
    sample: { size: 20, method: 'first', seed: null, file_requests: 20, file_problems: 0 },
    models,
    pricing: { as_of: '2026-01-01', source: 'x' },
    files: { markdown: 'compare.md', json: 'compare.json' },
  });

  it('shows each USD column with one number of decimals, and – latency for a model with no success', () => {
    const { rows } = comparisonTable(
      comparison([
        modelFigures({ model: 'a', cost_per_1000_usd: 0.0269, projected_cost_usd: 0.000537 }),
        modelFigures({ model: 'b', cost_per_1000_usd: 0.5284, projected_cost_usd: 0.0106 }),
        modelFigures({ model: 'c', cost_per_1000_usd: 12.5, projected_cost_usd: 0.25 }),
        modelFigures({ model: 'none', succeeded: 0, success_rate: 0, mean_input_tokens: null, mean_output_tokens: null, cost_per_1000_usd: null, projected_cost_usd: null, latency_ms: null }),
      ]),
    );
    expect(rows.map((r) => r[4])).toEqual(['0.0269', '0.5284', '12.5000', '–']);
    expect(rows.map((r) => r[5])).toEqual(['0.000537', '0.010600', '0.250000', '–']);
    expect(rows.map((r) => [r[6], r[7]])).toEqual([
      ['306 ms', '1,343 ms'],
      ['306 ms', '1,343 ms'],
      ['306 ms', '1,343 ms'],
      ['–', '–'],
    ]);
  });

  it.each<[string, Array<number | null>, number]>([
    ['cents when every amount is a dollar or more', [1.5, 120], 2],
    ['three significant digits of the smallest amount', [0.0269, 0.5284], 4],
    ['zeros and nulls ignored', [0, null, 0.00123], 5],
    ['cents when there is nothing to show', [null, 0], 2],
    ['at most 10', [1e-14], 10],
  ])('usdDecimals: %s', (_name, amounts, decimals) => {
    expect(usdDecimals(amounts)).toBe(decimals);
  });

  it('prints – latency and null in compare.json for a model that never answered (real run on the simulator)', async () => {
    await writeJsonl(dir.file('in.jsonl'), Array.from({ length: 6 }, (_, i) => chatLine(i)));
    const result = await runCli(['compare', 'in.jsonl', '--models', 'gpt-4o-mini,nonexistent-model', '--simulate', '-q'], { cwd: dir.path });
    expect(result.code).toBe(2);
    const row = result.stdout.split('\n').find((line) => line.startsWith('nonexistent-model')) ?? '';
    expect(row).toMatch(/–\s+–\s+n\/a$/);
    expect(row).not.toMatch(/0 ms/);
    const json = await readJson<Comparison>(dir.file('compare.json'));
    expect(json.models[1]?.latency_ms).toBeNull();
    expect(json.models[0]?.latency_ms?.p50).toBeGreaterThan(0);
  }, 60_000);
});

describe('run --dry-run and an existing results file', () => {
  it('says which flag the real run needs, and exits 1 as the real run would', async () => {
    await copyFile(new URL('../samples/chat.jsonl', import.meta.url), dir.file('chat.jsonl'));
    const fresh = await runCli(['run', 'chat.jsonl', '--dry-run'], { cwd: dir.path });
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).not.toMatch(/exists/);
    await writeJsonl(dir.file('chat.results.jsonl'), []);
    const refused = await runCli(['run', 'chat.jsonl', '--dry-run'], { cwd: dir.path });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/chat\.results\.jsonl exists: the real run needs --resume .* or --overwrite/);
    const resumed = await runCli(['run', 'chat.jsonl', '--dry-run', '--resume'], { cwd: dir.path });
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/chat\.results\.jsonl exists: --resume continues it/);
    const overwritten = await runCli(['run', 'chat.jsonl', '--dry-run', '--overwrite'], { cwd: dir.path });
    expect(overwritten.code).toBe(0);
    expect(overwritten.stdout).toMatch(/chat\.results\.jsonl exists: --overwrite starts it afresh/);
  }, 30_000);
});

describe('Batch API summaries', () => {
  const part = (overrides: Partial<ManifestPart>): ManifestPart => ({ state: 'submitted', created_at: null, ended_at: null, ...overrides }) as ManifestPart;

  it.each<[string, ManifestPart[], { createdMs: number | null; endedMs: number | null }]>([
    ['first creation to last end', [part({ created_at: 100, ended_at: 400 }), part({ created_at: 50, ended_at: 300 })], { createdMs: 50_000, endedMs: 400_000 }],
    ['no end while one batch runs', [part({ created_at: 100, ended_at: 400 }), part({ created_at: 200 })], { createdMs: 100_000, endedMs: null }],
    ['parts never created left out', [part({ created_at: 100, ended_at: 400 }), part({ state: 'cancelled' })], { createdMs: 100_000, endedMs: 400_000 }],
    ['nothing known for an older manifest', [part({ ended_at: 400 })], { createdMs: null, endedMs: 400_000 }],
    ['nothing created', [], { createdMs: null, endedMs: null }],
  ])('batchSpanMs: %s', (_name, parts, expected) => {
    expect(batchSpanMs(parts)).toEqual(expected);
  });

  it('the end table shows the batch wall time and no per-request latency or rate', () => {
    const table = summaryTable(summary({ mode: 'batch', timing: { ...summary().timing, wall_seconds: 372, latency_ms: null } }), FILES);
    const time = table.split('\n').find((line) => line.startsWith('time')) ?? '';
    expect(time).toBe('time      6m12s (batch wall time, created → ended)');
    expect(table).not.toMatch(/p50|req\/min/);
  });

  it('a real batch cycle writes latency_ms null and the wall time from the batches', async () => {
    await copyFile(new URL('../samples/chat.jsonl', import.meta.url), dir.file('chat.jsonl'));
    const result = await runCli(['batch', 'submit', 'chat.jsonl', '--simulate', '--overwrite'], { cwd: dir.path });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^time\s+\d+(\.\d)?s \(batch wall time, created → ended\)$/m);
    expect(result.stderr).not.toMatch(/p50|req\/min/);
    const written = await readJson<Summary>(dir.file('chat.summary.json'));
    expect(written.mode).toBe('batch');
    expect(written.timing.latency_ms).toBeNull();
    // The span the batches ran, by the API's whole-second clock: the in-process simulator takes about a second.
    expect(written.timing.finished_at).not.toBeNull();
    expect(Date.parse(written.timing.finished_at as string) - Date.parse(written.timing.started_at)).toBe(written.timing.wall_seconds * 1000);
    expect(written.timing.wall_seconds).toBeLessThan(30);
  }, 60_000);
});
