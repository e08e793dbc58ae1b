// The monitor's Prometheus gauges (DESIGN.md §8: the names are a contract
// that monitoring/'s dashboard and alert rules depend on).
//
// In:  OrgSnapshots from good polls, and failed polls.
// Out: a prom-client Registry of its own, served by serveMetrics (metrics.ts).
// Owns the oai_org_* names, labels and help texts. A snapshot replaces every
// value at once (series that left the top N disappear); a failed poll only
// counts itself, so the last good values stay and go stale visibly through
// oai_org_last_poll_timestamp_seconds.

import { Counter, Gauge, Registry } from 'prom-client';
import type { OrgSnapshot } from '../org/snapshot.js';
import { collectProcessMetrics } from './metrics.js';

export interface OrgMetrics {
  registry: Registry;
  /** A good poll: every gauge takes the snapshot's values. */
  update(snapshot: OrgSnapshot): void;
  /** A failed poll: counted; the values of the last good poll stay. */
  pollFailed(): void;
}

export interface OrgMetricsOptions {
  /** Also collect process_* / nodejs_* metrics. Default true. */
  processMetrics?: boolean;
}

/** Every oai_org_* name the monitor exports (tests check dashboards and rules against it). */
export const ORG_METRIC_NAMES = [
  'oai_org_cost_usd',
  'oai_org_tokens',
  'oai_org_requests',
  'oai_org_cost_forecast_usd',
  'oai_org_anomaly_score',
  'oai_org_last_poll_timestamp_seconds',
  'oai_org_poll_errors_total',
] as const;

export function createOrgMetrics(options: OrgMetricsOptions = {}): OrgMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectProcessMetrics(registry);
  const registers = [registry];

  const cost = new Gauge({
    name: 'oai_org_cost_usd',
    help: "Costs API: USD spent today (UTC) or this month so far, by line item and project; the sum over series is the period's cost (values past --top are folded into `other`).",
    labelNames: ['period', 'line_item', 'project_id'] as const,
    registers,
  });
  const tokens = new Gauge({
    name: 'oai_org_tokens',
    help: 'Usage API (completions and embeddings): tokens today (UTC) or this month so far, by model and project; kind input includes cached_input.',
    labelNames: ['period', 'model', 'project_id', 'kind'] as const,
    registers,
  });
  const requests = new Gauge({
    name: 'oai_org_requests',
    help: 'Usage API (completions and embeddings): model requests today (UTC) or this month so far, by model and project.',
    labelNames: ['period', 'model', 'project_id'] as const,
    registers,
  });
  const forecast = new Gauge({
    name: 'oai_org_cost_forecast_usd',
    help: "This month's cost projected to its end: month so far plus the rest at the trailing 7 complete days' mean; low/high bound a 90% range.",
    labelNames: ['period', 'bound'] as const,
    registers,
  });
  const anomaly = new Gauge({
    name: 'oai_org_anomaly_score',
    help: 'Robust score 0.6745*|x - median|/MAD of the last complete UTC day against the 14 before it (cost, or completions input+output tokens); absent when it cannot be scored.',
    labelNames: ['metric'] as const,
    registers,
  });
  const lastPoll = new Gauge({
    name: 'oai_org_last_poll_timestamp_seconds',
    help: 'Unix time the last good poll read the APIs up to (absent until the first good poll).',
    registers,
  });
  const pollErrors = new Counter({ name: 'oai_org_poll_errors_total', help: 'Polls that failed (after retries); the values of the last good poll stay.', registers });
  // Absent until the first good poll, so `absent()` and staleness alerts see a monitor that never got data.
  lastPoll.remove();

  return {
    registry,
    update(snapshot) {
      // Synchronous from reset to the last set: a scrape never sees half a snapshot.
      cost.reset();
      for (const c of snapshot.cost) cost.set({ period: c.period, line_item: c.line_item, project_id: c.project_id }, c.usd);
      tokens.reset();
      for (const t of snapshot.tokens) tokens.set({ period: t.period, model: t.model, project_id: t.project_id, kind: t.kind }, t.tokens);
      requests.reset();
      for (const r of snapshot.requests) requests.set({ period: r.period, model: r.model, project_id: r.project_id }, r.requests);
      const f = snapshot.forecast;
      forecast.set({ period: 'month', bound: 'expected' }, f.expected);
      forecast.set({ period: 'month', bound: 'low' }, f.low);
      forecast.set({ period: 'month', bound: 'high' }, f.high);
      for (const metric of ['cost', 'tokens'] as const) {
        const judged = snapshot.anomaly[metric];
        if (judged.verdict === 'scored') anomaly.set({ metric }, judged.score);
        else anomaly.remove({ metric });
      }
      lastPoll.set(snapshot.asOfSec);
    },
    pollFailed() {
      pollErrors.inc();
    },
  };
}
