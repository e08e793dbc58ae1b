// summarise: counters of the run, and the summary file built from them.
//
// In:  the run's events (RunStats subscribes to them); the cost ledger; the
//      limiter's snapshot.
// Out: a Summary (DESIGN.md §2) at any moment; the exit code it implies.
// Owns: counts, rates, latency percentiles, alerts, exit-code precedence.
// (The progress arithmetic of the display is summarise/progress.ts.)

import type { RunEvent } from '../shared/events.js';
import { Histogram } from '../shared/histogram.js';
import type { CostLedger } from '../pricing/ledger.js';
import type { PriceTable } from '../pricing/prices.js';
import type { Alert, CacheSavings, LimitReport, ModelLimitState, StoppedReason, Summary, Usage } from '../shared/types.js';
import { VERSION } from '../shared/version.js';

/** Per-second counts over the last minute, for "requests/min now" in the progress display. */
export class RateWindow {
  readonly #seconds = 60;
  readonly #counts = new Float64Array(60);
  readonly #stamps = new Float64Array(60).fill(-1);
  readonly #startedAt: number;

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  add(now: number, amount: number): void {
    const second = Math.floor(now / 1000);
    const slot = second % this.#seconds;
    if (this.#stamps[slot] !== second) {
      this.#stamps[slot] = second;
      this.#counts[slot] = 0;
    }
    this.#counts[slot] = (this.#counts[slot] as number) + amount;
  }

  /** Per minute, over the last 60 s or the time since the start if shorter. */
  perMinute(now: number): number {
    const second = Math.floor(now / 1000);
    let total = 0;
    for (let i = 0; i < this.#seconds; i++) {
      const stamp = this.#stamps[i] as number;
      if (stamp > second - this.#seconds && stamp <= second) total += this.#counts[i] as number;
    }
    const span = Math.min(60, Math.max(1, (now - this.#startedAt) / 1000));
    return (total / span) * 60;
  }
}

export class RunStats {
  readonly startedAt: number;
  readonly #now: () => number;
  /** Non-blank lines considered (read and within --limit). */
  lines = 0;
  succeeded = 0;
  /** Successes found in the results file by --resume (skipped this run). */
  skipped = 0;
  failed = 0;
  inputProblems = 0;
  /** Requests that got at least one attempt this run. */
  sent = 0;
  /** Requests that failed without an attempt (larger than the whole token budget). */
  failedUnsent = 0;
  attempts = 0;
  rateLimited = 0;
  serverErrors = 0;
  timeouts = 0;
  billedTokens = 0;
  chargedTokens = 0;
  readonly latency = new Histogram();
  readonly requestsWindow: RateWindow;
  readonly tokensWindow: RateWindow;
  readonly chargedWindow: RateWindow;
  /** Time (ms) the concurrency cap, not the budget, held requests back. */
  concurrencyBoundMs = 0;
  /** Answers not bought (with --cache or --dedup), earlier runs' included once resumed. */
  readonly savings: CacheSavings = { hits: 0, dedup: 0, saved_usd: 0, saved_tokens: 0 };

  constructor(startedAt: number, now: () => number = Date.now) {
    this.#now = now;
    this.startedAt = startedAt;
    this.requestsWindow = new RateWindow(this.startedAt);
    this.tokensWindow = new RateWindow(this.startedAt);
    this.chargedWindow = new RateWindow(this.startedAt);
  }

  get retries(): number {
    return Math.max(0, this.attempts - this.sent);
  }

  /** An answer not bought: what it would have cost. */
  countSaving(source: 'hit' | 'dedup', savedUsd: number | null, usage: Usage | null): void {
    if (source === 'hit') this.savings.hits += 1;
    else this.savings.dedup += 1;
    this.savings.saved_usd += savedUsd ?? 0;
    this.savings.saved_tokens += usage ? usage.input_tokens + usage.output_tokens : 0;
  }

  /** Counts what the stages report; a request counts as finished once its line is written. */
  onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'request_started':
        this.attempts += 1;
        if (event.attempt === 1) this.sent += 1;
        this.chargedTokens += event.chargedTokens;
        this.chargedWindow.add(this.#now(), event.chargedTokens);
        break;
      case 'rate_limited':
        this.rateLimited += 1;
        break;
      case 'attempt':
        // Every attempt that got a 5xx or no answer in time, the last one included (not only those retried).
        if (event.code.length === 3 && event.code[0] === '5') this.serverErrors += 1;
        else if (event.code === 'timeout') this.timeouts += 1;
        break;
      case 'request_finished': {
        const now = this.#now();
        this.requestsWindow.add(now, 1);
        if (event.status === 'failed') {
          this.failed += 1;
          if (event.attempts === 0) this.failedUnsent += 1;
          break;
        }
        this.succeeded += 1;
        if (event.cache) {
          this.countSaving(event.cache, event.savedUsd ?? null, event.usage);
          break;
        }
        this.latency.record(event.latencyMs);
        if (event.usage) {
          const billed = event.usage.input_tokens + event.usage.output_tokens;
          this.billedTokens += billed;
          this.tokensWindow.add(now, billed);
        }
        break;
      }
      case 'input_problem':
        this.failed += 1;
        this.inputProblems += 1;
        break;
      default:
        break;
    }
  }
}

export interface SummaryContext {
  stats: RunStats;
  ledger: CostLedger;
  prices: PriceTable;
  mode: 'online' | 'batch';
  input: { path: string; fingerprint: string };
  limits: Record<string, ModelLimitState>;
  stoppedReason: StoppedReason | null;
  finished: boolean;
  now: number;
  warnings: string[];
  thresholds: { errorRate?: number | undefined; rateLimitRate?: number | undefined };
  /** What earlier runs of this file spent (read back by --resume); this run's spend is the rest. Default 0. */
  earlierCostUsd?: number;
  /** Whether answers are reused (--cache or --dedup): the summary then has a `cache` block. */
  isReusing?: boolean;
}

export function buildSummary(context: SummaryContext): Summary {
  const { stats, ledger, prices, now } = context;
  const wallSeconds = Math.max(0, (now - stats.startedAt) / 1000);
  const minutes = wallSeconds / 60;
  const totals = ledger.totals();
  const finishedThisRun = stats.succeeded - stats.skipped + (stats.failed - stats.inputProblems);
  const perMinute = (n: number): number => (minutes > 0 ? round(n / minutes, 1) : 0);
  const succeeded = stats.succeeded;
  const pending = Math.max(0, stats.lines - succeeded - stats.failed);
  const summary: Summary = {
    tool: { name: 'oai-batch', version: VERSION },
    mode: context.mode,
    input: { path: context.input.path, fingerprint: context.input.fingerprint, lines: stats.lines },
    requests: { total: stats.lines, succeeded, failed: stats.failed, skipped: stats.skipped, pending },
    attempts: {
      total: stats.attempts,
      retries: stats.retries,
      rate_limited: stats.rateLimited,
      server_errors: stats.serverErrors,
      timeouts: stats.timeouts,
    },
    usage: totals.usage,
    cost_usd: {
      total: roundUsd(totals.cost_usd.total),
      input: roundUsd(totals.cost_usd.input),
      cached_input: roundUsd(totals.cost_usd.cached_input),
      cache_write_input: roundUsd(totals.cost_usd.cache_write_input),
      output: roundUsd(totals.cost_usd.output),
    },
    by_model: Object.fromEntries(
      Object.entries(ledger.byModel()).map(([model, t]) => [model, { ...t, cost_usd: t.cost_usd === null ? null : roundUsd(t.cost_usd) }]),
    ),
    unpriced_models: totals.unpriced_models,
    pricing: { as_of: prices.as_of, source: prices.source, batch_discount_applied: context.mode === 'batch' },
    timing: {
      started_at: new Date(stats.startedAt).toISOString(),
      finished_at: context.finished ? new Date(now).toISOString() : null,
      wall_seconds: round(wallSeconds, 3),
      requests_per_minute: perMinute(finishedThisRun),
      tokens_per_minute: perMinute(stats.billedTokens),
      charged_tokens_per_minute: perMinute(stats.chargedTokens),
      latency_ms: context.mode === 'batch' ? null : stats.latency.summary(),
    },
    limits: limitsReport(context.limits, stats, wallSeconds),
    alerts: alertsOf(stats, context.thresholds),
    warnings: [...context.warnings, ...ledger.warnings()],
    run_cost_usd: roundUsd(Math.max(0, totals.cost_usd.total - (context.earlierCostUsd ?? 0))),
    requests_without_usage: totals.requests_without_usage,
    ...(context.isReusing ? { cache: { ...stats.savings, saved_usd: roundUsd(stats.savings.saved_usd) } } : {}),
    stopped_reason: context.stoppedReason,
  };
  return summary;
}

function limitsReport(limits: Record<string, ModelLimitState>, stats: RunStats, wallSeconds: number): Record<string, LimitReport> {
  const concurrencyBound = wallSeconds > 0 && stats.concurrencyBoundMs / 1000 > wallSeconds * 0.1;
  const out: Record<string, LimitReport> = {};
  for (const [model, state] of Object.entries(limits)) {
    out[model] = {
      rpm: state.baseRpm === null ? null : Math.round(state.baseRpm),
      tpm: state.baseTpm === null ? null : Math.round(state.baseTpm),
      source: state.source,
    };
    if (concurrencyBound) out[model].concurrency_bound = true;
  }
  return out;
}

/** error rate = failed ÷ (lines attempted + bad lines); 429 rate = 429s ÷ attempts; crossed when strictly greater. */
export function alertsOf(stats: RunStats, thresholds: SummaryContext['thresholds']): Alert[] {
  const alerts: Alert[] = [];
  if (thresholds.errorRate !== undefined) {
    // Lines attempted: those sent, and those refused before sending (too large); plus bad lines.
    const denominator = stats.sent + stats.failedUnsent + stats.inputProblems;
    const value = denominator > 0 ? stats.failed / denominator : 0;
    if (value > thresholds.errorRate) alerts.push({ name: 'error_rate', value: round(value, 6), threshold: thresholds.errorRate });
  }
  if (thresholds.rateLimitRate !== undefined) {
    const value = stats.attempts > 0 ? stats.rateLimited / stats.attempts : 0;
    if (value > thresholds.rateLimitRate) alerts.push({ name: 'rate_limit_rate', value: round(value, 6), threshold: thresholds.rateLimitRate });
  }
  return alerts;
}

/** Exit code a summary implies, by precedence 1 > 3 > 5 > 2 > 0 (DESIGN.md §3). */
export function exitCodeOf(summary: Pick<Summary, 'stopped_reason' | 'alerts' | 'requests'>): number {
  const reason = summary.stopped_reason;
  if (reason === 'auth_failed' || reason === 'quota_exhausted' || reason === 'unreachable' || reason === 'write_failed') return 1;
  if (reason !== null) return 3; // interrupted, max_cost, max_total_cost, rate_limit_wait, budget_store_unavailable: --resume continues
  if (summary.alerts.length > 0) return 5;
  if (summary.requests.failed > 0) return 2;
  return 0;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** USD to 1e-10: below any bill's precision, above float noise. */
export function roundUsd(value: number): number {
  return Math.round(value * 1e10) / 1e10;
}
