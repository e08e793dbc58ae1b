// Prompt-cache writes, end to end over real HTTP: the simulator reports
// `cache_write_tokens` for models that bill them (GPT-5.6 and later) on long
// prompts that missed the cache; the summary counts them apart from cached
// and uncached input, to the token of what the simulator billed, and prices
// them at the cache-write rate (1.25 × input), so the cost equals the billed
// tokens priced by the table; export has the column.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportResults } from '../src/commands/export.js';
import { runBatch } from '../src/pipeline/run.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';
import { billedUsd } from './support/billing.js';
import { readJsonl, tempDir, writeJsonl } from './support/files.js';

const prices = loadPriceTable();
const KEY = 'sk-cache-write-test';

/** About 1,500 tokens: long enough for the prompt cache (1,024 tokens and up). */
const LONG = Array.from({ length: 150 }, (_, i) => `Clause ${i}: the supplier delivers goods within ten days.`).join(' ');

function input(): unknown[] {
  const lines: unknown[] = [];
  for (let i = 0; i < 12; i++) {
    lines.push({ model: 'gpt-5.6-sol', messages: [{ role: 'system', content: LONG }, { role: 'user', content: `Summarise clause ${i}.` }], max_completion_tokens: 40 });
  }
  for (let i = 0; i < 8; i++) {
    lines.push({ custom_id: `r-${i}`, method: 'POST', url: '/v1/responses', body: { model: 'gpt-6-sol', input: `${LONG} Which clause matters most? (${i})`, max_output_tokens: 40 } });
  }
  for (let i = 0; i < 6; i++) {
    lines.push({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: LONG }, { role: 'user', content: `Clause ${i}?` }], max_tokens: 20 });
  }
  lines.push({ model: 'gpt-5.6-sol', messages: [{ role: 'user', content: 'A short question.' }], max_completion_tokens: 20 });
  return lines;
}

describe('cache-write tokens against the simulator', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let sim: Simulator;
  let summary: Summary;

  beforeAll(async () => {
    dir = await tempDir();
    sim = await startSimulator({ apiKey: KEY, latencyMs: 2 });
    await writeJsonl(dir.file('in.jsonl'), input());
    ({ summary } = await runBatch({
      input: dir.file('in.jsonl'),
      output: dir.file('in.results.jsonl'),
      errors: dir.file('in.errors.jsonl'),
      summary: dir.file('in.summary.json'),
      transport: { baseUrl: sim.url, apiKey: KEY },
      prices,
      concurrency: 8,
    }));
  });
  afterAll(async () => {
    await sim.close();
    await dir.remove();
  });

  it('counts the written tokens per model and overall, to the token of what the simulator billed', () => {
    expect(summary.requests).toMatchObject({ total: 27, succeeded: 27, failed: 0 });
    const billed = sim.stats().billed;
    expect(billed['gpt-5.6-sol']!.cache_write_input_tokens).toBeGreaterThan(0);
    expect(billed['gpt-5.6-sol']!.cached_input_tokens).toBeGreaterThan(0);
    expect(billed['gpt-6-sol']!.cache_write_input_tokens).toBeGreaterThan(0);
    expect(billed['gpt-4o-mini-2024-07-18']!.cache_write_input_tokens).toBe(0);
    for (const [model, b] of Object.entries(billed)) {
      const m = summary.by_model[model]!;
      expect([m.requests, m.input_tokens, m.cached_input_tokens, m.cache_write_input_tokens, m.output_tokens], model).toEqual([
        b.requests,
        b.input_tokens,
        b.cached_input_tokens,
        b.cache_write_input_tokens,
        b.output_tokens,
      ]);
    }
    expect(summary.usage.cache_write_input_tokens).toBe(Object.values(billed).reduce((n, b) => n + b.cache_write_input_tokens, 0));
  });

  it('prices them at the cache-write rate: the cost equals the billed tokens priced by the table, to 1e-9 USD', async () => {
    const billed = sim.stats().billed;
    for (const [model, b] of Object.entries(billed)) {
      expect(Math.abs((summary.by_model[model]!.cost_usd as number) - billedUsd(prices, model, b)), model).toBeLessThanOrEqual(1e-9);
    }
    const total = Object.entries(billed).reduce((sum, [model, b]) => sum + billedUsd(prices, model, b), 0);
    expect(Math.abs(summary.cost_usd.total - total)).toBeLessThanOrEqual(1e-9);
    // 1.25 × input on gpt-5.6-sol (5 per 1M) and gpt-6-sol (2.5 per 1M).
    const writes = (5 * billed['gpt-5.6-sol']!.cache_write_input_tokens + 2.5 * billed['gpt-6-sol']!.cache_write_input_tokens) / 1e6;
    expect(summary.cost_usd.cache_write_input).toBeCloseTo(writes, 9);
    const parts = summary.cost_usd.input + summary.cost_usd.cached_input + summary.cost_usd.cache_write_input + summary.cost_usd.output;
    expect(Math.abs(parts - summary.cost_usd.total)).toBeLessThanOrEqual(1e-6);
    const lines = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(Math.abs(lines.reduce((n, r) => n + (r.cost_usd as number), 0) - summary.cost_usd.total)).toBeLessThanOrEqual(1e-9);
  });

  it('exports the written tokens of each line', async () => {
    let text = '';
    await exportResults({ input: dir.file('in.jsonl'), results: dir.file('in.results.jsonl'), errors: null, format: 'jsonl' }, async (chunk) => {
      text += chunk;
    });
    const rows = text.trim().split('\n').map((line) => JSON.parse(line) as { cache_write_input_tokens: number | null });
    expect(rows).toHaveLength(27);
    expect(rows.reduce((n, r) => n + (r.cache_write_input_tokens ?? 0), 0)).toBe(summary.usage.cache_write_input_tokens);
  });
});
