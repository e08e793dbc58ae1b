// `oai-batch monitor` (DESIGN.md §8): flags, the snapshot of one poll against
// the simulator's ground truth, the label bound, the polling loop (injected
// clock), the gauges, and the command as a process (SIGTERM → exit 0, a
// failed poll keeps the last values, a refused key exits 1).

import { describe, expect, it } from 'vitest';
import { monitorCommand, type MonitorCliOptions } from '../src/cli/monitor.js';
import { createOrgMetrics } from '../src/observe/org-metrics.js';
import { monthBounds } from '../src/org/forecast.js';
import { runMonitorLoop } from '../src/org/monitor.js';
import type { ApiBucket } from '../src/org/pages.js';
import { DAY_SECONDS, dayStart } from '../src/org/range.js';
import { buildSnapshot, historyStartSec, OTHER, type OrgSnapshot } from '../src/org/snapshot.js';
import { parseDurationMs } from '../src/shared/duration.js';
import { createOrgRoutes, spikeDaySec, syntheticCosts, syntheticUsage, type OrgHistoryConfig } from '../src/sim/org.js';
import { startSimulator } from '../src/sim/server.js';
import type { Route } from '../src/sim/route.js';
import { optionsOf } from './support/argv.js';
import { parseExposition, startMonitor, sumOf } from './support/prometheus.js';

const DAY = DAY_SECONDS;
const CONFIG: OrgHistoryConfig = { seed: 7, anchorDaySec: Date.UTC(2026, 5, 20) / 1000 };
/** Mid-afternoon of the anchor day: today is partial, the month has 19 whole days. */
const NOW = CONFIG.anchorDaySec + 15 * 3600;

describe('monitor flags', () => {
  const base: Partial<MonitorCliOptions> = { intervalMs: 300_000, metricsPort: 9465, metricsHost: '127.0.0.1', top: 10, maxAttempts: 6, timeoutMs: 60_000, quiet: false };
  it.each<[string[], Partial<MonitorCliOptions>]>([
    [[], base],
    [['--interval', '30s'], { intervalMs: 30_000 }],
    [['--interval', '1h'], { intervalMs: 3_600_000 }],
    [['--interval', '90'], { intervalMs: 90_000 }],
    [['--interval', '1m30s'], { intervalMs: 90_000 }],
    [['--metrics-port', '0', '--metrics-host', '0.0.0.0'], { metricsPort: 0, metricsHost: '0.0.0.0' }],
    [['--top', '3', '--quiet', '--timeout', '5', '--max-attempts', '2'], { top: 3, quiet: true, timeoutMs: 5_000, maxAttempts: 2 }],
  ])('%j', (argv, expected) => {
    expect(optionsOf(monitorCommand, ['monitor', ...argv])).toMatchObject(expected);
  });

  it.each([
    [['--interval', 'soon'], 'Expected `interval` to be a duration of at least 1s such as 30s, 5m or 1h, got `soon`'],
    [['--interval', '500ms'], 'got `500ms`'],
    [['--top', '0'], 'Expected `top` to be an integer ≥ 1, got `0`'],
    [['--metrics-port', '70000'], 'Expected `metrics-port` to be a port from 0 to 65535, got `70000`'],
  ])('%j is refused', (argv, message) => {
    expect(() => optionsOf(monitorCommand, ['monitor', ...argv])).toThrow(message);
  });

  it('takes the admin key from OPENAI_ADMIN_KEY', () => {
    expect(optionsOf(monitorCommand, ['monitor'], { OPENAI_ADMIN_KEY: 'sk-admin-x' }).connection.adminKey).toBe('sk-admin-x');
  });
});

describe('parseDurationMs', () => {
  it.each<[string | number, number | null]>([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['250ms', 250],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['45', 45_000],
    [' 5M ', 300_000],
    [60, 60_000],
    ['', null],
    ['5 minutes', null],
    ['-5s', null],
    ['m', null],
  ])('%j → %j', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });
});

/** The buckets the monitor asks for, from the simulator's ground truth. */
function pollBuckets(config: OrgHistoryConfig, nowSec: number): { costs: ApiBucket[]; completions: ApiBucket[]; embeddings: ApiBucket[] } {
  const start = historyStartSec(nowSec);
  const monthStart = monthBounds(nowSec).startSec;
  return {
    costs: syntheticCosts({ startSec: start, endSec: nowSec, groupBy: ['line_item', 'project_id'], filters: {} }, config),
    completions: syntheticUsage('completions', { startSec: start, endSec: nowSec, width: '1d', groupBy: ['model', 'project_id'], filters: {} }, config),
    embeddings: syntheticUsage('embeddings', { startSec: monthStart, endSec: nowSec, width: '1d', groupBy: ['model', 'project_id'], filters: {} }, config),
  };
}

function totalOf(buckets: ApiBucket[], pick: (r: Record<string, unknown>) => number): number {
  return buckets.flatMap((b) => b.results).reduce((sum, r) => sum + pick(r), 0);
}
const amount = (r: Record<string, unknown>): number => (r.amount as { value: number }).value;
const field = (name: string) => (r: Record<string, unknown>): number => (r[name] as number | undefined) ?? 0;
const sum = <T>(rows: readonly T[], pick: (row: T) => number): number => rows.reduce((s, r) => s + pick(r), 0);

describe('buildSnapshot', () => {
  it("sums to the Costs and Usage APIs' totals for today and the month, whatever the label bound", () => {
    const monthStart = monthBounds(NOW).startSec;
    const today = dayStart(NOW);
    const costTruth = (from: number): number => totalOf(syntheticCosts({ startSec: from, endSec: NOW, groupBy: [], filters: {} }, CONFIG), amount);
    const usageTruth = (from: number, name: string): number =>
      totalOf(syntheticUsage('completions', { startSec: from, endSec: NOW, width: '1d', groupBy: [], filters: {} }, CONFIG), field(name)) +
      totalOf(syntheticUsage('embeddings', { startSec: from, endSec: NOW, width: '1d', groupBy: [], filters: {} }, CONFIG), field(name));
    for (const top of [1, 3, 100]) {
      const snapshot = buildSnapshot({ nowSec: NOW, top, ...pollBuckets(CONFIG, NOW) });
      for (const [period, from] of [['today', today], ['month', monthStart]] as const) {
        expect(sum(snapshot.cost.filter((c) => c.period === period), (c) => c.usd)).toBeCloseTo(costTruth(from), 6);
        const tokens = snapshot.tokens.filter((t) => t.period === period);
        expect(sum(tokens.filter((t) => t.kind === 'input'), (t) => t.tokens)).toBe(usageTruth(from, 'input_tokens'));
        expect(sum(tokens.filter((t) => t.kind === 'cached_input'), (t) => t.tokens)).toBe(usageTruth(from, 'input_cached_tokens'));
        expect(sum(tokens.filter((t) => t.kind === 'output'), (t) => t.tokens)).toBe(usageTruth(from, 'output_tokens'));
        expect(sum(snapshot.requests.filter((r) => r.period === period), (r) => r.requests)).toBe(usageTruth(from, 'num_model_requests'));
      }
      expect(snapshot.forecast.monthToDate).toBeCloseTo(costTruth(monthStart), 6);
    }
  });

  it('keeps the top N values of each label and folds the rest into `other`', () => {
    const snapshot = buildSnapshot({ nowSec: NOW, top: 2, ...pollBuckets(CONFIG, NOW) });
    const values = (rows: Array<Record<string, unknown>>, label: string): Set<unknown> => new Set(rows.map((r) => r[label]));
    for (const [rows, label] of [
      [snapshot.cost, 'line_item'],
      [snapshot.cost, 'project_id'],
      [snapshot.tokens, 'model'],
      [snapshot.requests, 'project_id'],
    ] as const) {
      const seen = values(rows as unknown as Array<Record<string, unknown>>, label);
      expect(seen.size, label).toBeLessThanOrEqual(3);
      expect(seen.has(OTHER), label).toBe(true);
    }
    // The two models with the most tokens (input + output) this month keep their names.
    const byModel = new Map<string, number>();
    const monthStart = monthBounds(NOW).startSec;
    for (const kind of ['completions', 'embeddings'] as const) {
      for (const r of syntheticUsage(kind, { startSec: monthStart, endSec: NOW, width: '1d', groupBy: ['model'], filters: {} }, CONFIG).flatMap((b) => b.results)) {
        byModel.set(r.model as string, (byModel.get(r.model as string) ?? 0) + field('input_tokens')(r) + field('output_tokens')(r));
      }
    }
    const top2 = [...byModel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([model]) => model);
    expect(byModel.size).toBeGreaterThan(3);
    expect([...values(snapshot.tokens as unknown as Array<Record<string, unknown>>, 'model')].sort()).toEqual([...top2, OTHER].sort());
  });

  it('gives every series of the month a value today too (0 when nothing was spent today), and names a missing project `none`', () => {
    const day = (d: number): number => Date.UTC(2026, 5, d) / 1000;
    const bucket = (start: number, results: Array<Record<string, unknown>>): ApiBucket => ({ start_time: start, end_time: start + DAY, results });
    const cost = (line: string, project: string | null, usd: number): Record<string, unknown> => ({ line_item: line, project_id: project, amount: { value: usd, currency: 'usd' } });
    const snapshot = buildSnapshot({
      nowSec: day(20) + 3600,
      top: 10,
      costs: [bucket(day(3), [cost('gpt-4o, input', 'proj_a', 2)]), bucket(day(20), [cost('gpt-4o, output', null, 1)])],
      completions: [],
      embeddings: [],
    });
    expect(snapshot.cost).toEqual([
      { period: 'today', line_item: 'gpt-4o, input', project_id: 'proj_a', usd: 0 },
      { period: 'today', line_item: 'gpt-4o, output', project_id: 'none', usd: 1 },
      { period: 'month', line_item: 'gpt-4o, input', project_id: 'proj_a', usd: 2 },
      { period: 'month', line_item: 'gpt-4o, output', project_id: 'none', usd: 1 },
    ]);
  });

  it("scores the last complete day: the simulator's spike day stands out the day after, an ordinary day does not", () => {
    const spike = spikeDaySec(CONFIG);
    const after = buildSnapshot({ nowSec: spike + DAY + 600, top: 10, ...pollBuckets(CONFIG, spike + DAY + 600) });
    for (const metric of ['cost', 'tokens'] as const) {
      const judged = after.anomaly[metric];
      expect(judged.verdict, metric).toBe('scored');
      expect(judged.verdict === 'scored' && judged.score, metric).toBeGreaterThan(3.5);
      expect(judged.dayStartSec).toBe(spike);
    }
    const ordinary = buildSnapshot({ nowSec: NOW, top: 10, ...pollBuckets(CONFIG, NOW) });
    const cost = ordinary.anomaly.cost;
    expect(cost.verdict).toBe('scored');
    expect(cost.verdict === 'scored' && cost.score).toBeLessThan(3.5);
  });
});

const snapshotAt = (asOfSec: number, usd: number): OrgSnapshot => ({
  ...buildSnapshot({
    nowSec: asOfSec,
    top: 10,
    costs: [{ start_time: dayStart(asOfSec), end_time: asOfSec, results: [{ line_item: 'gpt-4o, input', project_id: 'proj_a', amount: { value: usd, currency: 'usd' } }] }],
    completions: [],
    embeddings: [],
  }),
});

describe('runMonitorLoop', () => {
  it('polls every interval, reports good and failed polls in order, and returns when stopped', async () => {
    let clock = 0;
    const waits: number[] = [];
    const stop = new AbortController();
    const log: string[] = [];
    const outcomes = ['ok', 'fail', 'ok', 'stop'];
    await runMonitorLoop({
      intervalMs: 60_000,
      signal: stop.signal,
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
      poll: async () => {
        clock += 2_000; // each poll takes 2 s
        const outcome = outcomes.shift();
        if (outcome === 'stop') stop.abort();
        if (outcome === 'fail') throw new Error('503');
        return snapshotAt(clock / 1000, 1);
      },
      onSnapshot: (s, tookMs) => log.push(`ok@${s.asOfSec}+${tookMs}`),
      onError: (e) => log.push(`error ${(e as Error).message}`),
    });
    expect(log).toEqual(['ok@2+2000', 'error 503', 'ok@122+2000']);
    // Fixed rate: the next poll starts one interval after the previous one started.
    expect(waits).toEqual([58_000, 58_000, 58_000]);
  });

  it('skips the slots a long poll overran instead of polling back to back', async () => {
    let clock = 0;
    const starts: number[] = [];
    const stop = new AbortController();
    await runMonitorLoop({
      intervalMs: 10_000,
      signal: stop.signal,
      now: () => clock,
      sleep: async (ms) => void (clock += ms),
      poll: async () => {
        starts.push(clock);
        clock += starts.length === 1 ? 25_000 : 1_000;
        if (starts.length === 3) stop.abort();
        return snapshotAt(clock / 1000, 1);
      },
      onSnapshot: () => {},
      onError: () => {},
    });
    expect(starts).toEqual([0, 30_000, 40_000]);
  });

  it('a stop during the wait ends the loop at once', async () => {
    const stop = new AbortController();
    let polls = 0;
    const loop = runMonitorLoop({
      intervalMs: 3_600_000,
      signal: stop.signal,
      poll: async () => {
        polls += 1;
        return snapshotAt(1_000_000, 1);
      },
      onSnapshot: () => stop.abort(),
      onError: () => {},
    });
    await loop;
    expect(polls).toBe(1);
  });
});

describe('createOrgMetrics', () => {
  it('exports the snapshot, keeps it through a failed poll and counts the failure, and drops series that left', async () => {
    const metrics = createOrgMetrics({ processMetrics: false });
    const first = snapshotAt(NOW, 5);
    metrics.update(first);
    metrics.pollFailed();
    let samples = parseExposition(await metrics.registry.metrics());
    expect(sumOf(samples, 'oai_org_cost_usd', { period: 'today' })).toBe(5);
    expect(sumOf(samples, 'oai_org_last_poll_timestamp_seconds')).toBe(NOW);
    expect(sumOf(samples, 'oai_org_poll_errors_total')).toBe(1);
    expect(samples.filter((s) => s.name === 'oai_org_cost_forecast_usd').map((s) => s.labels.bound).sort()).toEqual(['expected', 'high', 'low']);

    const second: OrgSnapshot = { ...first, asOfSec: NOW + 300, cost: [{ period: 'today', line_item: 'gpt-4o, output', project_id: 'proj_b', usd: 7 }] };
    metrics.update(second);
    samples = parseExposition(await metrics.registry.metrics());
    expect(samples.filter((s) => s.name === 'oai_org_cost_usd').map((s) => s.labels.line_item)).toEqual(['gpt-4o, output']);
    expect(sumOf(samples, 'oai_org_last_poll_timestamp_seconds')).toBe(NOW + 300);
  });

  it('has no last-poll time before the first good poll, and no anomaly score for a day that cannot be scored', async () => {
    const metrics = createOrgMetrics({ processMetrics: false });
    metrics.pollFailed();
    let samples = parseExposition(await metrics.registry.metrics());
    expect(samples.map((s) => s.name)).toEqual(['oai_org_poll_errors_total']);
    metrics.update(snapshotAt(NOW, 1)); // one day of data: nothing to judge against
    samples = parseExposition(await metrics.registry.metrics());
    expect(samples.filter((s) => s.name === 'oai_org_anomaly_score')).toEqual([]);
  });
});

/** The org routes of a simulator, failing with a 500 while `state.failing` is true. */
function flakyOrgRoutes(state: { failing: boolean }): Route[] {
  return createOrgRoutes().map((route) => ({
    ...route,
    handler: (ctx) => (state.failing ? ctx.sendError(500, 'server_error', null, 'The server had an error') : route.handler(ctx)),
  }));
}

describe('oai-batch monitor as a process', () => {
  it('serves the gauges of a poll against the simulator and exits 0 on SIGTERM', async () => {
    const monitor = await startMonitor(['--simulate', '--interval', '1h']);
    const samples = parseExposition(await monitor.scrapeAfterPolls(1));
    // (Empty only in the first minutes of a month, before the synthetic organisation's first burst of the 1st.)
    expect(samples.filter((s) => s.name === 'oai_org_cost_usd' && s.labels.period === 'month').length).toBeGreaterThan(0);
    expect(samples.filter((s) => s.name === 'oai_org_tokens' && s.labels.kind === 'input').length).toBeGreaterThan(0);
    expect(sumOf(samples, 'oai_org_cost_forecast_usd', { bound: 'expected' })).toBeGreaterThanOrEqual(sumOf(samples, 'oai_org_cost_usd', { period: 'month' }));
    expect(sumOf(samples, 'oai_org_last_poll_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 120);
    const result = await monitor.stop();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('monitor: stopped');
  }, 60_000);

  it('keeps the last values through failed polls and counts them', async () => {
    const state = { failing: false };
    const adminKey = 'sk-admin-monitor-test-0123456789';
    const sim = await startSimulator({ adminKey, routes: flakyOrgRoutes(state) });
    const monitor = await startMonitor(['--base-url', sim.url, '--interval', '1s', '--max-attempts', '1'], { OPENAI_ADMIN_KEY: adminKey });
    try {
      const good = parseExposition(await monitor.scrapeAfterPolls(1));
      state.failing = true;
      const until = Date.now() + 30_000;
      let samples = good;
      while (sumOf(samples, 'oai_org_poll_errors_total') < 2 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200));
        samples = parseExposition(await (await fetch(monitor.metricsUrl)).text());
      }
      expect(sumOf(samples, 'oai_org_poll_errors_total')).toBeGreaterThanOrEqual(2);
      for (const name of ['oai_org_cost_usd', 'oai_org_tokens', 'oai_org_requests', 'oai_org_last_poll_timestamp_seconds']) {
        expect(sumOf(samples, name), name).toBe(sumOf(good, name));
      }
      expect(monitor.stderr()).toMatch(/poll failed, keeping the last values: 500/);
      const result = await monitor.stop();
      expect(result.code).toBe(0);
      expect(result.stdout + result.stderr).not.toContain(adminKey);
    } finally {
      await monitor.stop();
      await sim.close();
    }
  }, 60_000);

  it('exits 1 with one clear line when the admin key is refused on the first poll, never printing it', async () => {
    const sim = await startSimulator({ adminKey: 'sk-admin-the-right-one-000000' });
    const key = 'sk-admin-wrong-key-secret-111122223333';
    const monitor = await startMonitor(['--base-url', sim.url], { OPENAI_ADMIN_KEY: key });
    const result = await monitor.exited;
    await sim.close();
    expect(result.code).toBe(1);
    expect(monitor.stderr()).toMatch(/401/);
    expect(monitor.stderr()).not.toContain(key);
  }, 60_000);
});
