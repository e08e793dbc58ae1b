import { describe, expect, it } from 'vitest';
import { emptyUsage, type Usage } from '../src/shared/types.js';
import { CostLedger } from '../src/pricing/ledger.js';
import { type PriceTable } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';

const table = loadPriceTable();

function usage(parts: Partial<Usage>): Usage {
  return { ...emptyUsage(), ...parts };
}

/**
 * A small run, priced by hand (USD per 1M tokens from pricing.json):
 * gpt-4o-mini 0.15 / 0.075 / 0.60; o3 flex 1 / 0.25 / 4, priority 3.5 / 0.875 / 14;
 * gpt-5.5 5 / 0.5 / 30, long context (> 272K input) ×2 input, ×1.5 output.
 */
function smallRun(): CostLedger {
  const ledger = new CostLedger(table);
  // gpt-4o-mini, online: input 3000 (1024 cached), output 500.
  ledger.add('gpt-4o-mini-2024-07-18', usage({ input_tokens: 1000, output_tokens: 200 }), { serviceTier: 'default' });
  ledger.add('gpt-4o-mini-2024-07-18', usage({ input_tokens: 2000, cached_input_tokens: 1024, output_tokens: 300 }));
  // gpt-4o-mini through the Batch API: input 500, output 100, half price.
  ledger.add('gpt-4o-mini-2024-07-18', usage({ input_tokens: 500, output_tokens: 100 }), { batch: true });
  // o3 at flex, then at Fast mode (reported as "fast", billed as priority).
  ledger.add('o3-2025-04-16', usage({ input_tokens: 10_000, cached_input_tokens: 2000, output_tokens: 5000, reasoning_tokens: 4000 }), { serviceTier: 'flex' });
  ledger.add('o3-2025-04-16', usage({ input_tokens: 1000, output_tokens: 100 }), { serviceTier: 'fast' });
  // A model with no price.
  ledger.add('my-model', usage({ input_tokens: 50, output_tokens: 60 }));
  // gpt-5.5: one long-context request, one short one.
  ledger.add('gpt-5.5', usage({ input_tokens: 300_000, output_tokens: 1000 }));
  ledger.add('gpt-5.5', usage({ input_tokens: 1000, output_tokens: 100 }));
  return ledger;
}

describe('CostLedger', () => {
  it('prices each model from its integer totals', () => {
    const byModel = smallRun().byModel();
    expect(Object.keys(byModel).sort()).toEqual(['gpt-4o-mini-2024-07-18', 'gpt-5.5', 'my-model', 'o3-2025-04-16']);

    expect(byModel['gpt-4o-mini-2024-07-18']).toMatchObject({
      requests: 3,
      input_tokens: 3500,
      cached_input_tokens: 1024,
      output_tokens: 600,
      reasoning_tokens: 0,
    });
    // online (1976 × 0.15 + 1024 × 0.075 + 500 × 0.6) + batch (500 × 0.15 + 100 × 0.6) × 0.5
    expect(byModel['gpt-4o-mini-2024-07-18']?.cost_usd).toBeCloseTo((296.4 + 76.8 + 300 + 67.5) / 1e6, 12);

    expect(byModel['o3-2025-04-16']).toMatchObject({ requests: 2, input_tokens: 11_000, reasoning_tokens: 4000 });
    // flex 8000 × 1 + 2000 × 0.25 + 5000 × 4; priority 1000 × 3.5 + 100 × 14
    expect(byModel['o3-2025-04-16']?.cost_usd).toBeCloseTo((28_500 + 4900) / 1e6, 12);

    // long: 300000 × 10 + 1000 × 45; short: 1000 × 5 + 100 × 30 (not 301000 tokens all at long rates)
    expect(byModel['gpt-5.5']?.cost_usd).toBeCloseTo((3_045_000 + 8000) / 1e6, 12);

    expect(byModel['my-model']).toEqual({
      requests: 1,
      input_tokens: 50,
      cached_input_tokens: 0,
      cache_write_input_tokens: 0,
      output_tokens: 60,
      reasoning_tokens: 0,
      input_audio_tokens: 0,
      output_audio_tokens: 0,
      cost_usd: null,
    });
  });

  it('totals every model’s tokens but only priced models’ cost, listing the unpriced ones', () => {
    const totals = smallRun().totals();
    expect(totals.usage).toEqual(
      usage({ input_tokens: 315_550, cached_input_tokens: 3024, output_tokens: 6860, reasoning_tokens: 4000 }),
    );
    expect(totals.unpriced_models).toEqual(['my-model']);
    expect(totals.cost_usd.input).toBeCloseTo(3.0168339, 12);
    expect(totals.cost_usd.cached_input).toBeCloseTo(0.0005768, 12);
    expect(totals.cost_usd.output).toBeCloseTo(0.06973, 12);
    expect(totals.cost_usd.total).toBeCloseTo(3.0871407, 12);
    expect(totals.cost_usd.total).toBe(totals.cost_usd.input + totals.cost_usd.cached_input + totals.cost_usd.output);
  });

  it('sums by model to the overall total', () => {
    const ledger = smallRun();
    const sum = Object.values(ledger.byModel()).reduce((s, m) => s + (m.cost_usd ?? 0), 0);
    expect(sum).toBeCloseTo(ledger.totals().cost_usd.total, 12);
  });

  it.each([
    ['a cached request', 'gpt-4o-mini', usage({ input_tokens: 2000, cached_input_tokens: 1024, output_tokens: 300 }), {}, (976 * 0.15 + 1024 * 0.075 + 300 * 0.6) / 1e6],
    ['a batch request', 'gpt-4o-mini', usage({ input_tokens: 500, output_tokens: 100 }), { batch: true }, 67.5 / 1e6],
    ['a flex request', 'o3', usage({ input_tokens: 1000, output_tokens: 1000 }), { serviceTier: 'flex' }, 5000 / 1e6],
    ['a long-context request', 'gpt-5.5', usage({ input_tokens: 300_000, output_tokens: 1000 }), {}, 3.045],
    ['an embedding', 'text-embedding-3-small', usage({ input_tokens: 1_000_000 }), {}, 0.02],
    ['a moderation', 'omni-moderation-latest', usage({}), {}, 0],
  ] as const)('gives the line cost of %s', (_name, model, u, opts, want) => {
    expect(new CostLedger(table).lineCostUsd(model, u, opts)).toBeCloseTo(want, 12);
  });

  it('sums cache-write tokens by model and overall and prices them at the cache-write rate', () => {
    const ledger = new CostLedger(table);
    // gpt-5.6-sol 4 / 0.4 / cache write 5 / 20
    ledger.add('gpt-5.6-sol-2026-07-09', usage({ input_tokens: 3000, cache_write_input_tokens: 2048, output_tokens: 10 }));
    ledger.add('gpt-5.6-sol-2026-07-09', usage({ input_tokens: 3000, cached_input_tokens: 2048, output_tokens: 10 }));
    ledger.add('gpt-4o-mini-2024-07-18', usage({ input_tokens: 1500, cache_write_input_tokens: 1024, output_tokens: 5 }));

    const totals = ledger.totals();
    expect(totals.usage.cache_write_input_tokens).toBe(3072);
    expect(ledger.byModel()['gpt-5.6-sol-2026-07-09']).toMatchObject({ input_tokens: 6000, cached_input_tokens: 2048, cache_write_input_tokens: 2048 });
    expect(totals.cost_usd.cache_write_input).toBeCloseTo((2048 * 5 + 1024 * 0.15) / 1e6, 12);
    expect(totals.cost_usd.input).toBeCloseTo(((952 + 952) * 4 + 476 * 0.15) / 1e6, 12);
    expect(totals.cost_usd.total).toBeCloseTo(
      totals.cost_usd.input + totals.cost_usd.cached_input + totals.cost_usd.cache_write_input + totals.cost_usd.output,
      15,
    );
    expect(ledger.lineCostUsd('gpt-5.6-sol-2026-07-09', usage({ input_tokens: 3000, cache_write_input_tokens: 2048, output_tokens: 10 }))).toBeCloseTo(
      (952 * 4 + 2048 * 5 + 10 * 20) / 1e6,
      12,
    );
  });

  it('gives no line cost for an unpriced model', () => {
    expect(new CostLedger(table).lineCostUsd('my-model', usage({ input_tokens: 5 }))).toBeNull();
  });

  it('matches the bill to the token where per-line rounding would drift', () => {
    // 1000 requests of 1 input token at 0.15/1M: each line rounds to 0 at 6 decimals, the total does not.
    const ledger = new CostLedger(table);
    for (let i = 0; i < 1000; i++) ledger.add('gpt-4o-mini', usage({ input_tokens: 1 }));
    expect(ledger.totals().cost_usd.total).toBeCloseTo(0.00015, 15);
    expect(ledger.byModel()['gpt-4o-mini']?.input_tokens).toBe(1000);
  });

  it('warns once per caveat', () => {
    const ledger = new CostLedger(table);
    ledger.add('ft:gpt-5-mini-2025-08-07:acme::abc', usage({ input_tokens: 1 }));
    ledger.add('ft:gpt-5-mini-2025-08-07:acme::abc', usage({ input_tokens: 1 }));
    ledger.add('gpt-4o-mini', usage({ input_tokens: 1 }), { serviceTier: 'flex' });
    ledger.add('gpt-4o-mini', usage({ input_tokens: 1 }), { serviceTier: 'warp' });
    ledger.add('gpt-4o', usage({ input_tokens: 10, input_audio_tokens: 4 }));
    ledger.add('gpt-4o', usage({ input_tokens: 10, input_audio_tokens: 4 }));
    ledger.add('my-model', usage({ input_tokens: 1 }), { serviceTier: 'warp' });
    expect(ledger.warnings()).toEqual([
      expect.stringMatching(/^ft:gpt-5-mini-2025-08-07:acme::abc has no fine-tune price listed and is priced at gpt-5-mini base-model rates/),
      'gpt-4o-mini answered with service_tier "flex" but gpt-4o-mini lists no flex price; priced at standard rates',
      'gpt-4o-mini answered with unknown service_tier "warp"; priced at standard rates',
      "gpt-4o reported audio tokens; they are priced at gpt-4o's text rates",
    ]);
  });

  it('keeps "fast" and "priority" in one bucket and prices them alike', () => {
    const a = new CostLedger(table);
    a.add('o3', usage({ input_tokens: 100 }), { serviceTier: 'fast' });
    a.add('o3', usage({ input_tokens: 100 }), { serviceTier: 'priority' });
    const b = new CostLedger(table);
    b.add('o3', usage({ input_tokens: 200 }), { serviceTier: 'priority' });
    expect(a.totals().cost_usd.total).toBe(b.totals().cost_usd.total);
  });

  it('uses the table it was built with, override included', () => {
    const custom: PriceTable = {
      as_of: '2026-01-01',
      source: 'test',
      batch_discount: 0.25,
      models: { m: { input: 4, cached_input: 4, output: 8 } },
      override_path: null,
    };
    const ledger = new CostLedger(custom);
    ledger.add('m-2026-01-01', usage({ input_tokens: 1_000_000 }), { batch: true });
    expect(ledger.totals().cost_usd.total).toBeCloseTo(3, 12);
  });

  it('adds 100,000 answers across models, tiers and the Batch API to exact integer totals', () => {
    const ledger = new CostLedger(table);
    const u = usage({ input_tokens: 1200, cached_input_tokens: 1024, output_tokens: 300, reasoning_tokens: 100 });
    const models = ['gpt-4o-mini-2024-07-18', 'gpt-5.4-mini', 'o4-mini-2025-04-16', 'unlisted-model'];
    for (let i = 0; i < 100_000; i++) {
      const model = models[i % models.length] as string;
      ledger.add(model, u, { serviceTier: i % 3 === 0 ? 'flex' : 'default', batch: i % 2 === 0 });
      ledger.lineCostUsd(model, u);
    }
    expect(ledger.totals().usage.input_tokens).toBe(120_000_000);
    expect(ledger.totals().usage.output_tokens).toBe(30_000_000);
    // Its speed (~3 µs a call) is part of what bench/run.js measures end to end, not asserted here.
  });
});
