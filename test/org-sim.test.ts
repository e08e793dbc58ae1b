// The simulator's Usage and Costs endpoints over real HTTP (OPENAI-API.md
// §5–6, simulator checklist 12–13): buckets, pagination, group_by and filters
// in both query styles, empty buckets, the admin key, and costs that agree
// with the usage priced by the price table.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costOf } from '../src/pricing/cost.js';
import { resolvePrice } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { createOrgRoutes, HISTORY_DAYS, LiveUsage, spikeDaySec, syntheticCosts, syntheticUsage, type OrgHistoryConfig } from '../src/sim/org.js';
import type { BilledEvent } from '../src/sim/context.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';

const DAY = 86_400;
const ADMIN_KEY = 'sk-admin-org-sim-test';
const API_KEY = 'sk-api-org-sim-test';
/** A pinned history: the same data whatever day the tests run. */
const CONFIG: OrgHistoryConfig = { seed: 1, anchorDaySec: Date.UTC(2026, 5, 1) / 1000 };
const ANCHOR = CONFIG.anchorDaySec;

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ apiKey: API_KEY, adminKey: ADMIN_KEY, routes: createOrgRoutes(CONFIG) });
});
afterAll(async () => {
  await sim.close();
});

interface Page {
  object: string;
  data: Array<{ object: string; start_time: number; end_time: number; results: Array<Record<string, unknown>> }>;
  has_more: boolean;
  next_page: string | null;
}

async function get(path: string, key = ADMIN_KEY): Promise<{ status: number; body: any }> {
  const response = await fetch(`${sim.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: response.status, body: await response.json() };
}

async function page(path: string): Promise<Page> {
  const { status, body } = await get(path);
  expect(status, JSON.stringify(body)).toBe(200);
  return body as Page;
}

/** Every page of a query, following next_page. */
async function allPages(path: string): Promise<Page[]> {
  const pages = [await page(path)];
  while (pages.at(-1)?.has_more) pages.push(await page(`${path}&page=${encodeURIComponent(pages.at(-1)?.next_page ?? '')}`));
  return pages;
}

describe('usage buckets', () => {
  it('starts the first bucket at start_time and aligns later ones to UTC, cut at end_time', async () => {
    const start = ANCHOR - 3 * DAY + 5 * 3_600 + 17 * 60 + 9;
    const body = await page(`/organization/usage/completions?start_time=${start}&end_time=${start + 4 * 3_600}&bucket_width=1h`);
    expect(body.object).toBe('page');
    expect(body.data.map((b) => [b.start_time, b.end_time])).toEqual([
      [start, ANCHOR - 3 * DAY + 6 * 3_600],
      [ANCHOR - 3 * DAY + 6 * 3_600, ANCHOR - 3 * DAY + 7 * 3_600],
      [ANCHOR - 3 * DAY + 7 * 3_600, ANCHOR - 3 * DAY + 8 * 3_600],
      [ANCHOR - 3 * DAY + 8 * 3_600, ANCHOR - 3 * DAY + 9 * 3_600],
      [ANCHOR - 3 * DAY + 9 * 3_600, start + 4 * 3_600],
    ]);
    expect(body.data.every((b) => b.object === 'bucket')).toBe(true);
  });

  it('returns empty buckets with results: [] (minutes without usage)', async () => {
    const start = ANCHOR - 2 * DAY;
    const body = await page(`/organization/usage/completions?start_time=${start}&end_time=${start + 3_600}&bucket_width=1m&limit=60`);
    expect(body.data).toHaveLength(60);
    const empty = body.data.filter((b) => b.results.length === 0);
    expect(empty.length).toBeGreaterThan(0);
    expect(empty.length).toBeLessThan(60);
  });

  it('reports group keys as null unless grouped, and one result per group when grouped', async () => {
    const start = ANCHOR - 10 * DAY;
    const ungrouped = await page(`/organization/usage/completions?start_time=${start}&end_time=${start + DAY}`);
    const [result] = ungrouped.data[0]?.results ?? [];
    expect(result).toMatchObject({ object: 'organization.usage.completions.result', model: null, project_id: null, api_key_id: null, user_id: null, batch: null, service_tier: null });
    for (const field of ['input_tokens', 'input_cached_tokens', 'output_tokens', 'input_audio_tokens', 'output_audio_tokens', 'num_model_requests']) {
      expect(typeof result?.[field]).toBe('number');
    }
    const grouped = await page(`/organization/usage/completions?start_time=${start}&end_time=${start + DAY}&group_by[]=model&group_by[]=batch`);
    const results = grouped.data[0]?.results ?? [];
    expect(results.length).toBeGreaterThan(1);
    expect(results.every((r) => typeof r.model === 'string' && typeof r.batch === 'boolean' && r.project_id === null)).toBe(true);
    const sum = (rs: Array<Record<string, unknown>>) => rs.reduce((s, r) => s + (r.input_tokens as number), 0);
    expect(sum(results)).toBe(sum(ungrouped.data[0]?.results ?? []));
  });

  it('accepts group_by[]=x and repeated group_by=x alike, and models[] and models alike', async () => {
    const q = `start_time=${ANCHOR - 5 * DAY}&end_time=${ANCHOR - 2 * DAY}`;
    const brackets = await page(`/organization/usage/completions?${q}&group_by[]=model&group_by[]=project_id&models[]=gpt-4o-2024-08-06`);
    const repeated = await page(`/organization/usage/completions?${q}&group_by=model&group_by=project_id&models=gpt-4o-2024-08-06`);
    expect(repeated.data).toEqual(brackets.data);
    const models = new Set(brackets.data.flatMap((b) => b.results.map((r) => r.model)));
    expect([...models]).toEqual(['gpt-4o-2024-08-06']);
  });

  it('filters by project, key and the batch flag', async () => {
    const q = `start_time=${ANCHOR - 5 * DAY}&end_time=${ANCHOR - 4 * DAY}&group_by[]=project_id&group_by[]=api_key_id&group_by[]=batch`;
    const data = await page(`/organization/usage/completions?${q}&project_ids[]=proj_sim_data&batch=true`);
    const results = data.data.flatMap((b) => b.results);
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((r) => r.project_id === 'proj_sim_data' && r.batch === true)).toBe(true);
    const keys = await page(`/organization/usage/completions?${q}&api_key_ids=key_sim_support`);
    expect(new Set(keys.data.flatMap((b) => b.results.map((r) => r.api_key_id)))).toEqual(new Set(['key_sim_support']));
  });

  it('answers every usage kind with its own result object and metrics', async () => {
    const q = `start_time=${ANCHOR - 5 * DAY}&end_time=${ANCHOR - 4 * DAY}`;
    const expectations: Array<[string, string]> = [
      ['embeddings', 'input_tokens'],
      ['moderations', 'input_tokens'],
      ['images', 'images'],
      ['audio_speeches', 'characters'],
      ['audio_transcriptions', 'seconds'],
      ['vector_stores', 'usage_bytes'],
      ['code_interpreter_sessions', 'num_sessions'],
    ];
    for (const [kind, metric] of expectations) {
      const body = await page(`/organization/usage/${kind}?${q}`);
      const [result] = body.data[0]?.results ?? [];
      expect(result?.object).toBe(`organization.usage.${kind}.result`);
      expect(result?.[metric]).toBeGreaterThan(0);
    }
  });
});

describe('pagination', () => {
  it.each([
    { width: '1d', defaultLimit: 7, span: 30 * DAY },
    { width: '1h', defaultLimit: 24, span: 3 * DAY },
    { width: '1m', defaultLimit: 60, span: 3 * 3_600 },
  ])('pages $width buckets $defaultLimit at a time by default and the pages add up to the whole range', async ({ width, defaultLimit, span }) => {
    const start = ANCHOR - 20 * DAY + 1_234;
    const path = `/organization/usage/completions?start_time=${start}&end_time=${start + span}&bucket_width=${width}&group_by[]=model`;
    const pages = await allPages(path);
    expect(pages[0]?.data).toHaveLength(defaultLimit);
    expect(pages[0]?.next_page).toMatch(/^page_/);
    expect(pages.at(-1)).toMatchObject({ has_more: false, next_page: null });
    const buckets = pages.flatMap((p) => p.data);
    // Contiguous from start to end.
    expect(buckets[0]?.start_time).toBe(start);
    expect(buckets.at(-1)?.end_time).toBe(start + span);
    buckets.slice(1).forEach((b, i) => expect(b.start_time).toBe(buckets[i]?.end_time));
    // The same buckets as the ground truth the simulator generates in one piece.
    const truth = syntheticUsage('completions', { startSec: start, endSec: start + span, width: width as '1d', groupBy: ['model'], filters: {} }, CONFIG);
    expect(buckets).toEqual(truth);
  });

  it.each([
    { query: 'bucket_width=1d&limit=32', param: 'limit' },
    { query: 'bucket_width=1h&limit=169', param: 'limit' },
    { query: 'bucket_width=1m&limit=0', param: 'limit' },
    { query: 'bucket_width=5m', param: 'bucket_width' },
    { query: 'group_by[]=line_item', param: 'group_by' },
    { query: 'page=page_bm9wZQ==', param: 'page' },
    { query: 'batch=maybe', param: 'batch' },
  ])('refuses $query with a 400 naming $param', async ({ query, param }) => {
    const { status, body } = await get(`/organization/usage/completions?start_time=${ANCHOR - 3 * DAY}&end_time=${ANCHOR}&${query}`);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param });
  });

  it('requires start_time', async () => {
    const { status, body } = await get('/organization/usage/completions');
    expect(status).toBe(400);
    expect(body.error.message).toBe("Missing required parameter: 'start_time'.");
  });
});

describe('the admin key', () => {
  it('is the only key the organisation endpoints accept', async () => {
    const query = `start_time=${ANCHOR - DAY}`;
    expect((await get(`/organization/costs?${query}`, API_KEY)).status).toBe(401);
    expect((await get(`/organization/usage/completions?${query}`, 'sk-wrong-wrong-wrong')).body.error.code).toBe('invalid_api_key');
    expect((await get(`/organization/costs?${query}`)).status).toBe(200);
  });
});

describe('synthetic history', () => {
  it(`covers ${HISTORY_DAYS} days before the anchor and nothing before`, () => {
    const query = (startSec: number, endSec: number) => ({ startSec, endSec, width: '1d' as const, groupBy: [], filters: {} });
    expect(syntheticUsage('completions', query(ANCHOR - (HISTORY_DAYS + 5) * DAY, ANCHOR - HISTORY_DAYS * DAY), CONFIG).every((b) => b.results.length === 0)).toBe(true);
    expect(syntheticUsage('completions', query(ANCHOR - HISTORY_DAYS * DAY, ANCHOR), CONFIG).every((b) => b.results.length === 1)).toBe(true);
  });

  it('has one spike day several times an ordinary day', () => {
    const spike = spikeDaySec(CONFIG);
    const tokens = (day: number) =>
      syntheticUsage('completions', { startSec: day, endSec: day + DAY, width: '1d', groupBy: [], filters: {} }, CONFIG)[0]?.results.reduce(
        (s, r) => s + (r.input_tokens as number) + (r.output_tokens as number),
        0,
      ) ?? 0;
    expect(tokens(spike)).toBeGreaterThan(2.5 * tokens(spike - 7 * DAY));
    expect(tokens(spike + 7 * DAY)).toBeLessThan(1.3 * tokens(spike - 7 * DAY));
  });

  it('is deterministic by seed', () => {
    const query = { startSec: ANCHOR - 30 * DAY, endSec: ANCHOR, width: '1d' as const, groupBy: ['model'], filters: {} };
    expect(syntheticUsage('completions', query, CONFIG)).toEqual(syntheticUsage('completions', query, { ...CONFIG }));
    expect(syntheticUsage('completions', query, { ...CONFIG, seed: 2 })).not.toEqual(syntheticUsage('completions', query, CONFIG));
  });
});

describe('costs', () => {
  const start = ANCHOR - 12 * DAY;
  const end = ANCHOR - 2 * DAY;

  it('answers daily buckets of amounts in usd, grouped by line item with token quantities', async () => {
    const pages = await allPages(`/organization/costs?start_time=${start}&end_time=${end}&group_by[]=line_item&group_by[]=project_id`);
    expect(pages).toHaveLength(2); // limit defaults to 7 buckets
    const results = pages.flatMap((p) => p.data.flatMap((b) => b.results));
    expect(results[0]).toMatchObject({ object: 'organization.costs.result', amount: { currency: 'usd' }, quantity_unit: 'tokens', api_key_id: null });
    expect(new Set(results.map((r) => r.line_item))).toContain('gpt-4o-mini, input');
    expect(new Set(results.map((r) => r.line_item))).toContain('gpt-4o, cached input');
    const { status, body } = await get(`/organization/costs?start_time=${start}&bucket_width=1h`);
    expect(status).toBe(400);
    expect(body.error.param).toBe('bucket_width');
    expect((await get(`/organization/costs?start_time=${start}&limit=181`)).status).toBe(400);
  });

  it('agree with the usage priced by the price table, Batch API usage at half price', async () => {
    const prices = loadPriceTable();
    const usage = (kind: 'completions' | 'embeddings') =>
      syntheticUsage(kind, { startSec: start, endSec: end, width: '1d', groupBy: ['model', 'batch'].filter((k) => kind === 'completions' || k === 'model'), filters: {} }, CONFIG);
    let expectedUsd = 0;
    for (const kind of ['completions', 'embeddings'] as const) {
      for (const result of usage(kind).flatMap((b) => b.results)) {
        const price = resolvePrice(prices, result.model as string);
        expect(price, String(result.model)).not.toBeNull();
        const cost = costOf(
          {
            input_tokens: result.input_tokens as number,
            cached_input_tokens: (result.input_cached_tokens as number | undefined) ?? 0,
            cache_write_input_tokens: (result.input_cache_write_tokens as number | undefined) ?? 0,
            output_tokens: (result.output_tokens as number | undefined) ?? 0,
            reasoning_tokens: 0,
            input_audio_tokens: 0,
            output_audio_tokens: 0,
          },
          price!.price,
          { batch: result.batch === true, batchDiscount: prices.batch_discount, longContext: false },
        );
        expectedUsd += cost.total;
      }
    }
    const pages = await allPages(`/organization/costs?start_time=${start}&end_time=${end}`);
    const billedUsd = pages.flatMap((p) => p.data.flatMap((b) => b.results)).reduce((s, r) => s + (r.amount as { value: number }).value, 0);
    expect(billedUsd).toBeCloseTo(expectedUsd, 8);
    expect(billedUsd).toBeGreaterThan(0);
    const truth = syntheticCosts({ startSec: start, endSec: end, groupBy: [], filters: {} }, CONFIG);
    expect(pages.flatMap((p) => p.data)).toEqual(truth);
  });
});

describe('live usage', () => {
  it('folds in what the simulator answered, under its own project and a key id that is not the key', async () => {
    const live = await startSimulator({ apiKey: API_KEY, adminKey: ADMIN_KEY });
    try {
      const before = Math.floor(Date.now() / 1000);
      // Three at once: answered in the same second, folded into one record, summed alike.
      const usages = await Promise.all(
        ['hello', 'hello there', 'hello there again'].map(async (content) => {
          const answer = await fetch(`${live.url}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 20 }),
          });
          return ((await answer.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
        }),
      );
      const usage = { prompt_tokens: usages.reduce((s, u) => s + u.prompt_tokens, 0), completion_tokens: usages.reduce((s, u) => s + u.completion_tokens, 0) };
      const query = `start_time=${before - 60}&end_time=${before + 3_600}&bucket_width=1h&project_ids[]=proj_sim_live&group_by[]=api_key_id&group_by[]=model`;
      const response = await fetch(`${live.url}/organization/usage/completions?${query}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const body = (await response.json()) as Page;
      const results = body.data.flatMap((b) => b.results);
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ model: 'gpt-4o-mini-2024-07-18', num_model_requests: 3, input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens });
      expect(results[0]?.api_key_id).toMatch(/^key_sim_live_[0-9a-f]{8}$/);
      expect(JSON.stringify(body)).not.toContain(API_KEY);
    } finally {
      await live.close();
    }
  });

  it('holds one event per second, kind and dimensions, not one per request, with the same totals', () => {
    const live = new LiveUsage();
    const second = 1_780_000_000;
    const daySec = second - (second % 86_400);
    const billed = (i: number, overrides: Partial<BilledEvent> = {}): BilledEvent => ({
      timeMs: second * 1000 + (i % 1000),
      endpoint: '/v1/chat/completions',
      model: 'gpt-4o-mini-2024-07-18',
      requestedModel: 'gpt-4o-mini',
      apiKey: API_KEY,
      usage: { input_tokens: 20 + (i % 7), cached_input_tokens: i % 2 === 0 ? 8 : 0, cache_write_input_tokens: 0, output_tokens: 12, reasoning_tokens: 0 },
      promptTokens: 20 + (i % 7),
      serviceTier: 'default',
      batch: false,
      ...overrides,
    });
    let inputTokens = 0;
    let usd = 0;
    for (let i = 0; i < 10_000; i++) {
      const event = billed(i);
      live.add(event);
      inputTokens += event.usage.input_tokens;
      // The same request alone: what it costs, line by line.
      const alone = new LiveUsage();
      alone.add(event);
      usd += alone.eventsOfDay('completions', daySec)[0]!.costs.reduce((s, c) => s + c.amountUsd, 0);
    }
    live.add(billed(1, { batch: true }));
    live.add(billed(2, { timeMs: (second + 1) * 1000 }));
    live.add(billed(3, { endpoint: '/v1/embeddings', model: 'text-embedding-3-small' }));
    const events = live.eventsOfDay('completions', daySec);
    // One for the 10,000 answers, one for the batch line, one for the next second; the embedding is of another kind.
    expect(events).toHaveLength(3);
    const [folded] = events;
    expect(folded!.metrics).toMatchObject({ num_model_requests: 10_000, input_tokens: inputTokens, input_cached_tokens: 5_000 * 8, output_tokens: 120_000 });
    expect(folded!.costs.reduce((s, c) => s + c.amountUsd, 0)).toBeCloseTo(usd, 12);
    expect(folded!.costs.map((c) => c.lineItem).sort()).toEqual(['gpt-4o-mini, cached input', 'gpt-4o-mini, input', 'gpt-4o-mini, output']);
    expect(events[1]!.dims.batch).toBe(true);
    expect(events[2]!.timeSec).toBe(second + 1);
    expect(live.eventsOfDay('embeddings', daySec).map((e) => e.metrics.num_model_requests)).toEqual([1]);
  });
});
