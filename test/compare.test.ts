// compare: the same sample through several models under one limiter, over
// real HTTP to the simulator; the CLI as a child process for its exit code.

import { compareCommand } from '../src/cli/compare.js';
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { compareModels, drawSample, outputAgreement, type Comparison } from '../src/commands/compare.js';
import { costOf } from '../src/pricing/cost.js';
import { resolvePrice } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import type { Simulator } from '../src/sim/server.js';
import { emptyUsage, type ResultRecord } from '../src/shared/types.js';
import { runCli } from './support/cli.js';
import { chatLine, readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { optionsOf } from './support/argv.js';

const prices = loadPriceTable();
const KEY = 'sk-compare-test-key';
const { dir, simulator } = perTestFixture(KEY);


function connection(s: Simulator): { transport: { baseUrl: string; apiKey: string }; prices: typeof prices; timeoutMs: number } {
  return { transport: { baseUrl: s.url, apiKey: KEY }, prices, timeoutMs: 10_000 };
}

/** The cost of a model's billed tokens at the table's prices. */
function billedCostUsd(s: Simulator, answeredModel: string): number {
  const billed = s.stats().billed[answeredModel];
  if (!billed) throw new Error(`nothing billed for ${answeredModel}`);
  const price = resolvePrice(prices, answeredModel);
  if (!price) throw new Error(`no price for ${answeredModel}`);
  return costOf({ ...emptyUsage(), input_tokens: billed.input_tokens, cached_input_tokens: billed.cached_input_tokens, output_tokens: billed.output_tokens }, price.price, {
    batchDiscount: prices.batch_discount,
  }).total;
}

describe('compareModels', () => {
  it('runs the first N requests through each model and writes its results, compare.md and compare.json beside the input', async () => {
    const s = await simulator();
    const input = dir.file('questions.jsonl');
    await writeJsonl(input, [...Array.from({ length: 12 }, (_, i) => chatLine(i + 1)), 'not json']);

    const { comparison, exitCode } = await compareModels({ input, models: ['gpt-4o-mini', 'gpt-4.1-mini'], sampleSize: 5, ...connection(s) });

    expect(exitCode).toBe(0);
    expect(comparison.sample).toEqual({ size: 5, method: 'first', seed: null, file_requests: 12, file_problems: 1 });
    // Each model got the same five requests, whatever model the line named.
    expect(s.stats().billed['gpt-4o-mini-2024-07-18']?.requests).toBe(5);
    expect(s.stats().billed['gpt-4.1-mini-2025-04-14']?.requests).toBe(5);
    for (const [model, answered] of [
      ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18'],
      ['gpt-4.1-mini', 'gpt-4.1-mini-2025-04-14'],
    ] as const) {
      const figures = comparison.models.find((m) => m.model === model)!;
      const results = await readJsonl<ResultRecord>(dir.file(`questions.compare.${model}.results.jsonl`));
      // The input's own line numbers and custom_ids, so export and --resume work on the file.
      expect(results.map((r) => [r.line, r.custom_id]).sort()).toEqual([1, 2, 3, 4, 5].map((n) => [n, `line-${n}`]));
      expect(results.every((r) => (r.response.body as { model: string }).model === answered)).toBe(true);
      expect(existsSync(dir.file(`questions.compare.${model}.summary.json`))).toBe(true);

      const billed = s.stats().billed[answered]!;
      const cost = billedCostUsd(s, answered);
      expect(figures).toMatchObject({ requests: 5, succeeded: 5, failed: 0, pending: 0, success_rate: 1 });
      expect(figures.mean_input_tokens).toBeCloseTo(billed.input_tokens / 5, 2);
      expect(figures.mean_output_tokens).toBeCloseTo(billed.output_tokens / 5, 2);
      expect(figures.cost_per_1000_usd).toBeCloseTo((cost / 5) * 1000, 9);
      // Projected over the whole file's 12 requests (the bad line is not a request).
      expect(figures.projected_cost_usd).toBeCloseTo((cost / 5) * 12, 9);
      expect(figures.latency_ms?.p50).toBeGreaterThan(0);
      expect(figures.latency_ms?.p95).toBeGreaterThanOrEqual(figures.latency_ms?.p50 ?? Infinity);
    }
    // The first model is the reference; the simulator's answers differ by model.
    expect(comparison.models.map((m) => [m.model, m.agreement, m.agreement_compared])).toEqual([
      ['gpt-4o-mini', 1, 5],
      ['gpt-4.1-mini', 0, 5],
    ]);

    const saved = await readJson<Comparison>(dir.file('compare.json'));
    expect(saved).toEqual(JSON.parse(JSON.stringify(comparison)));
    const markdown = await readFileText(dir.file('compare.md'));
    expect(markdown).toContain('| model | success | mean input tokens | mean output tokens | USD per 1,000 requests | USD for all 12 requests | latency p50 | latency p95 | agrees with gpt-4o-mini |');
    expect(markdown).toMatch(/\| gpt-4\.1-mini \| 100\.0% \(5\/5\) \|.*\| 0\.0% of 5 \|/);
  });

  it('does not lose a slower model’s requests when a faster model sharing the limiter finishes first', async () => {
    // gpt-4.1-mini may send 2 requests a second; gpt-4o-mini is unthrottled and done long before.
    const s = await simulator({ limits: { 'gpt-4.1-mini': { rpm: 120 } } });
    const input = dir.file('q.jsonl');
    await writeJsonl(input, Array.from({ length: 6 }, (_, i) => chatLine(i + 1)));

    const { comparison, exitCode } = await compareModels({ input, models: ['gpt-4o-mini', 'gpt-4.1-mini'], ...connection(s) });

    expect(comparison.models.map((m) => [m.model, m.succeeded, m.pending])).toEqual([
      ['gpt-4o-mini', 6, 0],
      ['gpt-4.1-mini', 6, 0],
    ]);
    expect(exitCode).toBe(0);
  });

  it('refuses two models whose file names would collide, before sending anything', async () => {
    const s = await simulator();
    const input = dir.file('q.jsonl');
    await writeJsonl(input, [chatLine(1)]);

    await expect(compareModels({ input, models: ['ft:gpt-4o-mini:acme', 'ft_gpt-4o-mini_acme'], ...connection(s) })).rejects.toThrow(
      'would share the file names ft_gpt-4o-mini_acme.*',
    );
    expect(s.stats().requests).toBe(0);
  });

  it('says n/a for agreement on embeddings, which have no text', async () => {
    const s = await simulator();
    const input = dir.file('vectors.jsonl');
    await writeJsonl(
      input,
      ['alpha', 'beta', 'gamma'].map((word) => ({ model: 'text-embedding-3-small', input: `the word ${word}` })),
    );

    const { comparison } = await compareModels({
      input,
      endpoint: '/v1/embeddings',
      models: ['text-embedding-3-small', 'text-embedding-3-large'],
      ...connection(s),
    });

    expect(comparison.models.map((m) => [m.model, m.succeeded, m.agreement])).toEqual([
      ['text-embedding-3-small', 3, null],
      ['text-embedding-3-large', 3, null],
    ]);
    expect(comparison.models[1]!.mean_output_tokens).toBe(0);
    expect(await readFileText(dir.file('compare.md'))).toMatch(/\| text-embedding-3-large \|.*\| n\/a \|/);
  });
});

describe('drawSample', () => {
  async function input(lines: number): Promise<string> {
    const path = dir.file('many.jsonl');
    await writeJsonl(path, [...Array.from({ length: lines }, (_, i) => chatLine(i + 1)), '{"messages": []}']);
    return path;
  }

  it('draws the same distinct lines for the same seed, in line order, and other lines for another seed', async () => {
    const path = await input(200);
    const first = await drawSample({ input: path, seed: 7 }, 20);
    const again = await drawSample({ input: path, seed: 7 }, 20);
    const other = await drawSample({ input: path, seed: 8 }, 20);
    const lines = first.sample.map((item) => item.line);

    expect(lines).toEqual(again.sample.map((item) => item.line));
    expect(new Set(lines).size).toBe(20);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
    expect(lines).not.toEqual(other.sample.map((item) => item.line));
    // A uniform draw reaches past the first 20 lines.
    expect(Math.max(...lines)).toBeGreaterThan(20);
    expect(first.requests).toBe(200);
    expect(first.problems).toBe(1);
  });

  it('takes the first N requests without a seed, and every request when N is larger than the file', async () => {
    const path = await input(30);
    expect((await drawSample({ input: path }, 4)).sample.map((item) => item.line)).toEqual([1, 2, 3, 4]);
    expect((await drawSample({ input: path, seed: 1 }, 100)).sample).toHaveLength(30);
  });
});

describe('outputAgreement', () => {
  function result(customId: string, body: unknown): string {
    return JSON.stringify({ id: 'x', custom_id: customId, response: { status_code: 200, request_id: null, body }, error: null, line: 1, attempts: 1, latency_ms: 1, cost_usd: 0 });
  }
  const chat = (text: string): unknown => ({ object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: text } }] });
  const response = (text: string): unknown => ({ object: 'response', model: 'm', output: [{ type: 'message', content: [{ type: 'output_text', text }] }] });

  it('counts answers whose trimmed text is equal, over the requests both answered', async () => {
    const reference = dir.file('a.jsonl');
    const other = dir.file('b.jsonl');
    await writeFile(reference, [result('1', chat('Paris')), result('2', chat('four')), result('3', response('blue')), result('4', chat('only here'))].join('\n') + '\n');
    await writeFile(other, [result('3', response('  blue\n')), result('2', chat('4')), result('1', chat('Paris ')), result('5', chat('only there'))].join('\n') + '\n');

    expect(await outputAgreement(reference, other)).toEqual({ agreed: 2, compared: 3 });
  });
});

async function readFileText(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(path, 'utf8');
}

describe('oai-batch compare (CLI)', () => {
  it('prints the side-by-side table and exits 0 when every request succeeded', async () => {
    const s = await simulator();
    const input = dir.file('cli.jsonl');
    await writeJsonl(input, Array.from({ length: 4 }, (_, i) => chatLine(i + 1)));

    const run = await runCli(['compare', input, '--models', 'gpt-4o-mini,o4-mini', '--sample', '3', '--seed', '5', '--base-url', s.url, '--out-dir', dir.path], {
      env: { OPENAI_API_KEY: KEY },
    });

    expect(run.stderr).toContain('o4-mini: 3 succeeded, 0 failed, 0 pending');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('sample: 3 of 4 requests (seeded draw, seed 5)');
    expect(run.stdout).toMatch(/^o4-mini\s+100\.0% \(3\/3\)/m);
    expect(s.stats().requests).toBe(6);
    expect(existsSync(dir.file('compare.md'))).toBe(true);
  });

  it('refuses a model named twice with exit 1 before sending anything', async () => {
    const s = await simulator();
    const input = dir.file('cli.jsonl');
    await writeJsonl(input, [chatLine(1)]);

    const run = await runCli(['compare', input, '--models', 'gpt-4o-mini,gpt-4o-mini', '--base-url', s.url], { env: { OPENAI_API_KEY: KEY } });

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Expected `models` to name each model once, got `gpt-4o-mini` twice');
    expect(s.stats().requests).toBe(0);
  });
});

describe('compare: argv → options', () => {
  it('fills run’s defaults and splits the model list', () => {
    expect(optionsOf(compareCommand, ['compare', 'in.jsonl', '--models', 'gpt-4o-mini, gpt-4.1-mini', '--models', 'o4-mini'])).toMatchObject({
      scan: { input: 'in.jsonl', endpoint: '/v1/chat/completions' },
      models: ['gpt-4o-mini', 'gpt-4.1-mini', 'o4-mini'],
      sampleSize: 100,
      seed: undefined,
      outDir: undefined,
      connection: { simulate: false },
      concurrency: 512,
      timeoutMs: 120_000,
      maxAttempts: 6,
      headroom: 0.9,
      format: 'table',
    });
  });

  it('takes the sample, seed, output folder, connection and rate flags', () => {
    expect(
      optionsOf(
        compareCommand,
        ['compare', 'in.jsonl', '--models', 'a,b', '--sample', '20', '--seed', '0', '--out-dir', 'out', '--simulate', '--rpm', '60', '--tpm', '9000', '--concurrency', '4', '--timeout', '2.5', '--max-attempts', '2', '--prices', 'p.json'],
        { OPENAI_API_KEY: 'sk-x' },
      ),
    ).toMatchObject({ sampleSize: 20, seed: 0, outDir: 'out', connection: { simulate: true, apiKey: 'sk-x' }, rpm: 60, tpm: 9000, concurrency: 4, timeoutMs: 2500, maxAttempts: 2, pricesPath: 'p.json' });
  });

  it.each([
    [['compare', 'in.jsonl'], 'Missing required argument: models'],
    [['compare', 'in.jsonl', '--models', ' , '], 'Expected `models` to name at least one model'],
    [['compare', '-', '--models', 'a'], 'compare needs an input file (not stdin)'],
    [['compare', 'in.jsonl', '--models', 'a', '--sample', '0'], 'Expected `sample` to be an integer ≥ 1, got `0`'],
  ])('rejects %j', (argv, message) => {
    expect(() => optionsOf(compareCommand, argv)).toThrow(message);
  });
});
