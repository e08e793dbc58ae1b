// The HTML report of one run (--report FILE.html): one self-contained page.
//
// In:  the run's Summary and its RunTimeline (series and latency bins).
// Out: an HTML string (the page shell, uPlot and escaping are src/report/page.ts).
// Owns what the page shows: requests/min and tokens/min against the budgets,
// 429s and retries over time, the latency distribution, cost by model.

import { countRows, fmtInt as int } from '../shared/figures.js';
import type { Summary } from '../shared/types.js';
import { chartHtml, paragraphHtml, renderPage, sectionHtml, shareBarsHtml, tableHtml, type Cell, type ChartSeries } from './html-page.js';
import type { LatencyDistribution, TimelineSeries } from './timeline.js';

export interface RunReportInput {
  summary: Summary;
  series: TimelineSeries;
  latency: LatencyDistribution;
}

export function renderRunReport({ summary, series, latency }: RunReportInput): string {
  const s = summary;
  const sections = [
    sectionHtml('Outcome', overview(s)),
    sectionHtml(
      'Throughput against the budgets',
      paragraphHtml(
        `Rates over the trailing minute, in ${formatSeconds(series.bucketSeconds)} steps. The budgets are the sum over models of what the limiter ` +
          'enforced (after headroom and any slow-down after 429s). The token budget is spent on charged tokens (prompt plus the output limit), ' +
          'so the tokens the API reported stay below it.',
      ) +
        rateChart('Requests per minute', series.time, [
          { label: 'attempts/min (what the RPM budget counts)', values: series.attemptsPerMinute },
          { label: 'finished requests/min', values: series.finishedPerMinute },
        ], { label: 'RPM budget', values: series.rpmBudget }) +
        rateChart('Tokens per minute', series.time, [{ label: 'tokens/min (input + output, as reported)', values: series.tokensPerMinute }], {
          label: 'TPM budget',
          values: series.tpmBudget,
        }),
    ),
    sectionHtml(
      '429s and retries',
      chartHtml({
        // Lines, not bars: bars of several series at one x would hide one another.
        title: `Per ${formatSeconds(series.bucketSeconds)}`,
        x: series.time,
        series: [
          { label: '429 rate limited', values: series.rateLimited, color: '#dc2626' },
          { label: 'retries (5xx, timeouts, resets)', values: series.retries, color: '#ea580c' },
          { label: 'failed for good', values: series.failed, color: '#4b5563' },
        ],
      }),
    ),
    sectionHtml('Latency of successful requests', latencySection(s, latency)),
    sectionHtml('Cost by model', costSection(s)),
  ];
  if (Object.keys(s.limits).length > 0) sections.push(sectionHtml('Limits', limitsTable(s)));
  return renderPage({
    title: `oai-batch run: ${s.input.path}`,
    subtitle: `${s.timing.started_at} → ${s.timing.finished_at ?? 'not finished'} · ${formatSeconds(s.timing.wall_seconds)} · prices as of ${s.pricing.as_of}`,
    sections,
  });
}

/**
 * A budget drawn next to usage far below it flattens the usage into the
 * x axis (800 tokens/min under an 18M budget): the budget is drawn only when
 * the peak usage comes within a fifth of it, and named in the title otherwise.
 */
const BUDGET_NEAR_SHARE = 0.2;

function rateChart(title: string, x: number[], usage: ChartSeries[], budget: { label: string; values: Array<number | null> }): string {
  const peakUsage = Math.max(0, ...usage.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const budgets = budget.values.filter((v): v is number => v !== null);
  const lowestBudget = budgets.length > 0 ? Math.min(...budgets) : null;
  if (lowestBudget === null || peakUsage >= lowestBudget * BUDGET_NEAR_SHARE) {
    return chartHtml({ title, x, series: [...usage, { ...budget, color: '#9ca3af', idle: 'last' }] });
  }
  const highestBudget = Math.max(...budgets);
  const share = peakUsage / lowestBudget;
  const range = lowestBudget === highestBudget ? int(lowestBudget) : `${int(lowestBudget)}–${int(highestBudget)}`;
  return chartHtml({ title: `${title} (${budget.label} ${range}, not drawn: the peak used ${percent(share)} of it)`, x, series: usage });
}

function overview(s: Summary): string {
  const counts = countRows(s);
  const rows: Array<[string, Cell]> = [
    ['requests', counts.requests],
    ['attempts', counts.attempts],
    ['tokens', counts.tokens],
    ['cost', s.run_cost_usd !== undefined && Math.abs(s.run_cost_usd - s.cost_usd.total) > 1e-9 ? `${formatUsd(s.run_cost_usd)} this run · ${formatUsd(s.cost_usd.total)} the whole file` : formatUsd(s.cost_usd.total)],
    ['rate', `${int(s.timing.requests_per_minute)} requests/min · ${int(s.timing.tokens_per_minute)} tokens/min`],
    ['stopped', s.stopped_reason ?? 'no: the run finished'],
    ['alerts', s.alerts.length === 0 ? 'none' : s.alerts.map((a) => `${a.name} ${a.value} > ${a.threshold}`).join(' · ')],
  ];
  if (s.cache) {
    rows.splice(4, 0, ['not bought', `${int(s.cache.hits)} from the cache · ${int(s.cache.dedup)} by an identical request · saved ${formatUsd(s.cache.saved_usd)} (${int(s.cache.saved_tokens)} tokens)`]);
  }
  if (s.unpriced_models.length > 0) rows.push(['unpriced models', s.unpriced_models.join(', ')]);
  const warnings = s.warnings.map((w) => paragraphHtml(`warning: ${w}`)).join('');
  return tableHtml({ columns: ['', ''], rows }) + warnings;
}

function latencySection(s: Summary, latency: LatencyDistribution): string {
  const l = s.timing.latency_ms;
  if (l === null) return paragraphHtml('The Batch API reports no per-request latency.');
  const table = tableHtml({
    columns: ['p50', 'p90', 'p95', 'p99', 'max'].map((label) => ({ label: `${label} ms`, align: 'right' as const })),
    rows: [[l.p50, l.p90, l.p95, l.p99, l.max]],
  });
  const occupied = latency.counts.flatMap((count, i) => (count > 0 ? [i] : []));
  if (occupied.length === 0) return table + paragraphHtml('No request succeeded: no latency to show.');
  // The occupied bins and one empty bin on each side, so a single bin still reads as a bar.
  const from = Math.max(0, (occupied[0] as number) - 1);
  const to = Math.min(latency.counts.length - 1, (occupied.at(-1) as number) + 1);
  const chart = chartHtml({
    title: 'Requests by latency (each bar spans its bin, from its lower to its upper edge; bins grow ×1.41)',
    // Bin i holds latencies above the edge before it, up to its own upper edge.
    x: [from === 0 ? 0 : (latency.upperMs[from - 1] as number), ...latency.upperMs.slice(from, to + 1)],
    kind: 'histogram',
    xUnit: 'ms',
    series: [{ label: 'requests', values: latency.counts.slice(from, to + 1) }],
  });
  return table + chart;
}

function costSection(s: Summary): string {
  const models = Object.entries(s.by_model).sort(([, a], [, b]) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0));
  if (models.length === 0) return paragraphHtml('Nothing was billed.');
  const right = (label: string): { label: string; align: 'right' } => ({ label, align: 'right' });
  const table = tableHtml({
    columns: ['model (as the API answered)', right('requests'), right('input tokens'), right('cached'), right('output tokens'), right('reasoning'), right('cost')],
    rows: models.map(([model, t]) => [model, t.requests, t.input_tokens, t.cached_input_tokens, t.output_tokens, t.reasoning_tokens, t.cost_usd === null ? 'no price' : formatUsd(t.cost_usd)]),
    footer: ['total', '', s.usage.input_tokens, s.usage.cached_input_tokens, s.usage.output_tokens, s.usage.reasoning_tokens, formatUsd(s.cost_usd.total)],
  });
  const total = s.cost_usd.total;
  const shares =
    total > 0
      ? shareBarsHtml({
          title: 'Share of the cost',
          measures: ['cost'],
          items: models.map(([model, t]) => ({ label: model, shares: [(t.cost_usd ?? 0) / total], texts: [formatUsd(t.cost_usd ?? 0)] })),
        })
      : '';
  return table + shares;
}

function limitsTable(s: Summary): string {
  return tableHtml({
    columns: ['model (as requested)', { label: 'RPM', align: 'right' }, { label: 'TPM', align: 'right' }, 'from'],
    rows: Object.entries(s.limits).map(([model, l]) => [model, l.rpm ?? 'unlimited', l.tpm ?? 'unlimited', l.source]),
  });
}

function percent(share: number): string {
  return share >= 0.01 ? `${(share * 100).toFixed(1)}%` : `${(share * 100).toPrecision(2)}%`;
}

function formatUsd(value: number): string {
  return value >= 1 ? `$${value.toFixed(2)}` : `$${value.toPrecision(3)}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 7200) return `${Math.round(seconds / 6) / 10} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}
