// monitoring/ checked with the real Prometheus tools (Debian's `prometheus`
// package): the config, the alert rules and their unit tests, the Grafana
// dashboard (valid, every query parses and names a metric the code exports),
// `promtool check metrics` on a run's and the monitor's /metrics, and a real
// prometheus scraping `oai-batch monitor` whose month-to-date cost in PromQL
// equals the simulator's ground truth. Skipped, saying so, without the tools.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRunMetrics } from '../src/observe/metrics.js';
import { createOrgMetrics, ORG_METRIC_NAMES } from '../src/observe/org-metrics.js';
import { monthBounds } from '../src/org/forecast.js';
import { dayStart } from '../src/org/range.js';
import { syntheticCosts } from '../src/sim/org.js';
import type { Registry } from 'prom-client';
import { startCli } from './support/cli.js';
import { chatLine, tempDir, writeJsonl } from './support/files.js';
import { MISSING_PROMETHEUS, MISSING_PROMTOOL, PROMETHEUS, PROMTOOL, promtool, startMonitor, startPrometheus } from './support/prometheus.js';
import { metricNamesOf, rulesOf } from './support/promql.js';

const ROOT = join(import.meta.dirname, '..');
const MONITORING = join(ROOT, 'monitoring');
const RULES = join(MONITORING, 'rules', 'oai-batch.rules.yml');
const RULE_TESTS = join(MONITORING, 'rules', 'oai-batch.rules.test.yml');
const DASHBOARD = join(MONITORING, 'grafana', 'oai-batch.dashboard.json');

interface Target {
  expr: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

async function dashboard(): Promise<{ uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: Array<Record<string, unknown>> } }> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8'));
}

/** Every panel, those inside rows included. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** The names a registry's exposition has: histograms as _bucket, _sum and _count. */
function exposedNames(registry: Registry): string[] {
  return registry.getMetricsAsArray().flatMap((m) => {
    const { name, type } = m as unknown as { name: string; type: string };
    return type === 'histogram' || type === 'summary' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
  });
}

/** What a query may name: the run's and the monitor's metrics, the rules' recorded series, and Prometheus's own `up`. */
async function knownNames(): Promise<Set<string>> {
  const recorded = rulesOf(await readFile(RULES, 'utf8'))
    .filter((r) => r.kind === 'record')
    .map((r) => r.name);
  return new Set([
    ...exposedNames(createRunMetrics({ processMetrics: false }).registry),
    ...exposedNames(createOrgMetrics({ processMetrics: false }).registry),
    ...recorded,
    'up',
  ]);
}

/** Grafana's variables replaced by what they stand for, so promtool can parse the query. */
function withoutVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?\w+\}?/g, '.*');
}

describe('the Grafana dashboard', () => {
  it('is dashboard JSON Grafana imports: uid, title, schema version, unique ids, panels on the 24-column grid, a Prometheus data source variable', async () => {
    const d = await dashboard();
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(d.title).toBeTruthy();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const panels = allPanels(d.panels);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const known = ['row', 'timeseries', 'stat', 'bargauge', 'piechart', 'gauge', 'table'];
    const cells = new Set<string>();
    for (const p of panels) {
      expect(known, p.title).toContain(p.type);
      const { h, w, x, y } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          expect(cells.has(`${row}:${col}`), `${p.title} overlaps another panel`).toBe(false);
          cells.add(`${row}:${col}`);
        }
      }
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
  });

  it('has the panels of the issue: token trend, model share, cost stacked by line item, anomalies, run throughput against budgets, 429s', async () => {
    const panels = allPanels((await dashboard()).panels);
    const titled = (pattern: RegExp): Panel => {
      const found = panels.find((p) => pattern.test(p.title));
      if (!found) throw new Error(`no panel titled ${pattern}`);
      return found;
    };
    expect(titled(/token trend/i).type).toBe('timeseries');
    expect(titled(/model share/i).type).toBe('piechart');
    const stacked = titled(/by line item \(stacked\)/i) as Panel & { fieldConfig: { defaults: { custom: { stacking: { mode: string } } } } };
    expect(stacked.fieldConfig.defaults.custom.stacking.mode).toBe('normal');
    expect(titled(/anomaly/i).targets?.[0]?.expr).toContain('oai_org_anomaly_score');
    expect(titled(/throughput against its RPM budget/i).targets?.map((t) => t.expr).join(' ')).toContain('oai_batch_budget');
    expect(titled(/429/).targets?.[0]?.expr).toContain('code="429"');
  });

  it('names only metrics the code exports, in every query of every panel', async () => {
    const known = await knownNames();
    const queries = allPanels((await dashboard()).panels).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(queries.length).toBeGreaterThan(15);
    const unknown = queries.flatMap(({ panel, expr }) => metricNamesOf(expr).filter((n) => !known.has(n)).map((n) => `${panel}: ${n}`));
    expect(unknown).toEqual([]);
    // Every contract name of the monitor is shown somewhere.
    const named = new Set(queries.flatMap((q) => metricNamesOf(q.expr)));
    expect(ORG_METRIC_NAMES.filter((n) => !named.has(n))).toEqual([]);
  });

  it('the name check catches a misspelt metric (the check bites)', async () => {
    const known = await knownNames();
    expect(metricNamesOf('sum by (model) (rate(oai_batch_request_total{code="429"}[$__rate_interval])) / on () group_left () up').filter((n) => !known.has(n))).toEqual([
      'oai_batch_request_total',
    ]);
  });
});

describe('the alert rules', () => {
  it('name only metrics the code exports', async () => {
    const known = await knownNames();
    const rules = rulesOf(await readFile(RULES, 'utf8'));
    expect(rules.filter((r) => r.kind === 'alert').map((r) => r.name).sort()).toEqual([
      'OaiBatchRunErrors',
      'OaiBatchRunRateLimited',
      'OaiOrgCostAnomaly',
      'OaiOrgMonitorStale',
      'OaiOrgMonthForecastOverBudget',
      'OaiOrgTokenAnomaly',
    ]);
    expect(rules.flatMap((r) => metricNamesOf(r.expr).filter((n) => !known.has(n)).map((n) => `${r.name}: ${n}`))).toEqual([]);
  });

  it('each alert has a promtool test case in which it fires', async () => {
    const alerts = rulesOf(await readFile(RULES, 'utf8')).filter((r) => r.kind === 'alert');
    const tests = await readFile(RULE_TESTS, 'utf8');
    for (const alert of alerts) {
      // An `alertname: X` followed by a non-empty exp_alerts list.
      expect(tests, alert.name).toMatch(new RegExp(`alertname: ${alert.name}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`));
    }
  });
});

describe(`promtool${MISSING_PROMTOOL}`, () => {
  it.skipIf(PROMTOOL === null)('check config: monitoring/prometheus.yml and the rule file it loads are valid', () => {
    const result = promtool(['check', 'config', join(MONITORING, 'prometheus.yml')]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('1 rule files found');
  });

  it.skipIf(PROMTOOL === null)('check rules: the alert rules are valid', () => {
    const result = promtool(['check', 'rules', RULES]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it.skipIf(PROMTOOL === null)('test rules: every alert fires on its case and stays quiet below its threshold', () => {
    const result = promtool(['test', 'rules', RULE_TESTS]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it.skipIf(PROMTOOL === null)('every query of the dashboard is PromQL that parses', async () => {
    const dir = await tempDir();
    try {
      const exprs = allPanels((await dashboard()).panels).flatMap((p) => (p.targets ?? []).map((t) => withoutVariables(t.expr)));
      const file = dir.file('dashboard-queries.yml');
      const rules = exprs.map((expr, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(expr)}`).join('\n');
      await writeFile(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const result = promtool(['check', 'rules', file]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain(`${exprs.length} rules found`);
    } finally {
      await dir.remove();
    }
  });

  it.skipIf(PROMTOOL === null)("check metrics passes on a run's --metrics-port endpoint (issue 15 #24: no nodejs_active_*_total gauges)", async () => {
    const dir = await tempDir();
    const input = dir.file('input.jsonl');
    await writeJsonl(input, Array.from({ length: 30 }, (_, i) => chatLine(i)));
    const { child, done } = startCli(['run', input, '--simulate', '--overwrite', '--quiet', '--metrics-port', '0', '--metrics-linger', '60'], { cwd: dir.path });
    try {
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const until = Date.now() + 60_000;
      while (!/metrics stay up/.test(stderr) && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      const url = /metrics at (\S+\/metrics)/.exec(stderr)?.[1];
      expect(url, stderr).toBeDefined();
      const text = await (await fetch(url as string)).text();
      expect(text).toContain('oai_batch_requests_total');
      expect(text).toContain('nodejs_active_handles');
      expect(text).not.toContain('nodejs_active_handles_total');
      const result = promtool(['check', 'metrics'], text);
      expect(result.code, result.stdout + result.stderr).toBe(0);
    } finally {
      child.kill('SIGTERM');
      await done;
      await dir.remove();
    }
  }, 90_000);

  it.skipIf(PROMTOOL === null)("check metrics passes on the monitor's endpoint", async () => {
    const monitor = await startMonitor(['--simulate', '--interval', '1h']);
    try {
      const text = await monitor.scrapeAfterPolls(1);
      expect(text).toContain('oai_org_cost_usd{');
      const result = promtool(['check', 'metrics'], text);
      expect(result.code, result.stdout + result.stderr).toBe(0);
    } finally {
      await monitor.stop();
    }
  }, 60_000);
});

describe(`a real prometheus${MISSING_PROMETHEUS}`, () => {
  it.skipIf(PROMETHEUS === null)(
    "scrapes oai-batch monitor against the simulator: month-to-date cost in PromQL equals the simulator's ground truth",
    async () => {
      const dir = await tempDir();
      const monitor = await startMonitor(['--simulate', '--interval', '1h']);
      let prometheus: Awaited<ReturnType<typeof startPrometheus>> | undefined;
      try {
        await monitor.scrapeAfterPolls(1);
        const config = dir.file('prometheus.yml');
        await writeFile(
          config,
          [
            'global:',
            '  scrape_interval: 1s',
            '  evaluation_interval: 1s',
            'rule_files:',
            `  - ${JSON.stringify(RULES)}`,
            'scrape_configs:',
            '  - job_name: oai-batch-monitor',
            '    static_configs:',
            `      - targets: [${JSON.stringify(new URL(monitor.metricsUrl).host)}]`,
            '',
          ].join('\n'),
        );
        prometheus = await startPrometheus(config, dir.path);
        await prometheus.waitForTargetsUp();
        const until = Date.now() + 30_000;
        let month: Array<{ value: [number, string] }> = [];
        while (month.length === 0 && Date.now() < until) {
          month = await prometheus.query('sum(oai_org_cost_usd{period="month"})');
          if (month.length === 0) await new Promise((r) => setTimeout(r, 250));
        }
        const [asOf] = await prometheus.query('oai_org_last_poll_timestamp_seconds{job="oai-batch-monitor"}');
        const asOfSec = Number(asOf?.value[1]);

        // Ground truth: the in-process simulator's history (seed 1, anchored on the UTC day it started, which is
        // the day of its first poll a moment later), summed from the month's first second to the poll's end_time.
        const truth = syntheticCosts({ startSec: monthBounds(asOfSec).startSec, endSec: asOfSec, groupBy: [], filters: {} }, { seed: 1, anchorDaySec: dayStart(asOfSec) })
          .flatMap((b) => b.results)
          .reduce((sum, r) => sum + (r.amount as { value: number }).value, 0);
        expect(month).toHaveLength(1);
        expect(Number(month[0]?.value[1])).toBeCloseTo(truth, 6);

        // The rules file loaded: its budget parameter is a series, and the monitor is not stale.
        expect((await prometheus.query('oai_org:monthly_budget_usd'))[0]?.value[1]).toBe('1000');
        expect(await prometheus.query('ALERTS{alertname="OaiOrgMonitorStale"}')).toEqual([]);
      } finally {
        await prometheus?.close();
        await monitor.stop();
        await dir.remove();
      }
    },
    120_000,
  );
});
