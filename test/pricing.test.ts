import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emptyUsage, type Charge, type Usage } from '../src/shared/types.js';
import { ConfigError, InputError } from '../src/shared/errors.js';
import { costOf, worstCaseCostUsd } from '../src/pricing/cost.js';
import { billedTier, isVersionSuffix, resolvePrice, tierIsPriced, tierPrice, type ModelPrice, type PriceTable } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';

const table = loadPriceTable();

function usage(parts: Partial<Usage>): Usage {
  return { ...emptyUsage(), ...parts };
}

describe('the built-in table', () => {
  it('is dated, sourced and halves Batch API prices', () => {
    expect(table.as_of).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(table.source).toContain('https://');
    expect(table.batch_discount).toBe(0.5);
    expect(table.override_path).toBeNull();
  });

  it.each([
    'gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'gpt-5-chat-latest', 'gpt-5-pro', 'gpt-5.1', 'gpt-5.2', 'gpt-5.2-pro',
    'gpt-5.4', 'gpt-5.4-mini', 'gpt-5.4-nano', 'gpt-5.4-pro', 'gpt-5.5', 'gpt-5.5-pro',
    'gpt-5.6-sol', 'gpt-5.6-terra', 'gpt-5.6-luna', 'gpt-6-astra', 'gpt-6-sol', 'gpt-6-luna', 'gpt-6.1-sol',
    'gpt-6.2-astra', 'gpt-6.2-sol',
    'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'gpt-4o', 'gpt-4o-mini',
    'o1', 'o1-mini', 'o1-pro', 'o3', 'o3-mini', 'o3-pro', 'o4-mini',
    'text-embedding-3-small', 'text-embedding-3-large', 'text-embedding-ada-002', 'omni-moderation-latest',
    'gpt-4-turbo', 'gpt-4', 'gpt-3.5-turbo', 'gpt-3.5-turbo-instruct', 'davinci-002', 'babbage-002',
  ])('lists %s', (model) => {
    expect(resolvePrice(table, model)).toMatchObject({ name: model, match: 'exact' });
  });

  it('has sane prices for every model and tier', () => {
    for (const [name, price] of Object.entries(table.models)) {
      const tiers = [price, price.flex, price.priority, price.ultrafast].filter((t) => t !== undefined);
      for (const t of tiers) {
        for (const v of [t.input, t.cached_input, t.output]) expect(Number.isFinite(v) && v >= 0, name).toBe(true);
        expect(t.cached_input, `${name} cached ≤ input`).toBeLessThanOrEqual(t.input);
      }
      if (price.flex) expect(price.flex.input, `${name} flex is cheaper`).toBeLessThan(price.input);
      if (price.priority) expect(price.priority.input, `${name} priority costs more`).toBeGreaterThan(price.input);
    }
  });

  it.each([
    ['text-embedding-3-small', 0.02],
    ['text-embedding-3-large', 0.13],
    ['text-embedding-ada-002', 0.1],
  ])('prices embeddings %s on input only, with no cache discount', (model, input) => {
    expect(table.models[model]).toEqual({ input, cached_input: input, output: 0 });
  });

  it('prices moderation at zero', () => {
    expect(table.models['omni-moderation-latest']).toEqual({ input: 0, cached_input: 0, output: 0 });
  });

  it.each([
    ['gpt-4o-mini', { input: 0.15, cached_input: 0.075, output: 0.6 }],
    ['gpt-4o', { input: 2.5, cached_input: 1.25, output: 10 }],
    ['gpt-4.1', { input: 2, cached_input: 0.5, output: 8 }],
    ['gpt-5', { input: 1.25, cached_input: 0.125, output: 10 }],
    ['o3', { input: 2, cached_input: 0.5, output: 8 }],
    ['gpt-3.5-turbo', { input: 0.5, cached_input: 0.5, output: 1.5 }],
  ])('spot-checks the standard rates of %s', (model, rates) => {
    expect(table.models[model]).toMatchObject(rates);
  });
});

describe('resolvePrice', () => {
  it.each([
    // [model as answered, listed name, how]
    ['gpt-4o-mini', 'gpt-4o-mini', 'exact'],
    ['GPT-4o-Mini', 'gpt-4o-mini', 'exact'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini', 'prefix'],
    ['gpt-4o-2024-08-06', 'gpt-4o', 'prefix'],
    ['gpt-4o-2024-11-20', 'gpt-4o', 'prefix'],
    ['gpt-4o-2024-05-13', 'gpt-4o-2024-05-13', 'exact'],
    ['gpt-4.1-2025-04-14', 'gpt-4.1', 'prefix'],
    ['gpt-4.1-mini-2025-04-14', 'gpt-4.1-mini', 'prefix'],
    ['gpt-5-2025-08-07', 'gpt-5', 'prefix'],
    ['gpt-5-mini-2025-08-07', 'gpt-5-mini', 'prefix'],
    ['gpt-5.4-mini-2026-03-17', 'gpt-5.4-mini', 'prefix'],
    ['gpt-5.5-pro-2026-04-23', 'gpt-5.5-pro', 'prefix'],
    ['gpt-5.6-sol-2026-07-09', 'gpt-5.6-sol', 'prefix'],
    ['gpt-4-0613', 'gpt-4', 'prefix'],
    ['gpt-4-0125-preview', 'gpt-4-0125-preview', 'exact'],
    ['gpt-4-turbo-2024-04-09', 'gpt-4-turbo', 'prefix'],
    ['gpt-3.5-turbo-0125', 'gpt-3.5-turbo', 'prefix'],
    ['gpt-3.5-turbo-1106', 'gpt-3.5-turbo-1106', 'exact'],
    ['gpt-3.5-turbo-16k-0613', 'gpt-3.5-turbo-16k', 'prefix'],
    ['gpt-3.5-turbo-instruct-0914', 'gpt-3.5-turbo-instruct', 'prefix'],
    ['o1-2024-12-17', 'o1', 'prefix'],
    ['o1-mini-2024-09-12', 'o1-mini', 'prefix'],
    ['o1-pro-2025-03-19', 'o1-pro', 'prefix'],
    ['o3-2025-04-16', 'o3', 'prefix'],
    ['o3-pro-2025-06-10', 'o3-pro', 'prefix'],
    ['o3-deep-research-2025-06-26', 'o3-deep-research', 'prefix'],
    ['o4-mini-deep-research-2025-06-26', 'o4-mini-deep-research', 'prefix'],
    ['gpt-4.1-nano-2025-04-14', 'gpt-4.1-nano', 'prefix'],
    ['gpt-5-nano-2025-08-07', 'gpt-5-nano', 'prefix'],
    ['gpt-5.1-2025-11-13', 'gpt-5.1', 'prefix'],
    ['gpt-5.2-2025-12-11', 'gpt-5.2', 'prefix'],
    ['gpt-5.2-pro-2025-12-11', 'gpt-5.2-pro', 'prefix'],
    ['gpt-4-0314', 'gpt-4', 'prefix'],
    ['gpt-4-32k-0613', 'gpt-4-32k', 'prefix'],
    ['gpt-3.5-turbo-0613', 'gpt-3.5-turbo-0613', 'exact'],
    ['text-moderation-latest', 'text-moderation-latest', 'exact'],
    ['o3-mini-2025-01-31', 'o3-mini', 'prefix'],
    ['o4-mini-2025-04-16', 'o4-mini', 'prefix'],
    ['omni-moderation-2024-09-26', 'omni-moderation', 'prefix'],
    ['text-moderation-007', 'text-moderation', 'prefix'],
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', 'ft:gpt-4o-mini', 'prefix'],
    ['ft:gpt-4.1-2025-04-14:acme:support:xyz', 'ft:gpt-4.1', 'prefix'],
    ['ft:gpt-4.1-nano-2025-04-14:acme::q', 'ft:gpt-4.1-nano', 'prefix'],
    ['ft:gpt-5-mini-2025-08-07:acme::q', 'gpt-5-mini', 'fine_tune_base'],
  ])('%s → %s (%s)', (model, name, match) => {
    expect(resolvePrice(table, model)).toMatchObject({ name, match });
  });

  it.each([
    ['gpt-4oo', 'no dash after the listed name'],
    ['gpt-4o-audio-preview', 'an audio model is not its text sibling'],
    ['gpt-4o-audio-preview-2024-12-17', 'a dated audio model is not its text sibling either'],
    ['gpt-4o-mini-tts', 'text-to-speech is priced per audio token'],
    ['gpt-4o-realtime-preview-2024-12-17', 'realtime is priced per audio token'],
    ['gpt-4o-transcribe', 'transcription is priced per audio token'],
    ['gpt-4o-mini-mock', 'a proxy or mock model is not the model it is named after'],
    ['gpt-4o-mini-search-preview', 'search models have prices of their own'],
    ['gpt-4o-mini-search-preview-2025-03-11', 'a dated search model too'],
    ['gpt-4o-search-preview', 'gpt-4o search'],
    ['gpt-4-turbo-preview', 'a word, not a version, after the listed name'],
    ['gpt-4o-latest', '-latest is an alias, not a version'],
    ['gpt-4o-mini-v2', 'a letter-and-number tag is not a version'],
    ['gpt-4o-mini-2024', 'a year alone is not a date'],
    ['gpt-4o-mini-2024-13-01', 'no month 13'],
    ['gpt-4o-mini-2024-07-18-ft', 'something after the date'],
    ['gpt-4o-mini-1399', 'not a month and day'],
    ['gpt-4o-mini-12345', 'five digits'],
    ['gpt-5-mini-fast', 'a tier word is not a version'],
    ['o1-preview-2024-09-12', 'o1-preview is not o1'],
    ['o3-deep-research-mini', 'an unlisted sibling of a listed model'],
    ['text-embedding-3-small-custom', 'a custom embedding model'],
    ['gpt-image-1', 'not listed'],
    ['claude-opus-5-5', 'not an OpenAI model'],
    ['', 'empty'],
    ['ft:', 'a fine-tune without a base'],
    ['ft:unknown-base:acme::id', 'a fine-tune of an unlisted base'],
    ['ft:gpt-4o-mini-mock:acme::id', 'a fine-tune of an unlisted base named like a listed one'],
    ['constructor', 'an Object.prototype name'],
  ])('%s is unpriced (%s)', (model) => {
    expect(resolvePrice(table, model)).toBeNull();
  });

  it('resolves every listed model, and its dated and MMDD snapshots, to itself', () => {
    for (const name of Object.keys(table.models)) {
      expect(resolvePrice(table, name), name).toMatchObject({ name, match: 'exact' });
      for (const suffix of ['2025-08-07', '2024-12-17', '0125', '1106']) {
        const snapshot = `${name}-${suffix}`;
        if (Object.hasOwn(table.models, snapshot)) continue;
        expect(resolvePrice(table, snapshot), snapshot).toMatchObject({ name, match: 'prefix' });
      }
      // A word after a listed name never borrows its price (unless that longer name is listed itself).
      for (const word of ['mock', 'search-preview', 'latest', 'preview', 'tts']) {
        const other = `${name}-${word}`;
        if (!Object.hasOwn(table.models, other)) expect(resolvePrice(table, other), other).toBeNull();
      }
    }
  });

  it.each([
    ['2024-07-18', true],
    ['2026-12-31', true],
    ['0125', true],
    ['1106', true],
    ['0301', true],
    ['007', true],
    ['2024-00-18', false],
    ['2024-07-32', false],
    ['1301', false],
    ['0100', false],
    ['12345', false],
    ['07', false],
    ['latest', false],
    ['preview', false],
    ['v2', false],
    ['2024-07-18-preview', false],
    ['', false],
  ])('isVersionSuffix(%j) is %s', (suffix, want) => {
    expect(isVersionSuffix(suffix)).toBe(want);
  });

  it('picks the listed name the version suffix follows, not a shorter one', () => {
    const t = {
      models: {
        a: { input: 1, cached_input: 1, output: 1 },
        'a-b': { input: 2, cached_input: 2, output: 2 },
        'a-b-c': { input: 3, cached_input: 3, output: 3 },
      },
    };
    expect(resolvePrice(t, 'a-b-c-2025-01-01')?.name).toBe('a-b-c');
    expect(resolvePrice(t, 'a-b-0125')?.name).toBe('a-b');
    expect(resolvePrice(t, 'a-2025-01-01')?.name).toBe('a');
    expect(resolvePrice(t, 'a-b-d')).toBeNull();
    expect(resolvePrice(t, 'a-x')).toBeNull();
    expect(resolvePrice(t, 'ab')).toBeNull();
  });
});

describe('service tiers', () => {
  const price: ModelPrice = {
    input: 2,
    cached_input: 0.5,
    output: 8,
    flex: { input: 1, cached_input: 0.25, output: 4 },
    priority: { input: 3.5, cached_input: 0.875, output: 14 },
  };

  it.each([
    [null, 'standard', 2],
    [undefined, 'standard', 2],
    ['default', 'standard', 2],
    ['auto', 'standard', 2],
    ['scale', 'standard', 2],
    ['flex', 'flex', 1],
    ['priority', 'priority', 3.5],
    ['fast', 'priority', 3.5],
    ['FLEX', 'flex', 1],
    ['ultrafast', 'ultrafast', 2],
    ['turbo-max', null, 2],
  ])('service_tier %s bills as %s at input %d', (tier, billed, input) => {
    expect(billedTier(tier)).toBe(billed);
    expect(tierPrice(price, tier).input).toBe(input);
  });

  it('falls back to standard rates for a tier the model does not list, and says so', () => {
    const noTiers: ModelPrice = { input: 1, cached_input: 1, output: 2 };
    expect(tierPrice(noTiers, 'flex')).toBe(noTiers);
    expect(tierIsPriced(noTiers, 'flex')).toBe(false);
    expect(tierIsPriced(noTiers, 'default')).toBe(true);
    expect(tierIsPriced(price, 'priority')).toBe(true);
    expect(tierIsPriced(price, 'ultrafast')).toBe(false);
    expect(tierIsPriced(price, 'turbo-max')).toBe(false);
  });
});

describe('costOf', () => {
  const o3 = table.models.o3 as ModelPrice;
  const mini = table.models['gpt-4o-mini'] as ModelPrice;

  it.each([
    {
      name: 'uncached input and output',
      price: mini,
      usage: usage({ input_tokens: 1_000_000, output_tokens: 1_000_000 }),
      opts: {},
      want: { input: 0.15, cached_input: 0, output: 0.6, total: 0.75 },
    },
    {
      name: 'cached tokens are part of input and billed at the cached rate',
      price: mini,
      usage: usage({ input_tokens: 1000, cached_input_tokens: 600, output_tokens: 50 }),
      opts: {},
      // 400 × 0.15 + 600 × 0.075 + 50 × 0.6, per 1M
      want: { input: 0.00006, cached_input: 0.000045, output: 0.00003, total: 0.000135 },
    },
    {
      name: 'reasoning tokens are part of output and billed once',
      price: o3,
      usage: usage({ input_tokens: 200, output_tokens: 1500, reasoning_tokens: 1200 }),
      opts: {},
      want: { input: 0.0004, cached_input: 0, output: 0.012, total: 0.0124 },
    },
    {
      name: 'the Batch API halves everything',
      price: o3,
      usage: usage({ input_tokens: 1000, cached_input_tokens: 1000, output_tokens: 1000 }),
      opts: { batch: true },
      want: { input: 0, cached_input: 0.00025, output: 0.004, total: 0.00425 },
    },
    {
      name: 'flex rates',
      price: o3,
      usage: usage({ input_tokens: 3000, cached_input_tokens: 1000, output_tokens: 100 }),
      opts: { serviceTier: 'flex' },
      // 2000 × 1 + 1000 × 0.25 + 100 × 4
      want: { input: 0.002, cached_input: 0.00025, output: 0.0004, total: 0.00265 },
    },
    {
      name: 'priority rates, also when reported as "fast"',
      price: o3,
      usage: usage({ input_tokens: 3000, cached_input_tokens: 1000, output_tokens: 100 }),
      opts: { serviceTier: 'fast' },
      // 2000 × 3.5 + 1000 × 0.875 + 100 × 14
      want: { input: 0.007, cached_input: 0.000875, output: 0.0014, total: 0.009275 },
    },
    {
      name: 'flex and batch together',
      price: o3,
      usage: usage({ input_tokens: 1_000_000, output_tokens: 1_000_000 }),
      opts: { serviceTier: 'flex', batch: true },
      want: { input: 0.5, cached_input: 0, output: 2, total: 2.5 },
    },
    {
      name: 'a cached count above the input count is capped',
      price: mini,
      usage: usage({ input_tokens: 100, cached_input_tokens: 500 }),
      opts: {},
      want: { input: 0, cached_input: 0.0000075, output: 0, total: 0.0000075 },
    },
    {
      name: 'nothing used costs nothing',
      price: o3,
      usage: emptyUsage(),
      opts: {},
      want: { input: 0, cached_input: 0, output: 0, total: 0 },
    },
  ])('$name', ({ price, usage: u, opts, want }) => {
    const got = costOf(u, price, { batchDiscount: 0.5, ...opts });
    expect(got.input).toBeCloseTo(want.input, 12);
    expect(got.cached_input).toBeCloseTo(want.cached_input, 12);
    expect(got.output).toBeCloseTo(want.output, 12);
    expect(got.total).toBeCloseTo(want.total, 12);
  });

  it('audio tokens are priced as text of the same side (they are inside input/output)', () => {
    const withAudio = costOf(usage({ input_tokens: 1000, input_audio_tokens: 400, output_tokens: 10, output_audio_tokens: 5 }), mini, { batchDiscount: 0.5 });
    const without = costOf(usage({ input_tokens: 1000, output_tokens: 10 }), mini, { batchDiscount: 0.5 });
    expect(withAudio).toEqual(without);
  });

  describe('long context', () => {
    const gpt55 = table.models['gpt-5.5'] as ModelPrice;

    it.each([
      // [input tokens, multiplier applies]
      [272_000, false],
      [272_001, true],
    ])('a request with %d input tokens: long-context rates %s', (input, long) => {
      const got = costOf(usage({ input_tokens: input, output_tokens: 1000 }), gpt55, { batchDiscount: 0.5 });
      const inRate = long ? 10 : 5;
      const outRate = long ? 45 : 30;
      expect(got.input).toBeCloseTo((input * inRate) / 1e6, 12);
      expect(got.output).toBeCloseTo((1000 * outRate) / 1e6, 12);
    });

    it('applies on top of the tier and under the batch discount', () => {
      const u = usage({ input_tokens: 300_000, cached_input_tokens: 100_000, output_tokens: 10_000 });
      const got = costOf(u, gpt55, { batchDiscount: 0.5, batch: true, serviceTier: 'flex' });
      // flex 2.5 / 0.25 / 15, ×2 / ×2 / ×1.5, then × 0.5
      expect(got.total).toBeCloseTo(((200_000 * 5 + 100_000 * 0.5 + 10_000 * 22.5) / 1e6) * 0.5, 12);
    });

    it('can be forced off for totals over many short requests', () => {
      const u = usage({ input_tokens: 1_000_000, output_tokens: 0 });
      expect(costOf(u, gpt55, { batchDiscount: 0.5, longContext: false }).total).toBeCloseTo(5, 12);
      expect(costOf(u, gpt55, { batchDiscount: 0.5 }).total).toBeCloseTo(10, 12);
    });
  });
});

describe('cache writes', () => {
  const sol = table.models['gpt-5.6-sol'] as ModelPrice;
  const mini = table.models['gpt-4o-mini'] as ModelPrice;

  it('lists a cache-write rate of 1.25 × input in every tier for GPT-5.6 and later, and none for older models', () => {
    const later = Object.keys(table.models).filter((name) => /^gpt-(5\.6|6)/.test(name));
    expect(later.length).toBeGreaterThanOrEqual(10);
    for (const name of later) {
      const price = table.models[name] as ModelPrice;
      for (const tier of [price, price.flex, price.priority, price.ultrafast]) {
        if (tier) expect(tier.cache_write_input, name).toBeCloseTo(tier.input * 1.25, 12);
      }
    }
    for (const name of ['gpt-5.5', 'gpt-5.4', 'gpt-4o-mini', 'o3', 'text-embedding-3-small']) expect(table.models[name]?.cache_write_input, name).toBeUndefined();
  });

  it.each([
    {
      name: 'written tokens at the cache-write rate, apart from cached and uncached input',
      price: sol,
      usage: usage({ input_tokens: 3000, cached_input_tokens: 1024, cache_write_input_tokens: 1920, output_tokens: 10 }),
      opts: {},
      // 56 × 4 + 1024 × 0.4 + 1920 × 5 + 10 × 20, per 1M
      want: { input: 0.000224, cached_input: 0.0004096, cache_write_input: 0.0096, output: 0.0002 },
    },
    {
      name: 'at the tier’s cache-write rate',
      price: sol,
      usage: usage({ input_tokens: 2000, cache_write_input_tokens: 2000 }),
      opts: { serviceTier: 'priority' },
      want: { input: 0, cached_input: 0, cache_write_input: 0.025, output: 0 },
    },
    {
      name: 'halved by the Batch API',
      price: sol,
      usage: usage({ input_tokens: 2000, cache_write_input_tokens: 2000 }),
      opts: { batch: true },
      want: { input: 0, cached_input: 0, cache_write_input: 0.005, output: 0 },
    },
    {
      name: 'doubled with input under long context',
      price: sol,
      usage: usage({ input_tokens: 300_000, cache_write_input_tokens: 100_000 }),
      opts: {},
      want: { input: 1.6, cached_input: 0, cache_write_input: 1, output: 0 },
    },
    {
      name: 'at the input rate where the model lists no cache-write rate',
      price: mini,
      usage: usage({ input_tokens: 3000, cache_write_input_tokens: 2000 }),
      opts: {},
      want: { input: 0.00015, cached_input: 0, cache_write_input: 0.0003, output: 0 },
    },
    {
      name: 'a written count above what is left of the input is capped',
      price: sol,
      usage: usage({ input_tokens: 100, cached_input_tokens: 60, cache_write_input_tokens: 70 }),
      opts: {},
      want: { input: 0, cached_input: 0.000024, cache_write_input: 0.0002, output: 0 },
    },
  ])('$name', ({ price, usage: u, opts, want }) => {
    const got = costOf(u, price, { batchDiscount: 0.5, ...opts });
    expect(got.input).toBeCloseTo(want.input, 12);
    expect(got.cached_input).toBeCloseTo(want.cached_input, 12);
    expect(got.cache_write_input).toBeCloseTo(want.cache_write_input, 12);
    expect(got.output).toBeCloseTo(want.output, 12);
    expect(got.total).toBeCloseTo(want.input + want.cached_input + want.cache_write_input + want.output, 12);
  });

  it('costs the same as uncached input for a model without the column: no change for older models', () => {
    const written = costOf(usage({ input_tokens: 3000, cache_write_input_tokens: 2000, output_tokens: 5 }), mini, { batchDiscount: 0.5 });
    const plain = costOf(usage({ input_tokens: 3000, output_tokens: 5 }), mini, { batchDiscount: 0.5 });
    expect(written.total).toBeCloseTo(plain.total, 15);
  });

  it('puts every input token at the dearer cache-write rate in the worst case, so the cap holds', () => {
    const charge: Charge = { promptTokens: 2000, promptChars: 8000, inputTokens: 2000, maxOutputTokens: 100, outputTokens: 100, total: 2100 };
    expect(worstCaseCostUsd(charge, sol, { batchDiscount: 0.5 })).toBeCloseTo((2000 * 5 + 100 * 20) / 1e6, 12);
    const real = costOf(usage({ input_tokens: 2000, cache_write_input_tokens: 2000, output_tokens: 100 }), sol, { batchDiscount: 0.5 });
    expect(worstCaseCostUsd(charge, sol, { batchDiscount: 0.5 })).toBeGreaterThanOrEqual(real.total);
  });
});

describe('worstCaseCostUsd', () => {
  const charge = (inputTokens: number, outputTokens: number): Charge => ({
    promptTokens: inputTokens,
    promptChars: inputTokens * 4,
    inputTokens,
    maxOutputTokens: outputTokens,
    outputTokens,
    total: inputTokens + outputTokens,
  });
  const mini = table.models['gpt-4o-mini'] as ModelPrice;
  const o3 = table.models.o3 as ModelPrice;
  const gpt55 = table.models['gpt-5.5'] as ModelPrice;

  it.each([
    ['input at the uncached rate, output at the output rate', mini, charge(1000, 500), {}, (1000 * 0.15 + 500 * 0.6) / 1e6],
    ['at batch prices', mini, charge(1000, 500), { batch: true }, ((1000 * 0.15 + 500 * 0.6) / 1e6) * 0.5],
    ['at the requested tier', o3, charge(1000, 100), { serviceTier: 'priority' }, (1000 * 3.5 + 100 * 14) / 1e6],
    ['at long-context rates when the input alone crosses the threshold', gpt55, charge(300_000, 1000), {}, (300_000 * 10 + 1000 * 45) / 1e6],
  ] as const)('%s', (_name, price, c, opts, want) => {
    expect(worstCaseCostUsd(c, price, { batchDiscount: 0.5, ...opts })).toBeCloseTo(want, 12);
  });

  it('is never below the real cost of the same tokens', () => {
    const real = costOf(usage({ input_tokens: 1000, cached_input_tokens: 900, output_tokens: 500 }), mini, { batchDiscount: 0.5 });
    expect(worstCaseCostUsd(charge(1000, 500), mini, { batchDiscount: 0.5 })).toBeGreaterThan(real.total);
  });
});

describe('loadPriceTable with an override file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oaib-prices-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: unknown): string => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  it('replaces listed models, adds new ones and keeps the rest', () => {
    const path = write('ok.json', {
      as_of: '2026-12-01',
      source: 'our contract',
      models: {
        'gpt-4o-mini': { input: 0.1, cached_input: 0.05, output: 0.4 },
        'My-Proxy-Model': { input: 1, output: 3 },
      },
    });
    const t = loadPriceTable(path);
    expect(t.models['gpt-4o-mini']).toEqual({ input: 0.1, cached_input: 0.05, output: 0.4 });
    expect(t.models['my-proxy-model']).toEqual({ input: 1, cached_input: 1, output: 3 });
    expect(t.models['gpt-4o']).toEqual(table.models['gpt-4o']);
    expect(t.as_of).toBe('2026-12-01');
    expect(t.batch_discount).toBe(0.5);
    expect(t.override_path).toBe(path);
    expect(t.source).toContain('our contract');
    expect(t.source).toContain(`override ${path}`);
    expect(t.source).toContain(table.as_of);
    expect(resolvePrice(t, 'gpt-4o-mini-2024-07-18')?.price.input).toBe(0.1);
  });

  it('keeps the built-in date and takes the batch discount from a partial override', () => {
    const t = loadPriceTable(write('partial.json', { batch_discount: 0.4 }));
    expect(t.as_of).toBe(table.as_of);
    expect(t.batch_discount).toBe(0.4);
    expect(Object.keys(t.models).length).toBe(Object.keys(table.models).length);
  });

  it('accepts the sample override file', () => {
    const t = loadPriceTable(new URL('../samples/prices.json', import.meta.url).pathname);
    expect(t.models['my-proxy-model']).toBeDefined();
  });

  it('treats a model named like an Object.prototype member as a plain name', () => {
    const path = write('proto.json', '{"models": {"constructor": {"input": 1, "output": 1}, "__proto__": {"input": 9, "output": 9}}}');
    const t = loadPriceTable(path);
    expect(resolvePrice(t, 'constructor')?.price.input).toBe(1);
    expect(resolvePrice(t, 'toString')).toBeNull();
    expect(resolvePrice(t, '__proto__')).toBeNull(); // keys starting with _ are comments
    expect(Object.getPrototypeOf(t.models)).toBeNull();
  });

  it('names the path when the file is missing', () => {
    const path = join(dir, 'nope.json');
    expect(() => loadPriceTable(path)).toThrow(InputError);
    expect(() => loadPriceTable(path)).toThrow(`${path}: no such file`);
  });

  it('names the path when it is a directory', () => {
    const path = join(dir, 'sub');
    mkdirSync(path);
    expect(() => loadPriceTable(path)).toThrow(/is a directory/);
  });

  it.each([
    ['not JSON', '{"models": {', /is not valid JSON/],
    ['an array', [], /the top level must be a JSON object, got an array/],
    ['a negative price', { models: { m: { input: -1, output: 1 } } }, /models\["m"\]\.input must be a finite number ≥ 0, got -1/],
    ['a string price', { models: { m: { input: '0.1', output: 1 } } }, /models\["m"\]\.input must be a finite number ≥ 0, got "0.1"/],
    ['a missing output', { models: { m: { input: 1 } } }, /models\["m"\]\.output must be a finite number ≥ 0, got nothing/],
    ['a null price', { models: { m: { input: null, output: 1 } } }, /input must be a finite number ≥ 0, got null/],
    ['a misspelt field', { models: { m: { input: 1, outptu: 2, output: 2 } } }, /models\["m"\]\.outptu is not a known field/],
    ['a bad tier', { models: { m: { input: 1, output: 2, flex: { input: 1 } } } }, /models\["m"\]\.flex\.output must be/],
    ['a negative cache-write rate', { models: { m: { input: 1, output: 2, cache_write_input: -1 } } }, /models\["m"\]\.cache_write_input must be a finite number ≥ 0, got -1/],
    ['a string cache-write rate in a tier', { models: { m: { input: 1, output: 2, flex: { input: 1, output: 1, cache_write_input: 'x' } } } }, /models\["m"\]\.flex\.cache_write_input must be/],
    ['a tier that is not an object', { models: { m: { input: 1, output: 2, priority: 3 } } }, /priority must be an object, got 3/],
    ['a bad long_context', { models: { m: { input: 1, output: 2, long_context: { above_input_tokens: 0, input_multiplier: 2, output_multiplier: 1 } } } }, /above_input_tokens must be an integer ≥ 1, got 0/],
    ['a bad date', { as_of: '1 Dec 2026' }, /as_of must be a date "YYYY-MM-DD", got "1 Dec 2026"/],
    ['a discount above 1', { batch_discount: 1.5 }, /batch_discount must be a number from 0 to 1, got 1.5/],
    ['an unknown top-level field', { modles: {} }, /"modles" is not a known field/],
    ['models that is not an object', { models: [] }, /models must be an object, got an array/],
    ['an empty source', { source: ' ' }, /source must be a non-empty string/],
  ])('rejects %s with a ConfigError naming the path and the field', (name, content, message) => {
    const path = write(`${name.replace(/\W+/g, '_')}.json`, content);
    let error: unknown;
    try {
      loadPriceTable(path);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toMatch(message);
  });

  it('reads a cache-write rate, in a tier too, and leaves it absent where the file has none', () => {
    const t = loadPriceTable(
      write('writes.json', { models: { m: { input: 1, cache_write_input: 1.25, output: 2, flex: { input: 0.5, cache_write_input: 0.625, output: 1 } }, n: { input: 1, output: 2 } } }),
    );
    expect(t.models.m).toEqual({ input: 1, cached_input: 1, cache_write_input: 1.25, output: 2, flex: { input: 0.5, cached_input: 0.5, cache_write_input: 0.625, output: 1 } });
    expect(t.models.n).toEqual({ input: 1, cached_input: 1, output: 2 });
  });

  it('ignores comment keys starting with _', () => {
    const t = loadPriceTable(write('comments.json', { _note: 'x', models: { _also: 1, m: { input: 1, output: 1, _why: 'y' } } }));
    expect(t.models.m).toEqual({ input: 1, cached_input: 1, output: 1 });
    expect(t.models._also).toBeUndefined();
  });
});

describe('a hand-built table (no file)', () => {
  it('prices a table built in code the same way', () => {
    const t: PriceTable = {
      as_of: '2026-01-01',
      source: 'test',
      batch_discount: 0.5,
      models: { m: { input: 1, cached_input: 0.1, output: 2 } },
      override_path: null,
    };
    const r = resolvePrice(t, 'm-2026-01-01');
    expect(r?.name).toBe('m');
    expect(costOf(usage({ input_tokens: 10, cached_input_tokens: 5, output_tokens: 1 }), r!.price, { batchDiscount: 0.5 }).total)
      .toBeCloseTo((5 * 1 + 5 * 0.1 + 1 * 2) / 1e6, 12);
  });
});
