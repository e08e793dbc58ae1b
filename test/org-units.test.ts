// The organisation reports' pure parts: dates and ranges, the bucket rule,
// argv → options, rows and daily totals, CSV, and the views.

import { describe, expect, it } from 'vitest';
import { orgOptionsFromArgs } from '../src/cli/org.js';
import { ConfigError } from '../src/shared/errors.js';
import { renderCsv, renderJson } from '../src/org/format.js';
import { COSTS_SPEC, USAGE_SPECS } from '../src/org/kinds.js';
import type { ApiBucket } from '../src/org/pages.js';
import { bucketsOf, parseDateFlag, resolveRange } from '../src/org/range.js';
import { buildReport, dailyTotals } from '../src/org/report.js';
import { MAX_SERIES, viewsOf } from '../src/org/views.js';

const DAY = 86_400;
const NOV_1 = Date.UTC(2026, 10, 1) / 1000;
const NOW_MS = Date.UTC(2026, 10, 28, 18, 30) / 1;
const NOW = NOW_MS / 1000;

describe('dates and ranges', () => {
  it.each([
    { text: '2026-11-01', expected: NOV_1 },
    { text: String(NOV_1 + 123), expected: NOV_1 + 123 },
    { text: ' 2026-02-28 ', expected: Date.UTC(2026, 1, 28) / 1000 },
  ])('reads $text', ({ text, expected }) => {
    expect(parseDateFlag('start', text)).toBe(expected);
  });

  it.each(['2026-02-30', '2026-13-01', 'yesterday', '2026-11-01T00:00:00Z', '-5', ''])('refuses %j with a message naming the flag', (text) => {
    expect(() => parseDateFlag('start', text)).toThrow(/Expected `start` to be a date YYYY-MM-DD \(UTC\) or Unix seconds/);
  });

  it.each([
    { flags: {}, defaultDays: 30, expected: { startSec: NOW - 30 * DAY, endSec: NOW } },
    { flags: { days: 7 }, defaultDays: 30, expected: { startSec: NOW - 7 * DAY, endSec: NOW } },
    { flags: { start: '2026-11-01' }, defaultDays: 30, expected: { startSec: NOV_1, endSec: NOW } },
    { flags: { start: '2026-11-01', end: '2026-11-03' }, defaultDays: 30, expected: { startSec: NOV_1, endSec: NOV_1 + 2 * DAY } },
    { flags: { end: '2026-11-03' }, defaultDays: 7, expected: { startSec: NOV_1 - 5 * DAY, endSec: NOV_1 + 2 * DAY } },
    { flags: { days: 1.5 }, defaultDays: 30, expected: { startSec: NOW - 1.5 * DAY, endSec: NOW } },
  ])('resolves $flags', ({ flags, defaultDays, expected }) => {
    expect(resolveRange(flags, NOW, defaultDays)).toEqual(expected);
  });

  it.each([
    { flags: { days: 3, start: '2026-11-01' }, message: /--days and --start cannot be used together/ },
    { flags: { days: 3, end: '2026-11-01' }, message: /--days and --end cannot be used together/ },
    { flags: { days: 0 }, message: /Expected `days` to be a number > 0, got `0`/ },
    { flags: { start: '2026-11-03', end: '2026-11-01' }, message: /Expected `end` to be after `start`/ },
    { flags: { start: '2026-11-01', end: '2026-11-01' }, message: /Expected `end` to be after `start`/ },
  ])('refuses $flags', ({ flags, message }) => {
    expect(() => resolveRange(flags, NOW, 30)).toThrow(message);
  });
});

describe('bucketsOf (the API rule: the first bucket starts at start_time, later ones are UTC-aligned)', () => {
  it('cuts the first day bucket at the next midnight and the last at the end', () => {
    const start = NOV_1 + 17 * 3_600 + 31 * 60;
    expect(bucketsOf({ startSec: start, endSec: NOV_1 + 2 * DAY + 600 }, '1d')).toEqual([
      { startSec: start, endSec: NOV_1 + DAY },
      { startSec: NOV_1 + DAY, endSec: NOV_1 + 2 * DAY },
      { startSec: NOV_1 + 2 * DAY, endSec: NOV_1 + 2 * DAY + 600 },
    ]);
  });

  it.each([
    { width: '1h' as const, size: 3_600 },
    { width: '1m' as const, size: 60 },
  ])('aligns $width buckets after the first', ({ width, size }) => {
    const start = NOV_1 + 7 * size + 13;
    const buckets = bucketsOf({ startSec: start, endSec: start + 5 * size }, width);
    expect(buckets[0]).toEqual({ startSec: start, endSec: NOV_1 + 8 * size });
    for (const b of buckets.slice(1)) expect(b.startSec % size).toBe(0);
    expect(buckets.at(-1)?.endSec).toBe(start + 5 * size);
    expect(buckets).toHaveLength(6);
  });
});

describe('argv → options (usage and costs)', () => {
  const io = { env: { OPENAI_ADMIN_KEY: 'sk-admin-x' }, cwd: '/tmp' };
  const usage = (args: Record<string, unknown>) => orgOptionsFromArgs('usage', { format: 'table', threshold: 3.5, ...args }, io, NOW_MS);
  const costs = (args: Record<string, unknown>) => orgOptionsFromArgs('costs', { format: 'table', threshold: 3.5, ...args }, io, NOW_MS);

  it.each([
    {
      name: 'defaults: completions, 30 days of 1d buckets grouped by model',
      options: usage({}),
      expected: { report: { name: 'usage', kind: 'completions' }, bucket: '1d', groupBy: ['model'], range: { startSec: NOW - 30 * DAY, endSec: NOW }, format: 'table', threshold: 3.5, failOnAnomaly: false, pageSize: undefined, batch: undefined },
    },
    { name: '1h buckets default to 7 days', options: usage({ bucket: '1h' }), expected: { bucket: '1h', range: { startSec: NOW - 7 * DAY, endSec: NOW } } },
    { name: '1m buckets default to 1 day', options: usage({ bucket: '1m' }), expected: { bucket: '1m', range: { startSec: NOW - DAY, endSec: NOW } } },
    { name: 'vector stores group by project', options: usage({ kind: 'vector_stores' }), expected: { groupBy: ['project_id'] } },
    { name: 'group-by list, filters, batch', options: usage({ 'group-by': 'model,project_id', models: 'a,b', 'project-ids': ['p1', 'p2'], batch: true }), expected: { groupBy: ['model', 'project_id'], filters: { models: ['a', 'b'], project_ids: ['p1', 'p2'] }, batch: true } },
    { name: '--no-batch', options: usage({ batch: false }), expected: { batch: false } },
    { name: 'group-by none', options: usage({ 'group-by': 'none' }), expected: { groupBy: [] } },
    { name: 'json, threshold, fail-on-anomaly, html, page size', options: usage({ format: 'json', threshold: 5, 'fail-on-anomaly': true, html: 'r.html', 'page-size': 3 }), expected: { format: 'json', threshold: 5, failOnAnomaly: true, htmlPath: 'r.html', pageSize: 3 } },
    { name: 'costs: daily, grouped by line item', options: costs({}), expected: { report: { name: 'costs' }, bucket: '1d', groupBy: ['line_item'] } },
    { name: 'costs by project', options: costs({ 'group-by': 'project_id,line_item', 'project-ids': 'p1' }), expected: { groupBy: ['project_id', 'line_item'], filters: { project_ids: ['p1'] } } },
  ])('$name', ({ options, expected }) => {
    expect(options).toMatchObject(expected);
  });

  it.each([
    { args: { 'group-by': 'line_item' }, make: usage, message: /Expected `group-by` to be among model, project_id, api_key_id, user_id, batch \(or none\) for usage --kind completions, got `line_item`/ },
    { args: { kind: 'embeddings', 'group-by': 'batch' }, make: usage, message: /for usage --kind embeddings, got `batch`/ },
    { args: { kind: 'vector_stores', models: 'x' }, make: usage, message: /--models is not accepted by usage --kind vector_stores/ },
    { args: { kind: 'embeddings', batch: true }, make: usage, message: /--batch\/--no-batch is accepted by usage --kind completions only/ },
    { args: { kind: 'everything' }, make: usage, message: /Expected `kind` to be one of completions, embeddings/ },
    { args: { bucket: '5m' }, make: usage, message: /Expected `bucket` to be one of 1m, 1h, 1d, got `5m`/ },
    { args: { 'page-size': 32 }, make: usage, message: /Expected `page-size` to be at most 31 for 1d buckets, got `32`/ },
    { args: { 'page-size': 0 }, make: usage, message: /Expected `page-size` to be an integer ≥ 1, got `0`/ },
    { args: { models: 'gpt-4o' }, make: costs, message: /--models is not accepted by costs/ },
    { args: { threshold: -1 }, make: costs, message: /Expected `threshold` to be a number ≥ 0, got `-1`/ },
    { args: { format: 'xml' }, make: costs, message: /Expected `format` to be one of table, csv, json, got `xml`/ },
  ])('refuses $args', ({ args, make, message }) => {
    expect(() => make(args)).toThrow(ConfigError);
    expect(() => make(args)).toThrow(message);
  });
});

/** Buckets in the API's shape, for report building without a server. */
function bucket(start: number, end: number, results: Array<Record<string, unknown>>): ApiBucket {
  return { start_time: start, end_time: end, results };
}

describe('buildReport', () => {
  const spec = USAGE_SPECS.completions;
  const start = NOV_1 + 15 * 3_600;
  const result = (model: string, input: number, output: number, extra: Record<string, unknown> = {}) => ({
    object: 'organization.usage.completions.result',
    input_tokens: input,
    output_tokens: output,
    input_cached_tokens: 1,
    num_model_requests: 2,
    model,
    project_id: null,
    ...extra,
  });

  it('flattens each result into a row of group keys and metrics, and totals every metric', () => {
    const built = buildReport({
      spec,
      range: { startSec: start, endSec: NOV_1 + 2 * DAY },
      bucket: '1d',
      groupBy: ['model'],
      buckets: [bucket(start, NOV_1 + DAY, [result('a', 10, 5), result('b', 20, 1)]), bucket(NOV_1 + DAY, NOV_1 + 2 * DAY, [])],
      baseline: [],
      nowSec: NOW,
      threshold: 3.5,
    });
    expect(built.report.rows).toEqual([
      { start_time: start, end_time: NOV_1 + DAY, model: 'a', input_tokens: 10, input_cached_tokens: 1, output_tokens: 5, input_audio_tokens: 0, output_audio_tokens: 0, num_model_requests: 2 },
      { start_time: start, end_time: NOV_1 + DAY, model: 'b', input_tokens: 20, input_cached_tokens: 1, output_tokens: 1, input_audio_tokens: 0, output_audio_tokens: 0, num_model_requests: 2 },
    ]);
    expect(built.report.totals).toEqual({ input_tokens: 30, input_cached_tokens: 2, output_tokens: 6, input_audio_tokens: 0, output_audio_tokens: 0, num_model_requests: 4 });
    expect(Object.keys(JSON.parse(renderJson(built.report)))).toEqual(['range', 'bucket', 'group_by', 'totals', 'rows', 'anomalies']);
  });

  it('takes amount_usd from the Costs API amount and drops binary noise', () => {
    const built = buildReport({
      spec: COSTS_SPEC,
      range: { startSec: NOV_1, endSec: NOV_1 + DAY },
      bucket: '1d',
      groupBy: ['line_item'],
      buckets: [bucket(NOV_1, NOV_1 + DAY, [
        { object: 'organization.costs.result', amount: { value: 0.1, currency: 'usd' }, line_item: 'gpt-4o, input' },
        { object: 'organization.costs.result', amount: { value: 0.2, currency: 'usd' }, line_item: 'gpt-4o, output' },
      ])],
      baseline: [],
      nowSec: NOW,
      threshold: 3.5,
    });
    expect(built.report.totals).toEqual({ amount_usd: 0.3 });
    expect(built.report.rows.map((r) => r.amount_usd)).toEqual([0.1, 0.2]);
  });

  it('counts a day complete when the baseline and the range together cover it and it is over', () => {
    const buckets = [bucket(start, NOV_1 + DAY, [result('a', 10, 0)]), bucket(NOV_1 + DAY, NOV_1 + DAY + 600, [result('a', 7, 0)])];
    const baseline = [bucket(NOV_1, start, [{ input_tokens: 5, output_tokens: 0 }])];
    expect(dailyTotals(spec, [...baseline, ...buckets], NOW)).toEqual([
      { dayStartSec: NOV_1, value: 15, isComplete: true },
      { dayStartSec: NOV_1 + DAY, value: 7, isComplete: false },
    ]);
    // A whole day that is not over yet (a range ending in the future) is not complete either.
    expect(dailyTotals(spec, [bucket(NOV_1, NOV_1 + DAY, [])], NOV_1 + DAY - 1)[0]?.isComplete).toBe(false);
  });
});

describe('renderCsv', () => {
  it('writes ISO times, the group keys, the metrics, and quotes line items with commas', () => {
    const built = buildReport({
      spec: COSTS_SPEC,
      range: { startSec: NOV_1, endSec: NOV_1 + DAY },
      bucket: '1d',
      groupBy: ['line_item', 'project_id'],
      buckets: [bucket(NOV_1, NOV_1 + DAY, [
        { amount: { value: 1.5, currency: 'usd' }, line_item: 'gpt-4o-mini, input', project_id: 'proj_a' },
        { amount: { value: 2, currency: 'usd' }, line_item: 'say "hi"', project_id: null },
      ])],
      baseline: [],
      nowSec: NOW,
      threshold: 3.5,
    });
    expect(renderCsv(built.report, COSTS_SPEC).split('\n')).toEqual([
      'start_time,end_time,line_item,project_id,amount_usd',
      '2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,"gpt-4o-mini, input",proj_a,1.5',
      '2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,"say ""hi""",,2',
      '',
    ]);
  });
});

describe('viewsOf', () => {
  const spec = USAGE_SPECS.completions;
  const models = Array.from({ length: MAX_SERIES + 2 }, (_, i) => `model-${i}`);
  const built = buildReport({
    spec,
    range: { startSec: NOV_1, endSec: NOV_1 + 3 * DAY },
    bucket: '1d',
    groupBy: ['model'],
    buckets: [
      bucket(NOV_1, NOV_1 + DAY, models.map((m, i) => ({ model: m, input_tokens: 100 * (i + 1), output_tokens: 10, num_model_requests: 1 }))),
      bucket(NOV_1 + DAY, NOV_1 + 2 * DAY, []),
      bucket(NOV_1 + 2 * DAY, NOV_1 + 3 * DAY, [{ model: 'model-0', input_tokens: 50, output_tokens: 5, num_model_requests: 3 }]),
    ],
    baseline: [],
    nowSec: NOW,
    threshold: 3.5,
  });
  const views = viewsOf(built.report, spec);

  it('draws input and output tokens per bucket, empty buckets as zero', () => {
    const [tokens] = views.times;
    expect(tokens?.x).toEqual([NOV_1, NOV_1 + DAY, NOV_1 + 2 * DAY]);
    expect(tokens?.series.map((s) => [s.label, s.values])).toEqual([
      ['input tokens', [models.reduce((sum, _, i) => sum + 100 * (i + 1), 0), 0, 50]],
      ['output tokens', [10 * models.length, 0, 5]],
    ]);
  });

  it(`keeps the ${MAX_SERIES - 1} largest models and sums the rest as other`, () => {
    const byModel = views.times[1];
    expect(byModel?.series).toHaveLength(MAX_SERIES);
    expect(byModel?.series[0]?.label).toBe(`model-${models.length - 1}`);
    expect(byModel?.series.at(-1)?.label).toBe('other (3)');
    const total = (byModel?.series ?? []).reduce((sum, s) => sum + s.total, 0);
    expect(total).toBe(built.report.totals.input_tokens! + built.report.totals.output_tokens!);
  });

  it("gives each model's share of tokens and of requests, each adding up to 1", () => {
    const [share] = views.shares;
    expect(share?.measures).toEqual(['tokens', 'requests']);
    for (const i of [0, 1]) expect(share?.items.reduce((sum, item) => sum + (item.shares[i] ?? 0), 0)).toBeCloseTo(1, 12);
    expect(share?.items.find((item) => item.label === 'model-0')?.values).toEqual([110 + 55, 4]);
  });
});
