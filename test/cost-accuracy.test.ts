// Cost accuracy (issue 5's done-when figures), over real HTTP to the simulator:
// - on a mixed-model run the summary's tokens equal what the simulator billed,
//   to the token, and its cost equals those tokens priced by the table, to 1e-9 USD;
// - estimate's max bound is at or above the real cost of the same file;
// - a --max-cost run under concurrency stops with exit 3 and real spend at or
//   under the cap, and --resume continues it;
// - an unpriced model under --max-cost is exit 1 before anything is sent.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { estimateInput, type Estimate } from '../src/commands/estimate.js';
import { runBatch } from '../src/pipeline/run.js';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import { resolvePrice } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { startSimulator, type BilledTotals, type Simulator } from '../src/sim/server.js';
import { billedUsd } from './support/billing.js';
import { runCli } from './support/cli.js';
import { readJson, readJsonl, tempDir, writeJsonl } from './support/files.js';

const prices = loadPriceTable();
const KEY = 'sk-cost-accuracy-key';

/** The table's price of billed tokens (none of these models has long-context rates). */
function pricedUsd(model: string, billed: BilledTotals): number {
  expect(resolvePrice(prices, model)?.price.long_context).toBeUndefined();
  return billedUsd(prices, model, billed);
}

function billedSpendUsd(sim: Simulator): number {
  return Object.entries(sim.stats().billed).reduce((sum, [model, billed]) => sum + pricedUsd(model, billed), 0);
}

/** About 1,500 tokens: long enough for the prompt cache (1,024 tokens and up). */
const LONG_CONTEXT = Array.from({ length: 150 }, (_, i) => `Clause ${i}: the supplier delivers goods within ten days.`).join(' ');

function mixedInput(): unknown[] {
  const lines: unknown[] = [];
  for (let i = 0; i < 10; i++) {
    lines.push({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Name a colour, number ${i}.` }], max_tokens: 60 });
  }
  for (let i = 0; i < 8; i++) {
    lines.push({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: LONG_CONTEXT },
        { role: 'user', content: `Summarise clause ${i}.` },
      ],
      max_tokens: 40,
    });
  }
  for (let i = 0; i < 8; i++) {
    lines.push({ model: 'o4-mini', messages: [{ role: 'user', content: `Prove that ${i} + 1 > ${i}.` }], max_completion_tokens: 200 });
  }
  for (let i = 0; i < 6; i++) {
    lines.push({
      custom_id: `resp-${i}`,
      method: 'POST',
      url: '/v1/responses',
      body: { model: 'gpt-5-mini', input: i < 3 ? `${LONG_CONTEXT} Which clause matters most? (${i})` : `Say hello ${i}.`, max_output_tokens: 150 },
    });
  }
  for (let i = 0; i < 6; i++) {
    lines.push({ custom_id: `emb-${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: `document number ${i} about invoices` } });
  }
  for (let i = 0; i < 4; i++) {
    lines.push({ custom_id: `cmpl-${i}`, method: 'POST', url: '/v1/completions', body: { model: 'gpt-3.5-turbo-instruct', prompt: `Once upon a time ${i}`, max_tokens: 30 } });
  }
  return lines;
}

describe('a mixed-model run against the simulator', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let sim: Simulator;
  let summary: Summary;
  let estimate: Estimate;

  beforeAll(async () => {
    dir = await tempDir();
    sim = await startSimulator({ apiKey: KEY, latencyMs: 5 });
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, mixedInput());
    ({ estimate } = await estimateInput({ input }, { prices }));
    ({ summary } = await runBatch({
      input,
      output: dir.file('mixed.results.jsonl'),
      errors: dir.file('mixed.errors.jsonl'),
      summary: dir.file('mixed.summary.json'),
      transport: { baseUrl: sim.url, apiKey: KEY },
      prices,
      concurrency: 16,
      timeoutMs: 10_000,
    }));
  });
  afterAll(async () => {
    await sim.close();
    await dir.remove();
  });

  it('succeeded on every line, with cached and reasoning tokens among them', () => {
    expect(summary.requests).toMatchObject({ total: 42, succeeded: 42, failed: 0, pending: 0 });
    expect(summary.usage.cached_input_tokens).toBeGreaterThan(0);
    expect(summary.usage.reasoning_tokens).toBeGreaterThan(0);
    expect(summary.unpriced_models).toEqual([]);
  });

  it('reports per model exactly the tokens the simulator billed', () => {
    const billed = sim.stats().billed;
    expect(Object.keys(summary.by_model).sort()).toEqual(Object.keys(billed).sort());
    for (const [model, b] of Object.entries(billed)) {
      const m = summary.by_model[model]!;
      expect([m.requests, m.input_tokens, m.cached_input_tokens, m.output_tokens, m.reasoning_tokens], model).toEqual([
        b.requests,
        b.input_tokens,
        b.cached_input_tokens,
        b.output_tokens,
        b.reasoning_tokens,
      ]);
    }
    const sum = (key: keyof BilledTotals): number => Object.values(billed).reduce((n, b) => n + b[key], 0);
    expect(summary.usage).toMatchObject({
      input_tokens: sum('input_tokens'),
      cached_input_tokens: sum('cached_input_tokens'),
      output_tokens: sum('output_tokens'),
      reasoning_tokens: sum('reasoning_tokens'),
    });
  });

  it('costs exactly the billed tokens priced by the table, per model and in total, to 1e-9 USD', async () => {
    const billed = sim.stats().billed;
    for (const [model, b] of Object.entries(billed)) {
      expect(Math.abs((summary.by_model[model]!.cost_usd as number) - pricedUsd(model, b)), model).toBeLessThanOrEqual(1e-9);
    }
    expect(Math.abs(summary.cost_usd.total - billedSpendUsd(sim))).toBeLessThanOrEqual(1e-9);
    // Each line's own cost adds up to the same bill.
    const lines = await readJsonl<ResultRecord>(dir.file('mixed.results.jsonl'));
    expect(Math.abs(lines.reduce((n, r) => n + (r.cost_usd as number), 0) - summary.cost_usd.total)).toBeLessThanOrEqual(1e-9);
  });

  it('was estimated beforehand with the exact prompt tokens and a max at or above the real cost', () => {
    const billedInput = Object.values(sim.stats().billed).reduce((n, b) => n + b.input_tokens, 0);
    expect(estimate.totals.prompt_tokens).toBe(billedInput);
    expect(estimate.totals.cost_usd.max).not.toBeNull();
    expect(estimate.totals.cost_usd.max!).toBeGreaterThanOrEqual(summary.cost_usd.total);
    for (const [model, m] of Object.entries(estimate.by_model)) {
      const answered = Object.keys(summary.by_model).find((name) => name === model || name.startsWith(`${model}-`))!;
      expect(m.cost_usd!.max!, model).toBeGreaterThanOrEqual(summary.by_model[answered]!.cost_usd as number);
    }
  });
});

describe('--max-cost (CLI child process)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let sim: Simulator;

  beforeEach(async () => {
    dir = await tempDir();
    sim = await startSimulator({ apiKey: KEY, latencyMs: 60 });
  });
  afterEach(async () => {
    await sim.close();
    await dir.remove();
  });

  const lines = Array.from({ length: 120 }, (_, i) => ({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: `Write a long story about the number ${i}.` }],
    max_tokens: 400,
  }));

  it('stops under concurrency with exit 3 and real spend at or under the cap, and --resume finishes the rest', async () => {
    const input = dir.file('stories.jsonl');
    await writeJsonl(input, lines);
    const { estimate } = await estimateInput({ input }, { prices });
    // About a third of the file's worst case: the run must stop part-way.
    const capUsd = Number(((estimate.totals.cost_usd.max as number) / 3).toFixed(6));
    const env = { OPENAI_API_KEY: KEY };

    const first = await runCli(['run', input, '--base-url', sim.url, '--max-cost', String(capUsd), '--concurrency', '24', '--quiet'], { env });

    expect(first.stderr).toBe('');
    expect(first.code).toBe(3);
    const stopped = await readJson<Summary>(dir.file('stories.summary.json'));
    expect(stopped.stopped_reason).toBe('max_cost');
    expect(stopped.requests.pending).toBeGreaterThan(0);
    const spentUsd = billedSpendUsd(sim);
    expect(spentUsd).toBeLessThanOrEqual(capUsd);
    expect(Math.abs(stopped.cost_usd.total - spentUsd)).toBeLessThanOrEqual(1e-9);
    // More requests ran at once than one: the cap held under concurrency.
    expect(sim.stats().maxInFlight).toBeGreaterThan(1);

    const resumed = await runCli(['run', input, '--base-url', sim.url, '--resume', '--max-cost', '1', '--concurrency', '24', '--quiet'], { env });

    expect(resumed.code).toBe(0);
    const done = await readJson<Summary>(dir.file('stories.summary.json'));
    expect(done.requests).toMatchObject({ total: 120, succeeded: 120, pending: 0 });
    expect(done.requests.skipped).toBe(stopped.requests.succeeded);
    expect(done.stopped_reason).toBeNull();
    // Nothing was paid twice, and the whole file's summary is the whole bill.
    expect(sim.stats().duplicates).toBe(0);
    expect(sim.stats().billed['gpt-4o-mini-2024-07-18']?.requests).toBe(120);
    expect(Math.abs(done.cost_usd.total - billedSpendUsd(sim))).toBeLessThanOrEqual(1e-9);
  });

  it('refuses an unpriced model with exit 1 before anything is sent', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, [lines[0], { model: 'house-model-7', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }]);

    const run = await runCli(['run', input, '--base-url', sim.url, '--max-cost', '5', '--quiet'], { env: { OPENAI_API_KEY: KEY } });

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('house-model-7 has none');
    expect(sim.stats().requests).toBe(0);
  });
});
