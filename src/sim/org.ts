// The simulator's organisation endpoints: GET /v1/organization/usage/{kind}
// and GET /v1/organization/costs (OPENAI-API.md §5–6, checklist 12–13).
//
// In:  a query (start_time, end_time, bucket_width, group_by, filters, limit,
//      page) on the admin key (server.ts checks the key by path).
// Out: pages of time buckets from a deterministic synthetic history, plus
//      the usage the simulator itself answered (folded in via onBilled).
// Owns the synthetic history: for each seed and "anchor" day (the UTC day the
// simulator started), HISTORY_DAYS of usage per model, project, key and user
// with a weekday rhythm and noise, and one spike day SPIKE_DAYS_BEFORE_ANCHOR
// days before the anchor (a runaway gpt-4o job). Costs are that usage priced
// by the built-in price table, Batch API usage at the table's discount.
// syntheticUsage / syntheticCosts return the same buckets unpaginated: the
// ground truth tests compare reports against.

import type { BilledEvent, RouteHandler, SimContext, SimHost } from './context.js';
import type { Route, SetupHook } from './route.js';
import { fmix32, mulberry32, seedWord } from './digest.js';
import { BUCKET_SECONDS, COSTS_SPEC, USAGE_KINDS, USAGE_SPECS, isBucketWidth, type BucketWidth, type FilterName, type UsageKind } from '../org/kinds.js';
import { alignDown, bucketsOf, DAY_SECONDS, dayStart } from '../org/range.js';
import type { ApiBucket } from '../org/pages.js';
import { costOf } from '../pricing/cost.js';
import { resolvePrice, type PriceTable } from '../pricing/prices.js';
import { loadPriceTable } from '../shared/price-file.js';

/** Days of synthetic history before the anchor day (the anchor day itself has data too, up to now). */
export const HISTORY_DAYS = 90;
/** The spike day: this many days before the anchor, so a `--days 30` report shows it with a full baseline. */
export const SPIKE_DAYS_BEFORE_ANCHOR = 9;

export interface OrgHistoryConfig {
  seed: number;
  /** UTC midnight of the simulator's "today": the last day with data. */
  anchorDaySec: number;
}

/** Which synthetic day is the spike day (UTC midnight, Unix seconds). */
export function spikeDaySec(config: OrgHistoryConfig): number {
  return config.anchorDaySec - SPIKE_DAYS_BEFORE_ANCHOR * DAY_SECONDS;
}

// ---------------------------------------------------------------------------
// What each endpoint groups by (the API's full lists, OPENAI-API.md §5–6)

type Dim = 'project_id' | 'user_id' | 'api_key_id' | 'model' | 'batch' | 'service_tier' | 'size' | 'source' | 'line_item';
type DimValue = string | boolean | null;

const API_GROUP_KEYS: Readonly<Record<UsageKind, readonly Dim[]>> = {
  completions: ['project_id', 'user_id', 'api_key_id', 'model', 'batch', 'service_tier'],
  embeddings: ['project_id', 'user_id', 'api_key_id', 'model'],
  moderations: ['project_id', 'user_id', 'api_key_id', 'model'],
  images: ['project_id', 'user_id', 'api_key_id', 'model', 'size', 'source'],
  audio_speeches: ['project_id', 'user_id', 'api_key_id', 'model'],
  audio_transcriptions: ['project_id', 'user_id', 'api_key_id', 'model'],
  vector_stores: ['project_id'],
  code_interpreter_sessions: ['project_id'],
};
const COSTS_GROUP_KEYS: readonly Dim[] = ['project_id', 'line_item', 'api_key_id'];
const FILTER_DIMS: Readonly<Record<FilterName, Dim>> = { models: 'model', project_ids: 'project_id', user_ids: 'user_id', api_key_ids: 'api_key_id' };

// ---------------------------------------------------------------------------
// The synthetic organisation

/** One burst of usage by one caller at one second. */
export interface UsageEvent {
  timeSec: number;
  kind: UsageKind;
  dims: Partial<Record<Dim, DimValue>>;
  /** Result fields, e.g. input_tokens, num_model_requests. */
  metrics: Record<string, number>;
  /** Its cost, one entry per line item (empty when unpriced or free). */
  costs: Array<{ lineItem: string; amountUsd: number; quantity: number }>;
}

interface Series {
  kind: UsageKind;
  dims: Partial<Record<Dim, DimValue>>;
  /** Requests on an ordinary weekday. */
  dailyRequests: number;
  /** Per-request means of each token (or unit) metric. */
  perRequest: Record<string, number>;
  /** Share of input tokens served from the prompt cache. */
  cachedShare?: number;
  /** Only on the spike day. */
  isSpike?: boolean;
}

const caller = (project: string, key: string, user: string): Partial<Record<Dim, DimValue>> => ({
  project_id: project,
  api_key_id: key,
  user_id: user,
});

const SERIES: readonly Series[] = [
  // Completions: a web app, a support bot, and a data team's nightly Batch API jobs.
  { kind: 'completions', dims: { ...caller('proj_sim_web', 'key_sim_web_prod', 'user_sim_ana'), model: 'gpt-4o-mini-2024-07-18', batch: false, service_tier: 'default' }, dailyRequests: 1_200, perRequest: { input_tokens: 900, output_tokens: 250 }, cachedShare: 0.35 },
  { kind: 'completions', dims: { ...caller('proj_sim_support', 'key_sim_support', 'user_sim_ben'), model: 'gpt-4o-mini-2024-07-18', batch: false, service_tier: 'default' }, dailyRequests: 800, perRequest: { input_tokens: 1_400, output_tokens: 300 }, cachedShare: 0.5 },
  { kind: 'completions', dims: { ...caller('proj_sim_web', 'key_sim_web_prod', 'user_sim_ana'), model: 'gpt-4o-2024-08-06', batch: false, service_tier: 'default' }, dailyRequests: 150, perRequest: { input_tokens: 2_000, output_tokens: 500 }, cachedShare: 0.2 },
  { kind: 'completions', dims: { ...caller('proj_sim_data', 'key_sim_data_batch', 'user_sim_cy'), model: 'gpt-4o-2024-08-06', batch: true, service_tier: 'default' }, dailyRequests: 400, perRequest: { input_tokens: 1_800, output_tokens: 400 } },
  { kind: 'completions', dims: { ...caller('proj_sim_data', 'key_sim_data_batch', 'user_sim_cy'), model: 'gpt-4.1-mini-2025-04-14', batch: true, service_tier: 'default' }, dailyRequests: 2_000, perRequest: { input_tokens: 700, output_tokens: 150 } },
  { kind: 'completions', dims: { ...caller('proj_sim_support', 'key_sim_support', 'user_sim_ben'), model: 'o4-mini-2025-04-16', batch: false, service_tier: 'default' }, dailyRequests: 100, perRequest: { input_tokens: 1_200, output_tokens: 900 }, cachedShare: 0.1 },
  // The spike: an ad-hoc script looping on gpt-4o outside the Batch API, for one day.
  { kind: 'completions', dims: { ...caller('proj_sim_data', 'key_sim_data_adhoc', 'user_sim_cy'), model: 'gpt-4o-2024-08-06', batch: false, service_tier: 'default' }, dailyRequests: 4_000, perRequest: { input_tokens: 2_500, output_tokens: 600 }, isSpike: true },
  { kind: 'embeddings', dims: { ...caller('proj_sim_data', 'key_sim_data_batch', 'user_sim_cy'), model: 'text-embedding-3-small' }, dailyRequests: 3_000, perRequest: { input_tokens: 500 } },
  { kind: 'embeddings', dims: { ...caller('proj_sim_web', 'key_sim_web_prod', 'user_sim_ana'), model: 'text-embedding-3-small' }, dailyRequests: 500, perRequest: { input_tokens: 300 } },
  { kind: 'moderations', dims: { ...caller('proj_sim_web', 'key_sim_web_prod', 'user_sim_ana'), model: 'omni-moderation-latest' }, dailyRequests: 1_200, perRequest: { input_tokens: 200 } },
  { kind: 'images', dims: { ...caller('proj_sim_web', 'key_sim_web_prod', 'user_sim_ana'), model: 'gpt-image-1', size: '1024x1024', source: 'image.generation' }, dailyRequests: 30, perRequest: { images: 1.4 } },
  { kind: 'audio_speeches', dims: { ...caller('proj_sim_support', 'key_sim_support', 'user_sim_ben'), model: 'tts-1' }, dailyRequests: 100, perRequest: { characters: 500 } },
  { kind: 'audio_transcriptions', dims: { ...caller('proj_sim_support', 'key_sim_support', 'user_sim_ben'), model: 'whisper-1' }, dailyRequests: 80, perRequest: { seconds: 240 } },
  // usage_bytes is a level in the real API; here it is summed per bucket like the rest, enough to exercise the report.
  { kind: 'vector_stores', dims: { project_id: 'proj_sim_data' }, dailyRequests: 24, perRequest: { usage_bytes: 50_000_000 } },
  { kind: 'code_interpreter_sessions', dims: { project_id: 'proj_sim_support' }, dailyRequests: 30, perRequest: { num_sessions: 1 } },
];

/**
 * Weekday rhythm (Sunday first) and day-to-day swing. Tuned so that, over 100
 * seeds × 7 anchor days × 75 judged days, no ordinary day of completions or
 * costs scored above 3.5 while the spike always did: a deeper weekend dip
 * than the swing covers makes every Sunday an "anomaly" under a robust score
 * that knows nothing of weekdays.
 */
const WEEKDAY_FACTOR = [0.92, 1, 1.01, 1.02, 1.01, 0.99, 0.93];
/** Day-to-day swing of the whole organisation, ±. */
const DAY_NOISE = 0.1;
/** Extra swing of each caller on top of the organisation's, ±. */
const SERIES_NOISE = 0.02;
/** Day-to-day swing of each caller's tokens per request, ±. */
const SIZE_NOISE = 0.03;
/** Slow growth per day, so the history is not flat. */
const TREND_PER_DAY = 0.002;
/** Bursts per caller per day (each a few to a few hundred requests). */
const MIN_BURSTS = 12;
const EXTRA_BURSTS = 13;

let priceTable: PriceTable | undefined;
function prices(): PriceTable {
  priceTable ??= loadPriceTable();
  return priceTable;
}

/** The events of each synthetic (kind, day), computed on first use. */
class SyntheticHistory {
  private readonly days = new Map<string, UsageEvent[]>();
  constructor(readonly config: OrgHistoryConfig) {}

  eventsOfDay(kind: UsageKind, daySec: number): readonly UsageEvent[] {
    const first = this.config.anchorDaySec - HISTORY_DAYS * DAY_SECONDS;
    if (daySec < first || daySec > this.config.anchorDaySec) return [];
    const key = `${kind}:${daySec}`;
    let events = this.days.get(key);
    if (!events) {
      events = [];
      SERIES.forEach((series, index) => {
        if (series.kind === kind) events!.push(...this.seriesDay(series, index, daySec));
      });
      events.sort((a, b) => a.timeSec - b.timeSec);
      this.days.set(key, events);
    }
    return events;
  }

  private seriesDay(series: Series, index: number, daySec: number): UsageEvent[] {
    const isSpikeDay = daySec === spikeDaySec(this.config);
    if (series.isSpike && !isSpikeDay) return [];
    const dayIndex = daySec / DAY_SECONDS;
    const seed = seedWord(this.config.seed);
    const weekday = WEEKDAY_FACTOR[(dayIndex + 4) % 7] as number; // 1970-01-01 was a Thursday
    const age = (daySec - (this.config.anchorDaySec - HISTORY_DAYS * DAY_SECONDS)) / DAY_SECONDS;
    const level = series.isSpike
      ? 1
      : weekday *
        (1 + DAY_NOISE * swing(dayIndex + (seed % 997), GOLDEN)) *
        (1 + SERIES_NOISE * swing(dayIndex + 7 * index + (seed % 991), SILVER)) *
        (1 + TREND_PER_DAY * age);
    const requests = Math.round(series.dailyRequests * level);
    const totals: Record<string, number> = {};
    for (const [field, mean] of Object.entries(series.perRequest)) {
      totals[field] = Math.round(requests * mean * (1 + SIZE_NOISE * swing(dayIndex + 13 * index + (seed % 983), BRONZE)));
    }
    if (USAGE_SPECS[series.kind].metrics.includes('num_model_requests')) totals.num_model_requests = requests;

    // Spread the day's totals over bursts at random seconds; cumulative rounding keeps the day's totals exact.
    const rng = mulberry32(fmix32(seed ^ fmix32(dayIndex * 7_919 + (index + 1) * 104_729)));
    const bursts = MIN_BURSTS + Math.floor(rng() * EXTRA_BURSTS);
    const weights = Array.from({ length: bursts }, () => 0.5 + rng());
    const weightSum = weights.reduce((a, b) => a + b, 0);
    const events: UsageEvent[] = [];
    const assigned: Record<string, number> = Object.fromEntries(Object.keys(totals).map((f) => [f, 0]));
    let cumulative = 0;
    for (const weight of weights) {
      cumulative += weight;
      const timeSec = daySec + Math.floor(rng() * DAY_SECONDS);
      const metrics: Record<string, number> = {};
      for (const [field, total] of Object.entries(totals)) {
        const upTo = Math.round((total * cumulative) / weightSum);
        metrics[field] = upTo - (assigned[field] as number);
        assigned[field] = upTo;
      }
      if (series.kind === 'completions') {
        // Per burst, so a burst never reports more cached than input tokens.
        metrics.input_cached_tokens = Math.floor((metrics.input_tokens ?? 0) * (series.cachedShare ?? 0));
        Object.assign(metrics, { input_audio_tokens: 0, output_audio_tokens: 0 });
      }
      if (Object.values(metrics).every((v) => v === 0)) continue;
      events.push(priced({ timeSec, kind: series.kind, dims: series.dims, metrics, costs: [] }, 'default'));
    }
    return events;
  }
}

/**
 * A deterministic swing in [−1, 1): the fractional parts of n·α for an
 * irrational α. Unlike independent draws, any run of consecutive days spreads
 * evenly over the range, so a 14-day window's MAD never collapses by chance
 * and ordinary days stay ordinary under the robust score.
 */
function swing(n: number, alpha: number): number {
  return 2 * ((n * alpha) % 1) - 1;
}
const GOLDEN = 0.6180339887498949;
const SILVER = 0.41421356237309515;
const BRONZE = 0.30277563773199456;

/** Fills `costs` from the price table: uncached input, cached input, cache-write input and output line items. */
function priced(event: UsageEvent, serviceTier: string | null): UsageEvent {
  const model = typeof event.dims.model === 'string' ? event.dims.model : null;
  const input = event.metrics.input_tokens;
  if (model === null || input === undefined) return event;
  const table = prices();
  const resolved = resolvePrice(table, model);
  if (!resolved) return event;
  const cached = Math.min(event.metrics.input_cached_tokens ?? 0, input);
  const written = Math.min(event.metrics.input_cache_write_tokens ?? 0, input - cached);
  const output = event.metrics.output_tokens ?? 0;
  const cost = costOf(
    {
      input_tokens: input,
      cached_input_tokens: cached,
      cache_write_input_tokens: written,
      output_tokens: output,
      reasoning_tokens: 0,
      input_audio_tokens: 0,
      output_audio_tokens: 0,
    },
    resolved.price,
    { batch: event.dims.batch === true, batchDiscount: table.batch_discount, serviceTier, longContext: false },
  );
  const items: UsageEvent['costs'] = [
    { lineItem: `${resolved.name}, input`, amountUsd: cost.input, quantity: input - cached - written },
    { lineItem: `${resolved.name}, cached input`, amountUsd: cost.cached_input, quantity: cached },
    { lineItem: `${resolved.name}, cache write input`, amountUsd: cost.cache_write_input, quantity: written },
    { lineItem: `${resolved.name}, output`, amountUsd: cost.output, quantity: output },
  ];
  // Free usage (moderations) is not a cost line.
  return { ...event, costs: items.filter((item) => item.amountUsd > 0) };
}

const histories = new Map<string, SyntheticHistory>();
function historyFor(config: OrgHistoryConfig): SyntheticHistory {
  const key = `${config.seed}:${config.anchorDaySec}`;
  let history = histories.get(key);
  if (!history) {
    // A handful of simulators at most live at once; keep the cache from growing across a long test run.
    if (histories.size >= 16) histories.clear();
    history = new SyntheticHistory(config);
    histories.set(key, history);
  }
  return history;
}

// ---------------------------------------------------------------------------
// Live usage: what this simulator answered, as the Usage API would report it

const LIVE_STATE = 'org.live';
const LIVE_PROJECT = 'proj_sim_live';

/**
 * What the simulator answered, one event per second and kind of usage and
 * dimensions: the Usage API's finest bucket is a minute and its time filters
 * are in seconds, so nothing it reports changes, and a long load test holds a
 * few events a second instead of one per request (that was ~800 bytes each:
 * 3.6 GB after 4.5 million requests).
 */
export class LiveUsage {
  private readonly byDay = new Map<number, UsageEvent[]>();
  /** This second's events by their kind and dimensions, to fold the next request of the same second into. */
  private thisSecond = new Map<string, UsageEvent>();
  private second = -1;

  add(event: BilledEvent): void {
    const kind: UsageKind = event.endpoint === '/v1/embeddings' ? 'embeddings' : event.endpoint === '/v1/moderations' ? 'moderations' : 'completions';
    const timeSec = Math.floor(event.timeMs / 1000);
    const inputTokens = kind === 'moderations' ? event.promptTokens : event.usage.input_tokens;
    const metrics: Record<string, number> = { input_tokens: inputTokens, num_model_requests: 1 };
    if (kind === 'completions') {
      Object.assign(metrics, {
        input_cached_tokens: event.usage.cached_input_tokens,
        // Only where the model reports cache writes, as the API's newer field (absent from older reports).
        ...(event.usage.cache_write_input_tokens > 0 ? { input_cache_write_tokens: event.usage.cache_write_input_tokens } : {}),
        output_tokens: event.usage.output_tokens,
        input_audio_tokens: 0,
        output_audio_tokens: 0,
      });
    }
    const dims: UsageEvent['dims'] = {
      project_id: LIVE_PROJECT,
      // An id derived from the key, never the key itself.
      api_key_id: `key_sim_live_${fmix32(hashText(event.apiKey)).toString(16).padStart(8, '0')}`,
      user_id: null,
      model: event.model,
      batch: event.batch,
      service_tier: event.serviceTier,
    };
    const added = priced({ timeSec, kind, dims, metrics, costs: [] }, event.serviceTier);
    if (timeSec !== this.second) {
      this.second = timeSec;
      this.thisSecond = new Map();
    }
    const key = `${kind}\n${dims.model}\n${dims.api_key_id}\n${dims.batch}\n${dims.service_tier}`;
    const same = this.thisSecond.get(key);
    if (same !== undefined) {
      foldInto(same, added);
      return;
    }
    this.thisSecond.set(key, added);
    const day = dayStart(timeSec);
    const list = this.byDay.get(day) ?? [];
    list.push(added);
    this.byDay.set(day, list);
  }

  eventsOfDay(kind: UsageKind, daySec: number): UsageEvent[] {
    return (this.byDay.get(daySec) ?? []).filter((e) => e.kind === kind);
  }
}

/** Adds `event`'s metrics and costs (line item by line item) to `into`, an event of the same second, kind and dimensions. */
function foldInto(into: UsageEvent, event: UsageEvent): void {
  for (const [name, value] of Object.entries(event.metrics)) into.metrics[name] = (into.metrics[name] ?? 0) + value;
  for (const cost of event.costs) {
    const line = into.costs.find((c) => c.lineItem === cost.lineItem);
    if (line) {
      line.amountUsd += cost.amountUsd;
      line.quantity += cost.quantity;
    } else {
      into.costs.push({ ...cost });
    }
  }
}

function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Anchors each simulator's history on the day it started, and subscribes it to its own answers so usage reports include them. */
export const orgSetup: SetupHook = (host: SimHost) => {
  hostHistory(host);
  const live = host.state(LIVE_STATE, () => new LiveUsage());
  return host.onBilled((event) => live.add(event));
};

// ---------------------------------------------------------------------------
// Queries: buckets of aggregated results (no pagination)

export interface OrgSimQuery {
  startSec: number;
  endSec: number;
  width: BucketWidth;
  groupBy: readonly string[];
  filters: Partial<Record<FilterName, readonly string[]>>;
  /** Completions: true = batch only, false = non-batch only. */
  batch?: boolean | undefined;
}

interface Sources {
  history: SyntheticHistory;
  live?: LiveUsage | undefined;
  /** Events after this second are in the future and not served. */
  nowSec?: number | undefined;
}

/** The usage buckets of `query` (ground truth for tests; the route paginates the same). */
export function syntheticUsage(kind: UsageKind, query: OrgSimQuery, config: OrgHistoryConfig): ApiBucket[] {
  return usageBuckets(kind, query, { history: historyFor(config) });
}

/** The cost buckets of `query` (1d only). */
export function syntheticCosts(query: Omit<OrgSimQuery, 'width'>, config: OrgHistoryConfig): ApiBucket[] {
  return costBuckets({ ...query, width: '1d' }, { history: historyFor(config) });
}

function eventsIn(kind: UsageKind, query: OrgSimQuery, sources: Sources): UsageEvent[] {
  const end = Math.min(query.endSec, (sources.nowSec ?? Number.POSITIVE_INFINITY) + 1);
  const out: UsageEvent[] = [];
  for (let day = dayStart(query.startSec); day < end; day += DAY_SECONDS) {
    const candidates = [...sources.history.eventsOfDay(kind, day), ...(sources.live?.eventsOfDay(kind, day) ?? [])];
    for (const event of candidates) {
      if (event.timeSec < query.startSec || event.timeSec >= end) continue;
      if (!passesFilters(event, query)) continue;
      out.push(event);
    }
  }
  return out;
}

function passesFilters(event: UsageEvent, query: OrgSimQuery): boolean {
  for (const [filter, values] of Object.entries(query.filters) as Array<[FilterName, readonly string[] | undefined]>) {
    if (!values || values.length === 0) continue;
    const value = event.dims[FILTER_DIMS[filter]];
    if (typeof value !== 'string' || !values.includes(value)) return false;
  }
  if (query.batch !== undefined && (event.dims.batch === true) !== query.batch) return false;
  return true;
}

/** Index of the bucket holding `timeSec`: the first bucket ends at the first boundary, the rest are aligned. */
function bucketIndex(timeSec: number, buckets: readonly { startSec: number; endSec: number }[], width: BucketWidth): number {
  const first = buckets[0] as { endSec: number };
  if (timeSec < first.endSec) return 0;
  return 1 + Math.floor((timeSec - first.endSec) / BUCKET_SECONDS[width]);
}

function usageBuckets(kind: UsageKind, query: OrgSimQuery, sources: Sources): ApiBucket[] {
  const spec = USAGE_SPECS[kind];
  const keys = API_GROUP_KEYS[kind];
  const buckets = bucketsOf({ startSec: query.startSec, endSec: query.endSec }, query.width);
  if (buckets.length === 0) return [];
  const groups = buckets.map(() => new Map<string, { dims: UsageEvent['dims']; metrics: Record<string, number> }>());
  for (const event of eventsIn(kind, query, sources)) {
    const index = bucketIndex(event.timeSec, buckets, query.width);
    const groupDims = Object.fromEntries(query.groupBy.map((key) => [key, event.dims[key as Dim] ?? null]));
    const id = JSON.stringify(groupDims);
    const slot = groups[index] as Map<string, { dims: UsageEvent['dims']; metrics: Record<string, number> }>;
    let group = slot.get(id);
    if (!group) {
      group = { dims: groupDims, metrics: Object.fromEntries(spec.metrics.map((m) => [m, 0])) };
      slot.set(id, group);
    }
    for (const metric of spec.metrics) group.metrics[metric] = (group.metrics[metric] as number) + (event.metrics[metric] ?? 0);
  }
  return buckets.map((bucket, i) => ({
    object: 'bucket',
    start_time: bucket.startSec,
    end_time: bucket.endSec,
    results: [...(groups[i] as Map<string, { dims: UsageEvent['dims']; metrics: Record<string, number> }>).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, group]) => ({
        object: spec.resultObject,
        ...group.metrics,
        // Group keys are null unless grouped by.
        ...Object.fromEntries(keys.map((key) => [key, group.dims[key] ?? null])),
      })),
  }));
}

function costBuckets(query: OrgSimQuery, sources: Sources): ApiBucket[] {
  const buckets = bucketsOf({ startSec: query.startSec, endSec: query.endSec }, '1d');
  if (buckets.length === 0) return [];
  const byLineItem = query.groupBy.includes('line_item');
  const groups = buckets.map(() => new Map<string, { dims: UsageEvent['dims']; amountUsd: number; quantity: number }>());
  for (const kind of USAGE_KINDS) {
    for (const event of eventsIn(kind, query, sources)) {
      const slot = groups[bucketIndex(event.timeSec, buckets, '1d')] as Map<string, { dims: UsageEvent['dims']; amountUsd: number; quantity: number }>;
      for (const item of event.costs) {
        const dims: UsageEvent['dims'] = { ...event.dims, line_item: item.lineItem };
        const groupDims = Object.fromEntries(query.groupBy.map((key) => [key, dims[key as Dim] ?? null]));
        const id = JSON.stringify(groupDims);
        let group = slot.get(id);
        if (!group) {
          group = { dims: groupDims, amountUsd: 0, quantity: 0 };
          slot.set(id, group);
        }
        group.amountUsd += item.amountUsd;
        group.quantity += item.quantity;
      }
    }
  }
  return buckets.map((bucket, i) => ({
    object: 'bucket',
    start_time: bucket.startSec,
    end_time: bucket.endSec,
    results: [...(groups[i] as Map<string, { dims: UsageEvent['dims']; amountUsd: number; quantity: number }>).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, group]) => ({
        object: 'organization.costs.result',
        amount: { value: group.amountUsd, currency: 'usd' },
        line_item: group.dims.line_item ?? null,
        project_id: group.dims.project_id ?? null,
        api_key_id: group.dims.api_key_id ?? null,
        // A quantity is meaningful per line item only (tokens of one kind).
        quantity: byLineItem ? group.quantity : null,
        quantity_unit: byLineItem ? 'tokens' : null,
      })),
  }));
}

// ---------------------------------------------------------------------------
// The routes: parameters, validation, pagination

class QueryError extends Error {
  constructor(message: string, readonly param: string | null) {
    super(message);
  }
}

/** Every value of an array parameter, sent as `name[]=a` (openai-node) or repeated `name=a` (Python requests). */
function arrayParam(params: URLSearchParams, name: string): string[] {
  return [...params.getAll(`${name}[]`), ...params.getAll(name)].filter((v) => v !== '');
}

function integerParam(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new QueryError(`Invalid value for '${name}': expected an integer, got '${raw}'.`, name);
  return Number(raw);
}

interface ParsedQuery {
  query: OrgSimQuery;
  /** First bucket of this page (the cursor), or start_time. */
  pageStartSec: number;
  limit: number;
}

function parseQuery(ctx: SimContext, kind: UsageKind | 'costs'): ParsedQuery {
  const params = ctx.url.searchParams;
  const startSec = integerParam(params, 'start_time');
  if (startSec === undefined) throw new QueryError("Missing required parameter: 'start_time'.", 'start_time');
  const endSec = integerParam(params, 'end_time') ?? Math.floor(ctx.now() / 1000);
  if (endSec <= startSec) throw new QueryError("Invalid value for 'end_time': it must be after 'start_time'.", 'end_time');

  const width = params.get('bucket_width') ?? '1d';
  if (!isBucketWidth(width) || (kind === 'costs' && width !== '1d')) {
    const allowed = kind === 'costs' ? "'1d'" : "'1m', '1h', '1d'";
    throw new QueryError(`Invalid value for 'bucket_width': expected one of ${allowed}, got '${width}'.`, 'bucket_width');
  }

  const allowedKeys = kind === 'costs' ? COSTS_GROUP_KEYS : API_GROUP_KEYS[kind];
  const groupBy = [...new Set(arrayParam(params, 'group_by'))];
  for (const key of groupBy) {
    if (!(allowedKeys as readonly string[]).includes(key)) {
      throw new QueryError(`Invalid value for 'group_by': '${key}'. Supported values are: ${allowedKeys.map((k) => `'${k}'`).join(', ')}.`, 'group_by');
    }
  }

  const spec = kind === 'costs' ? COSTS_SPEC : USAGE_SPECS[kind];
  const allowedFilters = spec.filters;
  const filters: Partial<Record<FilterName, string[]>> = {};
  for (const name of allowedFilters) {
    const values = arrayParam(params, name);
    if (values.length > 0) filters[name] = values;
  }

  let batch: boolean | undefined;
  const batchParam = params.get('batch');
  if (batchParam !== null && kind === 'completions') {
    if (batchParam !== 'true' && batchParam !== 'false') throw new QueryError(`Invalid value for 'batch': expected true or false, got '${batchParam}'.`, 'batch');
    batch = batchParam === 'true';
  }

  // `limit` counts buckets: a default and a maximum per width (OPENAI-API.md §5–6).
  const limits = spec.pageLimits[width] as { default: number; max: number };
  const limit = integerParam(params, 'limit') ?? limits.default;
  if (limit < 1 || limit > limits.max) {
    throw new QueryError(`Invalid value for 'limit': expected an integer from 1 to ${limits.max} for bucket_width ${width}, got ${limit}.`, 'limit');
  }

  let pageStartSec = startSec;
  const page = params.get('page');
  if (page !== null && page !== '') {
    const cursor = decodeCursor(page);
    if (cursor === null || cursor <= startSec || cursor >= endSec || cursor !== alignDown(cursor, width)) {
      throw new QueryError(`Invalid value for 'page': '${page}' is not a page of this query.`, 'page');
    }
    pageStartSec = cursor;
  }
  return { query: { startSec, endSec, width, groupBy, filters, batch }, pageStartSec, limit };
}

/** Cursors look like the API's (`page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=`): opaque base64 of the next bucket's start. */
function encodeCursor(startSec: number): string {
  return `page_${Buffer.from(`b:${startSec}`).toString('base64')}`;
}

function decodeCursor(page: string): number | null {
  if (!page.startsWith('page_')) return null;
  const match = /^b:(\d+)$/.exec(Buffer.from(page.slice(5), 'base64').toString('utf8'));
  return match ? Number(match[1]) : null;
}

type HistorySource = (host: SimHost) => OrgHistoryConfig;

/** The simulator's own history: its seed, anchored on the UTC day it started (orgSetup pins it). */
const hostHistory: HistorySource = (host) =>
  host.state('org.history', () => ({ seed: host.options.seed, anchorDaySec: dayStart(Math.floor(host.now() / 1000)) }));

function handler(kind: UsageKind | 'costs', history: HistorySource): RouteHandler {
  return (ctx) => {
    let parsed: ParsedQuery;
    try {
      parsed = parseQuery(ctx, kind);
    } catch (error) {
      if (error instanceof QueryError) return ctx.sendError(400, 'invalid_request_error', null, error.message, error.param);
      throw error;
    }
    const { query, pageStartSec, limit } = parsed;
    // This page: `limit` buckets from the cursor; after the first, buckets are aligned, so the page ends on a boundary.
    const pageEndSec = Math.min(query.endSec, alignDown(pageStartSec, query.width) + limit * BUCKET_SECONDS[query.width]);
    const pageQuery: OrgSimQuery = { ...query, startSec: pageStartSec, endSec: pageEndSec };
    const sources: Sources = {
      history: historyFor(history(ctx.host)),
      live: ctx.host.state(LIVE_STATE, () => new LiveUsage()),
      nowSec: Math.floor(ctx.now() / 1000),
    };
    const data = kind === 'costs' ? costBuckets(pageQuery, sources) : usageBuckets(kind, pageQuery, sources);
    const hasMore = pageEndSec < query.endSec;
    ctx.sendJson(200, { object: 'page', data, has_more: hasMore, next_page: hasMore ? encodeCursor(pageEndSec) : null });
  };
}

/** The org routes; `config` pins the history (tests), else each simulator anchors on its own start day. */
export function createOrgRoutes(config?: OrgHistoryConfig): Route[] {
  const history: HistorySource = config ? () => config : hostHistory;
  return [
    { method: 'GET', pattern: /^\/v1\/organization\/costs$/, handler: handler('costs', history) },
    ...USAGE_KINDS.map((kind) => ({ method: 'GET', pattern: new RegExp(`^/v1/organization/usage/${kind}$`), handler: handler(kind, history) })),
  ];
}

export const orgRoutes: readonly Route[] = createOrgRoutes();
