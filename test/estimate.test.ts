// estimate: the bounds' arithmetic on planned requests, the time at limits,
// and the command's table and JSON. (That the max bound holds against a real
// run on the simulator is in cost-accuracy.test.ts.)

import { estimateCommand } from '../src/cli/estimate.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { chargeOf, DEFAULT_OUTPUT_TOKENS } from '../src/pipeline/plan/charge.js';
import { EstimateBuilder, estimateInput, learnedLimitsOf, type Estimate } from '../src/commands/estimate.js';
import { createPlanContext, isInputProblem, planRecord } from '../src/pipeline/plan.js';
import type { RequestItem } from '../src/shared/types.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { runCli } from './support/cli.js';
import { tempDir, writeJsonl } from './support/files.js';
import { optionsOf } from './support/argv.js';

const prices = loadPriceTable();
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.remove();
});

/** A line planned as run plans it. */
function item(line: Record<string, unknown>, n = 1): RequestItem {
  const planned = planRecord({ kind: 'text', line: n, text: JSON.stringify(line) }, createPlanContext('/v1/chat/completions', 1 << 20));
  if (isInputProblem(planned)) throw new Error(planned.message);
  return planned;
}

const chat = (model: string, content: string, limit?: number): Record<string, unknown> => ({
  model,
  messages: [{ role: 'user', content }],
  ...(limit === undefined ? {} : { max_tokens: limit }),
});

const report = { input: 'x.jsonl', lines: 0, valid: 0, problems: 0 };

describe('EstimateBuilder', () => {
  it('prices the exact prompt for min, half the output limit for expected and the budget cap’s worst case for max', () => {
    const builder = new EstimateBuilder({ prices });
    const request = item(chat('gpt-4o-mini', 'Hello there, how are you?', 100));
    builder.add(request);
    builder.add(item(chat('gpt-4o-mini', 'Hello there, how are you?', 100), 2));

    const m = builder.finish({ ...report, lines: 2, valid: 2 }).by_model['gpt-4o-mini']!;

    const prompt = request.charge.promptTokens; // 14: the chat framing included
    // gpt-4o-mini: $0.15 input, $0.60 output per 1M tokens.
    expect(m.requests).toBe(2);
    expect(m.prompt_tokens).toBe(2 * prompt);
    expect(m.output_tokens).toEqual({ min: 0, expected: 100, max: 200 });
    expect(m.cost_usd!.min).toBeCloseTo((2 * prompt * 0.15) / 1e6, 12);
    expect(m.cost_usd!.expected).toBeCloseTo((2 * prompt * 0.15 + 100 * 0.6) / 1e6, 12);
    expect(m.cost_usd!.max).toBeCloseTo((2 * request.charge.inputTokens * 0.15 + 200 * 0.6) / 1e6, 12);
    // The Batch API takes half off.
    expect(m.batch_cost_usd!.expected).toBeCloseTo(m.cost_usd!.expected / 2, 12);
    expect(m.batch_cost_usd!.max).toBeCloseTo(m.cost_usd!.max! / 2, 12);
    expect(m.priced_as).toBe('gpt-4o-mini');
  });

  it('reports max as unbounded when a request sets no output limit, and expects half the default allowance for it', () => {
    const builder = new EstimateBuilder({ prices });
    builder.add(item(chat('o4-mini', 'Think hard.')));
    builder.add(item(chat('o4-mini', 'Think a little.', 50), 2));

    const estimate = builder.finish({ ...report, valid: 2 });
    const m = estimate.by_model['o4-mini']!;

    expect(m.unbounded_requests).toBe(1);
    expect(m.output_tokens).toEqual({ min: 0, expected: DEFAULT_OUTPUT_TOKENS / 2 + 25, max: null });
    expect(m.cost_usd!.max).toBeNull();
    expect(m.batch_cost_usd!.max).toBeNull();
    expect(estimate.totals.cost_usd.max).toBeNull();
    expect(estimate.notes.join('\n')).toContain('1 request(s) set no output limit');
  });

  it('takes --expected-output-tokens per request, never above the request’s own limit', () => {
    const builder = new EstimateBuilder({ prices, expectedOutputTokens: 80 });
    builder.add(item(chat('gpt-4o-mini', 'a', 50)));
    builder.add(item(chat('gpt-4o-mini', 'b', 500), 2));
    builder.add(item(chat('gpt-4o-mini', 'c'), 3));

    expect(builder.finish(report).by_model['gpt-4o-mini']!.output_tokens.expected).toBe(50 + 80 + 80);
  });

  it('lists a model without a price instead of counting it as free, and leaves it out of the cost totals', () => {
    const builder = new EstimateBuilder({ prices });
    builder.add(item(chat('gpt-4o-mini', 'a', 10)));
    builder.add(item(chat('house-model-7', 'b', 10), 2));

    const estimate = builder.finish(report);

    expect(estimate.unpriced_models).toEqual(['house-model-7']);
    expect(estimate.by_model['house-model-7']!.cost_usd).toBeNull();
    expect(estimate.totals.cost_usd).toEqual(estimate.by_model['gpt-4o-mini']!.cost_usd);
    expect(estimate.totals.prompt_tokens).toBe(estimate.by_model['gpt-4o-mini']!.prompt_tokens + estimate.by_model['house-model-7']!.prompt_tokens);
  });

  it('counts embeddings as input only', () => {
    const builder = new EstimateBuilder({ prices });
    const planned = planRecord(
      { kind: 'text', line: 1, text: JSON.stringify({ model: 'text-embedding-3-small', input: 'one two three' }) },
      createPlanContext('/v1/embeddings', 1 << 20),
    ) as RequestItem;
    builder.add(planned);

    const m = builder.finish(report).by_model['text-embedding-3-small']!;

    expect(m.output_tokens).toEqual({ min: 0, expected: 0, max: 0 });
    expect(m.cost_usd!.max).toBeCloseTo((planned.charge.inputTokens * 0.02) / 1e6, 15);
  });

  it.each([
    { name: 'requests bind', limits: { rpm: 60 }, seconds: 30 },
    { name: 'tokens bind', limits: { rpm: 6000, tpm: 30 * chargeOf('/v1/chat/completions', chat('gpt-4o-mini', 'q', 100)).total }, seconds: 60 },
    { name: 'no limits known', limits: {}, seconds: null },
  ])('times 30 requests at the given limits: $name', ({ limits, seconds }) => {
    const builder = new EstimateBuilder({ prices, limits });
    for (let line = 1; line <= 30; line++) builder.add(item(chat('gpt-4o-mini', 'q', 100), line));

    const estimate = builder.finish(report);

    expect(estimate.by_model['gpt-4o-mini']!.time_seconds).toBe(seconds);
    expect(estimate.totals.time_seconds).toBe(seconds);
  });

  it('uses the limits an earlier run learned from headers for models the flags leave open', () => {
    const learned = learnedLimitsOf({
      limits: {
        'gpt-4o-mini': { rpm: 120, tpm: 1_000_000, source: 'headers' },
        'gpt-4.1-mini': { rpm: 5, tpm: 5, source: 'flags' },
      },
    });
    expect(learned).toEqual({ 'gpt-4o-mini': { rpm: 120, tpm: 1_000_000 } });

    const builder = new EstimateBuilder({ prices, learnedLimits: learned });
    for (let line = 1; line <= 60; line++) builder.add(item(chat('gpt-4o-mini', 'q', 10), line));
    builder.add(item(chat('gpt-4.1-mini', 'q', 10), 61));
    const estimate = builder.finish(report);

    expect(estimate.by_model['gpt-4o-mini']).toMatchObject({ time_seconds: 30, limits: { rpm: 120, tpm: 1_000_000, source: 'earlier_run' } });
    expect(estimate.by_model['gpt-4.1-mini']!.time_seconds).toBeNull();
    // One model's time unknown: the whole file's is too.
    expect(estimate.totals.time_seconds).toBeNull();
  });
});

describe('estimateInput', () => {
  it('estimates in the same pass that validates, counting bad lines apart', async () => {
    const input = dir.file('in.jsonl');
    await writeJsonl(input, [chat('gpt-4o-mini', 'a', 10), 'oops', chat('gpt-4o-mini', 'b', 10)]);

    const { estimate, report: validation } = await estimateInput({ input }, { prices });

    expect([estimate.lines, estimate.requests, estimate.problems]).toEqual([3, 2, 1]);
    expect(validation.problemCounts).toEqual({ invalid_json: 1 });
  });
});

describe('oai-batch estimate (CLI)', () => {
  it('prints JSON with --format json, timed at --rpm', async () => {
    const input = dir.file('in.jsonl');
    await writeJsonl(input, [
      ...Array.from({ length: 10 }, (_, i) => chat('gpt-4o-mini', `question ${i}`, 40)),
      chat('o4-mini', 'open-ended'),
    ]);

    const run = await runCli(['estimate', input, '--format', 'json', '--rpm', '20', '--expected-output-tokens', '30']);

    expect(run.code).toBe(0);
    const estimate = JSON.parse(run.stdout) as Estimate;
    expect(estimate.by_model['gpt-4o-mini']).toMatchObject({ requests: 10, output_tokens: { min: 0, expected: 300, max: 400 }, time_seconds: 30 });
    expect(estimate.by_model['o4-mini']!.cost_usd!.max).toBeNull();
    expect(estimate.totals.time_seconds).toBe(30);
  });

  it('prints a table that shows an unbounded max in words and reads --prices overrides', async () => {
    const input = dir.file('in.jsonl');
    await writeJsonl(input, [chat('house-model-7', 'a', 1000), chat('o4-mini', 'b')]);
    const pricesFile = dir.file('prices.json');
    await writeFile(pricesFile, JSON.stringify({ models: { 'house-model-7': { input: 1, output: 2 } } }));

    const run = await runCli(['estimate', input, '--prices', pricesFile]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${input}: 2 requests in 2 lines`);
    // 1,000 output tokens at $2/1M: max $0.00200 plus the prompt.
    expect(run.stdout).toMatch(/^house-model-7\s+1\s+\d+\s+0 \/ 500 \/ 1,000\s+0\.\d+ \/ 0\.001\d+ \/ 0\.002\d+/m);
    expect(run.stdout).toMatch(/^o4-mini\s+1\s+\d+\s+0 \/ 2,048 \/ unbounded\s+\S+ \/ \S+ \/ unbounded/m);
    expect(run.stdout).toContain('time needs rate limits: give --rpm and/or --tpm');
  });
});

describe('estimate: argv → options', () => {
  it.each([
    [
      ['estimate', 'data/in.jsonl.gz'],
      {
        scan: { input: 'data/in.jsonl.gz', endpoint: '/v1/chat/completions', maxLineBytes: 8 * 1024 * 1024 },
        format: 'table',
        expectedOutputTokens: undefined,
        limits: { rpm: undefined, tpm: undefined },
        pricesPath: undefined,
        summaryPath: 'data/in.summary.json',
      },
    ],
    [
      ['estimate', '-', '--format', 'json', '--expected-output-tokens', '0', '--rpm', '500', '--tpm', '200000', '--prices', 'p.json'],
      {
        scan: { input: '-', endpoint: '/v1/chat/completions', maxLineBytes: 8 * 1024 * 1024 },
        format: 'json',
        expectedOutputTokens: 0,
        limits: { rpm: 500, tpm: 200_000 },
        pricesPath: 'p.json',
        summaryPath: undefined,
      },
    ],
  ])('%j', (argv, expected) => {
    expect(optionsOf(estimateCommand, argv)).toEqual(expected);
  });

  it.each([
    [['estimate', 'in.jsonl', '--expected-output-tokens', '1.5'], 'Expected `expected-output-tokens` to be an integer ≥ 0, got `1.5`'],
    [['estimate', 'in.jsonl', '--rpm', '0'], 'Expected `rpm` to be a number ≥ 1, got `0`'],
  ])('rejects %j', (argv, message) => {
    expect(() => optionsOf(estimateCommand, argv)).toThrow(message);
  });
});
