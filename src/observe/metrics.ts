// Prometheus metrics of a run (DESIGN.md §3, "Metrics").
//
// In:  run events (src/shared/events.ts).  Out: a prom-client Registry of its
// own (never the global one, so two runs in one process do not mix) and an
// HTTP endpoint serving it at /metrics in the Prometheus text format.
// Owns the metric names, their labels and what each one counts.
//
// Labels: `model` on requests, attempts, 429s and budgets is the model the
// request named (what the limiter budgets); on tokens and cost it is the
// model as the API answered it (body.model, e.g. gpt-4o-mini-2024-07-18),
// the same key as summary.by_model, so the two add up to the same totals.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunEvent } from '../shared/events.js';
import type { Usage } from '../shared/types.js';
import { modelOf } from '../shared/usage.js';

/** Seconds; from a fast embedding to a long reasoning answer near the default 120 s timeout. */
export const DURATION_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

/** Token kinds counted by oai_batch_tokens_total, and the Usage field each reads. */
const TOKEN_KINDS = [
  ['input', 'input_tokens'],
  ['cached_input', 'cached_input_tokens'],
  ['cache_write_input', 'cache_write_input_tokens'],
  ['output', 'output_tokens'],
  ['reasoning', 'reasoning_tokens'],
] as const satisfies ReadonlyArray<readonly [string, keyof Usage]>;

export interface RunMetrics {
  /** This run's registry: oai_batch_* metrics plus the process_* / nodejs_* defaults. */
  registry: Registry;
  /** Subscribe this to the run's events. */
  onEvent(event: RunEvent): void;
}

export interface RunMetricsOptions {
  /** Also collect prom-client's process and Node.js metrics (memory, CPU, event loop). Default true. */
  processMetrics?: boolean;
}

export function createRunMetrics(options: RunMetricsOptions = {}): RunMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectProcessMetrics(registry);
  const registers = [registry];

  const requests = new Counter({
    name: 'oai_batch_requests_total',
    help: 'Requests that reached a final outcome (bad input lines are not requests and are not counted).',
    labelNames: ['endpoint', 'model', 'status'] as const,
    registers,
  });
  const attempts = new Counter({
    name: 'oai_batch_attempts_total',
    help: 'Every HTTP attempt; code is the HTTP status, or timeout / connection_error when no answer came.',
    labelNames: ['endpoint', 'model', 'code'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'oai_batch_rate_limited_total',
    help: '429 rate_limit_exceeded answers that paused the model (retried without spending an attempt).',
    labelNames: ['model'] as const,
    registers,
  });
  const tokens = new Counter({
    name: 'oai_batch_tokens_total',
    help: 'Tokens the API reported on successful answers, by kind (cached_input and cache_write_input are part of input, reasoning part of output).',
    labelNames: ['kind', 'model'] as const,
    registers,
  });
  const cost = new Counter({
    name: 'oai_batch_cost_usd_total',
    help: 'Cost of successful answers in USD at the price table (models without a price are not counted).',
    labelNames: ['model'] as const,
    registers,
  });
  const inFlight = new Gauge({ name: 'oai_batch_in_flight', help: 'HTTP requests in flight.', registers });
  const queueDepth = new Gauge({
    name: 'oai_batch_queue_depth',
    help: 'Requests read but neither finished nor in flight: waiting for budget, a slot or a retry.',
    registers,
  });
  const budget = new Gauge({
    name: 'oai_batch_budget',
    help: 'Budget the limiter enforces now, per minute (kind rpm or tpm; after headroom and any slow-down after 429s).',
    labelNames: ['model', 'kind'] as const,
    registers,
  });
  const cacheHits = new Counter({
    name: 'oai_batch_cache_hits_total',
    help: 'Answers not bought: from the response cache (source="hit") or by an identical request of this run (source="dedup").',
    labelNames: ['source'] as const,
    registers,
  });
  // A counter, though it reads like a level: DESIGN.md §3 names it with `_total`, which `promtool check
  // metrics` accepts only on counters, and the number only grows (the count beside the read, then exact).
  const linesTotal = new Counter({
    name: 'oai_batch_lines_total',
    help: 'Lines this run has to finish (the input, or --limit of it), as far as known: 0 while unknown (stdin), then only growing.',
    registers,
  });
  let linesTotalSoFar = 0;
  const linesDone = new Gauge({
    name: 'oai_batch_lines_done',
    help: 'Lines finished: succeeded (earlier runs included) plus failed. Done share = lines_done / lines_total.',
    registers,
  });
  const duration = new Histogram({
    name: 'oai_batch_request_duration_seconds',
    help: 'Latency of successful requests (the answering attempt), as summary.timing.latency_ms.',
    buckets: DURATION_BUCKETS_SECONDS,
    registers,
  });

  // Counters of a model start at 0 when its first request starts, so that
  // rate() and increase() see the first 429 or failure as a change.
  const seen = new Set<string>();
  const onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case 'request_started': {
        const key = `${event.endpoint} ${event.model}`;
        if (seen.has(key)) break;
        seen.add(key);
        for (const status of ['succeeded', 'failed']) requests.inc({ endpoint: event.endpoint, model: event.model, status }, 0);
        rateLimited.inc({ model: event.model }, 0);
        break;
      }
      case 'attempt':
        attempts.inc({ endpoint: event.endpoint, model: event.model, code: event.code });
        break;
      case 'rate_limited':
        rateLimited.inc({ model: event.model });
        break;
      case 'request_finished': {
        requests.inc({ endpoint: event.endpoint, model: event.model, status: event.status });
        if (event.status !== 'succeeded') break;
        if (event.cache) {
          cacheHits.inc({ source: event.cache });
          break; // not bought: no billed tokens, no cost, no latency
        }
        duration.observe(event.latencyMs / 1000);
        const answered = modelOf(event.body) ?? event.model;
        if (event.usage) {
          for (const [kind, field] of TOKEN_KINDS) tokens.inc({ kind, model: answered }, event.usage[field]);
        }
        if (event.costUsd !== null) cost.inc({ model: answered }, event.costUsd);
        break;
      }
      case 'progress': {
        inFlight.set(event.progress.inFlight);
        queueDepth.set(event.progress.queued);
        linesDone.set(event.progress.linesDone);
        const lines = event.progress.linesTotal;
        if (lines !== null && lines > linesTotalSoFar) {
          linesTotal.inc(lines - linesTotalSoFar);
          linesTotalSoFar = lines;
        }
        for (const [model, state] of Object.entries(event.progress.limits)) {
          setOrRemove(budget, { model, kind: 'rpm' }, state.rpm);
          setOrRemove(budget, { model, kind: 'tpm' }, state.tpm);
        }
        break;
      }
      default:
        break;
    }
  };
  return { registry, onEvent };
}

/**
 * prom-client's process_* and nodejs_* metrics, minus the three gauges it
 * names `nodejs_active_{handles,requests,resources}_total`: a `_total` suffix
 * promises a counter, so `promtool check metrics` rejects them (issue 15 #24).
 * Nothing is lost: `nodejs_active_handles` etc. carry the same counts by type.
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of NON_COUNTER_TOTALS) registry.removeSingleMetric(name);
}

const NON_COUNTER_TOTALS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** An unlimited budget (null) has no sample rather than a made-up number. */
function setOrRemove(gauge: Gauge<'model' | 'kind'>, labels: { model: string; kind: string }, value: number | null): void {
  if (value === null) gauge.remove(labels);
  else gauge.set(labels, value);
}

export interface MetricsServer {
  /** The port bound (the one asked for, or the one the OS chose for port 0). */
  port: number;
  host: string;
  url: string;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** Interface to listen on, e.g. 127.0.0.1 (loopback only) or 0.0.0.0. */
  host: string;
  /** TCP port; 0 lets the OS pick a free one (tests). */
  port: number;
}

/** Serves `registry` at GET /metrics; every other path is a 404. */
export async function serveMetrics(registry: Registry, options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    port: address.port,
    host: address.address,
    url: `http://${hostInUrl}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A scraper's keep-alive socket must not hold the process open.
        server.closeAllConnections();
      }),
  };
}
