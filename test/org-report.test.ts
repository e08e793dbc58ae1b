// `oai-batch usage` and `oai-batch costs` against the simulator over real
// HTTP (the CLI run in-process): totals equal the data the simulator
// generated across pages and bucket widths, group_by and filters, the spike
// day flagged and ordinary days not, and each output format.

import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { USAGE_SPECS } from '../src/org/kinds.js';
import type { ApiBucket } from '../src/org/pages.js';
import { isoDate } from '../src/org/range.js';
import type { OrgReport } from '../src/org/report.js';
import { createOrgRoutes, spikeDaySec, syntheticCosts, syntheticUsage, type OrgHistoryConfig, type OrgSimQuery } from '../src/sim/org.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';

const DAY = 86_400;
const ADMIN_KEY = 'sk-admin-org-report-test-0123456789';
/** A pinned history: the same data whatever day the tests run. */
const CONFIG: OrgHistoryConfig = { seed: 1, anchorDaySec: Date.UTC(2026, 5, 1) / 1000 };
const ANCHOR = CONFIG.anchorDaySec;
const SPIKE = spikeDaySec(CONFIG);

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ adminKey: ADMIN_KEY, routes: createOrgRoutes(CONFIG) });
});
afterAll(async () => {
  await sim.close();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process against the simulator, with the admin key in the environment. */
async function cli(args: string[], env: Record<string, string | undefined> = { OPENAI_ADMIN_KEY: ADMIN_KEY }): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString('utf8')));
  stderr.on('data', (chunk: Buffer) => err.push(chunk.toString('utf8')));
  const code = await main([...args, '--base-url', sim.url], {
    stdin: new PassThrough(),
    stdout,
    stderr,
    env,
    cwd: process.cwd(),
    signal: new AbortController().signal,
    force: new AbortController().signal,
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

async function json(args: string[]): Promise<OrgReport> {
  const result = await cli([...args, '--format', 'json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as OrgReport;
}

/** The ground truth's results as report rows: group keys, then the spec's metrics. */
function rowsOf(buckets: ApiBucket[], groupBy: string[], metrics: readonly string[]): Array<Record<string, unknown>> {
  return buckets.flatMap((b) =>
    b.results.map((r) => ({
      start_time: b.start_time,
      end_time: b.end_time,
      ...Object.fromEntries(groupBy.map((k) => [k, r[k] ?? null])),
      ...Object.fromEntries(metrics.map((m) => [m, m === 'amount_usd' ? (r.amount as { value: number }).value : (r[m] ?? 0)])),
    })),
  );
}

function sumOf(rows: Array<Record<string, unknown>>, metric: string): number {
  return rows.reduce((s, r) => s + (r[metric] as number), 0);
}

describe('usage totals equal the data the simulator generated', () => {
  const metrics = USAGE_SPECS.completions.metrics;
  const cases: Array<{ name: string; width: '1d' | '1h' | '1m'; start: number; end: number; pageSize?: number }> = [
    { name: '1d buckets, one page, a start that is not midnight', width: '1d', start: ANCHOR - 40 * DAY + 5 * 3_600 + 7, end: ANCHOR - 3 * DAY },
    { name: '1d buckets, 5 per page', width: '1d', start: ANCHOR - 40 * DAY + 5 * 3_600 + 7, end: ANCHOR - 3 * DAY, pageSize: 5 },
    { name: '1h buckets, 7 per page', width: '1h', start: ANCHOR - 3 * DAY + 17 * 60, end: ANCHOR - DAY },
    { name: '1m buckets across midnight, 50 per page', width: '1m', start: ANCHOR - 10 * DAY - 3_600 - 7 * 60, end: ANCHOR - 10 * DAY + 2 * 3_600 },
  ];

  it.each(cases)('$name', async ({ width, start, end, pageSize }) => {
    const args = ['usage', '--start', String(start), '--end', String(end), '--bucket', width, '--group-by', 'model'];
    if (pageSize) args.push('--page-size', String(pageSize));
    const report = await json(args);
    const query: OrgSimQuery = { startSec: start, endSec: end, width, groupBy: ['model'], filters: {} };
    const truth = rowsOf(syntheticUsage('completions', query, CONFIG), ['model'], metrics);
    expect(report.rows).toEqual(truth);
    for (const metric of metrics) expect(report.totals[metric]).toBe(sumOf(truth, metric));
    expect(report.totals.input_tokens).toBeGreaterThan(0);
    expect(report).toMatchObject({ range: { start, end }, bucket: width, group_by: ['model'] });
  });

  it('gives the same totals at every bucket width over the same range', async () => {
    const start = ANCHOR - 4 * DAY + 1_000;
    const end = ANCHOR - 2 * DAY - 500;
    const totals = await Promise.all(
      (['1d', '1h', '1m'] as const).map(async (width) => (await json(['usage', '--start', String(start), '--end', String(end), '--bucket', width, '--group-by', 'none'])).totals),
    );
    expect(totals[1]).toEqual(totals[0]);
    expect(totals[2]).toEqual(totals[0]);
  });

  it('follows every page at the API default page sizes (a CLI page size of 1 bucket)', async () => {
    const start = ANCHOR - 12 * DAY;
    const end = ANCHOR - 2 * DAY;
    const report = await json(['usage', '--start', String(start), '--end', String(end), '--page-size', '1', '--group-by', 'none']);
    expect(report.rows).toHaveLength(10);
    const truth = syntheticUsage('completions', { startSec: start, endSec: end, width: '1d', groupBy: [], filters: {} }, CONFIG);
    expect(report.totals.num_model_requests).toBe(truth.reduce((s, b) => s + (b.results[0]?.num_model_requests as number), 0));
  });
});

describe('group_by and filters', () => {
  const start = ANCHOR - 20 * DAY;
  const end = ANCHOR - 10 * DAY;
  const range = ['--start', String(start), '--end', String(end)];

  it('groups by model and project and filters by model', async () => {
    const report = await json(['usage', ...range, '--group-by', 'model,project_id', '--models', 'gpt-4o-2024-08-06']);
    expect(new Set(report.rows.map((r) => r.model))).toEqual(new Set(['gpt-4o-2024-08-06']));
    expect(new Set(report.rows.map((r) => r.project_id))).toEqual(new Set(['proj_sim_web', 'proj_sim_data']));
    const truth = syntheticUsage('completions', { startSec: start, endSec: end, width: '1d', groupBy: ['model', 'project_id'], filters: { models: ['gpt-4o-2024-08-06'] } }, CONFIG);
    expect(report.rows).toEqual(rowsOf(truth, ['model', 'project_id'], USAGE_SPECS.completions.metrics));
  });

  it('filters by project and by the Batch API flag', async () => {
    const batchOnly = await json(['usage', ...range, '--group-by', 'batch,project_id', '--batch']);
    expect(batchOnly.rows.every((r) => r.batch === true && r.project_id === 'proj_sim_data')).toBe(true);
    const withoutBatch = await json(['usage', ...range, '--group-by', 'batch', '--no-batch']);
    expect(withoutBatch.rows.every((r) => r.batch === false)).toBe(true);
    const all = await json(['usage', ...range, '--group-by', 'none']);
    expect(batchOnly.totals.input_tokens! + withoutBatch.totals.input_tokens!).toBe(all.totals.input_tokens);
    const support = await json(['usage', ...range, '--project-ids', 'proj_sim_support', '--group-by', 'project_id']);
    expect(new Set(support.rows.map((r) => r.project_id))).toEqual(new Set(['proj_sim_support']));
  });

  it('reports other kinds with their own metrics', async () => {
    const report = await json(['usage', ...range, '--kind', 'embeddings']);
    expect(Object.keys(report.totals)).toEqual(['input_tokens', 'num_model_requests']);
    expect(report.rows[0]).toMatchObject({ model: 'text-embedding-3-small' });
    const sessions = await json(['usage', ...range, '--kind', 'code_interpreter_sessions']);
    expect(Object.keys(sessions.rows[0] ?? {})).toEqual(['start_time', 'end_time', 'project_id', 'num_sessions']);
  });

  it('reports costs by line item and project, equal to the simulator’s costs', async () => {
    const report = await json(['costs', ...range, '--group-by', 'line_item,project_id', '--page-size', '3']);
    const truth = rowsOf(syntheticCosts({ startSec: start, endSec: end, groupBy: ['line_item', 'project_id'], filters: {} }, CONFIG), ['line_item', 'project_id'], ['amount_usd']);
    expect(report.rows.map((r) => [r.start_time, r.line_item, r.project_id])).toEqual(truth.map((r) => [r.start_time, r.line_item, r.project_id]));
    report.rows.forEach((row, i) => expect(row.amount_usd).toBeCloseTo(truth[i]?.amount_usd as number, 9));
    expect(report.totals.amount_usd).toBeCloseTo(sumOf(truth, 'amount_usd'), 8);
    const data = await json(['costs', ...range, '--project-ids', 'proj_sim_data', '--group-by', 'project_id']);
    expect(new Set(data.rows.map((r) => r.project_id))).toEqual(new Set(['proj_sim_data']));
  });
});

describe('anomalies', () => {
  it('flags the spike day in usage, and no more than a couple of other days', async () => {
    const report = await json(['usage', '--start', String(ANCHOR - 60 * DAY), '--end', String(ANCHOR)]);
    const dates = report.anomalies.map((a) => a.date);
    expect(dates).toContain(isoDate(SPIKE));
    expect(dates.length).toBeLessThanOrEqual(3);
    const spike = report.anomalies.find((a) => a.date === isoDate(SPIKE));
    expect(spike).toMatchObject({ metric: 'tokens' });
    expect(spike!.value).toBeGreaterThan(2 * spike!.baseline);
    expect(spike!.score).toBeGreaterThan(3.5);
  });

  it('flags the spike day in costs', async () => {
    const report = await json(['costs', '--start', String(ANCHOR - 30 * DAY), '--end', String(ANCHOR)]);
    expect(report.anomalies.map((a) => a.date)).toContain(isoDate(SPIKE));
    expect(report.anomalies.find((a) => a.date === isoDate(SPIKE))?.metric).toBe('amount_usd');
    expect(report.anomalies.length).toBeLessThanOrEqual(3);
  });

  it('flags no ordinary day, judged against baseline days fetched from before the range', async () => {
    // 60 ordinary days before the spike; the first days' baselines come from the 14 days before --start.
    for (const args of [['usage'], ['usage', '--kind', 'embeddings'], ['costs']]) {
      const report = await json([...args, '--start', String(ANCHOR - 75 * DAY), '--end', String(SPIKE)]);
      expect(report.anomalies, args.join(' ')).toEqual([]);
    }
    const result = await cli(['usage', '--start', String(ANCHOR - 75 * DAY), '--end', String(SPIKE)]);
    expect(result.stdout).toMatch(/No anomalies in daily tokens: 66 days judged against the trailing 14 days/);
  });

  it('judges a short range too: a one-day report of the spike day flags it', async () => {
    const report = await json(['costs', '--start', isoDate(SPIKE), '--end', isoDate(SPIKE + DAY)]);
    expect(report.anomalies.map((a) => a.date)).toEqual([isoDate(SPIKE)]);
  });

  it('honours --threshold', async () => {
    const args = ['usage', '--start', String(ANCHOR - 30 * DAY), '--end', String(ANCHOR)];
    expect((await json([...args, '--threshold', '1000'])).anomalies).toEqual([]);
  });
});

describe('formats', () => {
  const range = ['--start', String(SPIKE - 20 * DAY), '--end', String(SPIKE + 5 * DAY)];

  it('json is exactly {range, bucket, group_by, totals, rows, anomalies}', async () => {
    const report = await json(['usage', ...range, '--group-by', 'model,batch']);
    expect(Object.keys(report)).toEqual(['range', 'bucket', 'group_by', 'totals', 'rows', 'anomalies']);
    expect(Object.keys(report.range)).toEqual(['start', 'end']);
    expect(Object.keys(report.rows[0] ?? {})).toEqual(['start_time', 'end_time', 'model', 'batch', ...USAGE_SPECS.completions.metrics]);
    expect(Object.keys(report.anomalies[0] ?? {})).toEqual(['date', 'metric', 'value', 'baseline', 'score']);
    const costs = await json(['costs', ...range]);
    expect(Object.keys(costs.totals)).toEqual(['amount_usd']);
    expect(Object.keys(costs.rows[0] ?? {})).toEqual(['start_time', 'end_time', 'line_item', 'amount_usd']);
  });

  it('csv has a header and one line per row, and says the anomalies on stderr', async () => {
    const report = await json(['costs', ...range]);
    const result = await cli(['costs', ...range, '--format', 'csv']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('start_time,end_time,line_item,amount_usd');
    expect(lines).toHaveLength(report.rows.length + 1);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,"[^"]+, [a-z ]+",[0-9.e-]+$/);
    expect(result.stderr).toContain(`Anomalies in daily cost`);
    expect(result.stderr).toContain(isoDate(SPIKE));
  });

  it('table shows per-day totals, the top groups, anomalies and the charts under them', async () => {
    const result = await cli(['usage', ...range]);
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/^Usage: completions · .* UTC · 1d buckets · grouped by model\n/);
    expect(out).toMatch(/│ day \(UTC\)\s+│\s+input │\s+cached │\s+output │/);
    expect(out).toMatch(/│ model\s+│\s+input │\s+cached │\s+output │.*│\s+share │/);
    expect(out).toMatch(/\d+ rows in all: --format csv or --format json prints every one\./);
    expect(out).toContain(`Anomalies in daily tokens`);
    expect(out).toContain(`  ${isoDate(SPIKE)}  `);
    // The asciichart line chart, sparklines, and share bars.
    expect(out).toMatch(/Input tokens and output tokens per day, /);
    expect(out).toMatch(/┤/);
    expect(out).toMatch(/ {2}input tokens\s+[▁▂▃▄▅▆▇█ ]{25}\s+\S+/);
    expect(out).toMatch(/Tokens by model per day/);
    expect(out).toMatch(/Share by model\s+tokens\s+requests/);
    expect(out).toMatch(/gpt-4o-mini-2024-07-18\s+█+░*\s+\d+\.\d%/);
    const costs = await cli(['costs', ...range]);
    expect(costs.stdout).toMatch(/Cost per day, USD/);
    expect(costs.stdout).toMatch(/Cost by line item per day, USD/);
    expect(costs.stdout).toMatch(/gpt-4o, output\s+[▁▂▃▄▅▆▇█ ]+\s+\$\d/);
  });
});

describe('the admin key', () => {
  it('is required, with a clear message, and never printed', async () => {
    const missing = await cli(['usage', '--days', '3'], {});
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^oai-batch: OPENAI_ADMIN_KEY is not set: the Usage and Cost APIs need an organisation admin key/);
    const wrongKey = 'sk-admin-wrong-but-secret-987654321';
    const wrong = await cli(['costs', '--days', '3'], { OPENAI_ADMIN_KEY: wrongKey });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401/);
    expect(wrong.stderr + wrong.stdout).not.toContain(wrongKey);
  });
});
