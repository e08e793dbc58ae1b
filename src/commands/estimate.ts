// estimate: what an input will cost and how long it will take, before sending.
//
// In:  request items (from one streaming pass over the input), the price
//      table, an optional expected output length, optional rate limits.
// Out: an Estimate per model and overall: requests, exact prompt tokens,
//      output tokens and cost as min / expected / max, the same at Batch API
//      prices, and the time at the given limits.
// Owns: the bounds' definitions (below). Token counts come from charge.ts,
//      prices and arithmetic from src/pricing, so the estimate, the limiter
//      and the budget cap count the same tokens.
//
// Bounds, per request:
// - min: the prompt at the uncached input rate, no output. (Prompt caching
//   can make the real input cost lower still.)
// - expected: the prompt plus `expectedOutputTokens` (capped at the request's
//   own output limit), else half the request's output limit; a request with
//   no limit counts half of the documented default allowance
//   (DEFAULT_OUTPUT_TOKENS × n, charge.ts).
// - max: the request's worst case as the budget cap reserves it
//   (worstCaseCostUsd: the larger of the exact prompt and characters / 4, all
//   uncached, plus the full output limit). A request without an output limit
//   has no upper bound: the max is then `null` ("unbounded").
// Costs are summed per request (each request's own long-context and tier
// rates apply) and exclude unpriced models, which are listed instead.

import { readFile } from 'node:fs/promises';
import { costOf, worstCaseCostUsd } from '../pricing/cost.js';
import { resolvePrice, type PriceTable, type ResolvedPrice } from '../pricing/prices.js';
import { roundUsd } from '../pipeline/summarise.js';
import { emptyUsage, type RequestItem } from '../shared/types.js';
import { validateInput, type InputScanOptions, type ValidateHooks, type ValidationReport } from './validate.js';

/** Rate limits per model for the time estimate, requests and tokens per minute. */
export interface RateLimits {
  rpm?: number | undefined;
  tpm?: number | undefined;
}

export interface EstimateOptions {
  prices: PriceTable;
  /** Output tokens to expect per request (--expected-output-tokens); default: half the request's limit. */
  expectedOutputTokens?: number | undefined;
  /** Limits given as flags (--rpm, --tpm); they apply to every model, as in `run`. */
  limits?: RateLimits | undefined;
  /**
   * Limits an earlier run learned from the API's headers, per model (the
   * `limits` of its summary). Used for models the flags leave open.
   */
  learnedLimits?: Record<string, RateLimits> | undefined;
  /**
   * Requests a run with --cache would not buy (the response cache holds their
   * answer, or an identical request earlier in the input buys it): counted
   * apart, not priced. Default: none.
   */
  isReused?: ((item: RequestItem) => boolean) | undefined;
}

/** A cost or token range; `max` is null when some request sets no output limit (unbounded). */
export interface Range {
  min: number;
  expected: number;
  max: number | null;
}

export interface ModelEstimate {
  requests: number;
  /** Prompt tokens in the model's own encoding (exact for text prompts). */
  prompt_tokens: number;
  output_tokens: Range;
  /** Requests without an output limit (they make the max unbounded). */
  unbounded_requests: number;
  /** Tokens the rate limiter counts (charge.total): what the time estimate divides by TPM. */
  charged_tokens: number;
  /** null when the model has no price (it is then in `unpriced_models`). */
  cost_usd: Range | null;
  batch_cost_usd: Range | null;
  /** The listed name whose price applies, or null. */
  priced_as: string | null;
  /** Minutes at its limits: max(requests ÷ RPM, charged tokens ÷ TPM) × 60 s; null when no limit is known. */
  time_seconds: number | null;
  limits: { rpm: number | null; tpm: number | null; source: 'flags' | 'earlier_run' | 'mixed' | null };
}

export interface Estimate {
  input: string;
  /** Non-blank lines read. */
  lines: number;
  /** Lines that would be sent (those the cache answers left out). */
  requests: number;
  /** Lines the response cache (or an identical earlier line) would answer, not priced (estimate --cache). */
  reused_requests: number;
  /** Lines with an input problem (not sent, not counted below). */
  problems: number;
  by_model: Record<string, ModelEstimate>;
  /** Over all models; costs over priced models only. */
  totals: {
    prompt_tokens: number;
    output_tokens: Range;
    cost_usd: Range;
    batch_cost_usd: Range;
    /** Models run side by side under per-model limits: the longest model's time; null if any is unknown. */
    time_seconds: number | null;
  };
  unpriced_models: string[];
  pricing: { as_of: string; source: string; batch_discount: number };
  /** What the figures assume, in words. */
  notes: string[];
}

interface ModelAccumulator {
  estimate: ModelEstimate;
  resolved: ResolvedPrice | null;
}

/** Adds requests one at a time (so `run --dry-run` can estimate inside the validation pass); finish() prices nothing twice. */
export class EstimateBuilder {
  readonly #options: EstimateOptions;
  readonly #models = new Map<string, ModelAccumulator>();
  #reused = 0;

  constructor(options: EstimateOptions) {
    if (options.expectedOutputTokens !== undefined && !(Number.isInteger(options.expectedOutputTokens) && options.expectedOutputTokens >= 0)) {
      throw new RangeError(`Expected \`expectedOutputTokens\` to be an integer ≥ 0, got \`${options.expectedOutputTokens}\``);
    }
    this.#options = options;
  }

  add(item: RequestItem): void {
    if (this.#options.isReused?.(item)) {
      this.#reused += 1;
      return;
    }
    const accumulator = this.#model(item.model);
    const m = accumulator.estimate;
    const charge = item.charge;
    const limit = charge.maxOutputTokens;
    const expectedOut = this.#expectedOutput(limit, charge.outputTokens);

    m.requests += 1;
    m.prompt_tokens += charge.promptTokens;
    m.charged_tokens += charge.total;
    m.output_tokens.expected += expectedOut;
    if (limit === null) {
      m.unbounded_requests += 1;
      m.output_tokens.max = null;
    } else if (m.output_tokens.max !== null) {
      m.output_tokens.max += limit;
    }

    const resolved = accumulator.resolved;
    if (!resolved || !m.cost_usd || !m.batch_cost_usd) return;
    const tier = typeof item.body.service_tier === 'string' ? item.body.service_tier : null;
    const batchDiscount = this.#options.prices.batch_discount;
    for (const [range, batch] of [
      [m.cost_usd, false],
      [m.batch_cost_usd, true],
    ] as const) {
      const at = { batch, batchDiscount, serviceTier: tier };
      range.min += costOf({ ...emptyUsage(), input_tokens: charge.promptTokens }, resolved.price, at).total;
      range.expected += costOf({ ...emptyUsage(), input_tokens: charge.promptTokens, output_tokens: expectedOut }, resolved.price, at).total;
      if (limit === null) range.max = null;
      else if (range.max !== null) range.max += worstCaseCostUsd({ ...charge, outputTokens: limit }, resolved.price, at);
    }
  }

  /** The estimate of everything added, with the time at the known limits. */
  finish(report: Pick<ValidationReport, 'input' | 'lines' | 'valid' | 'problems'>): Estimate {
    const byModel: Record<string, ModelEstimate> = {};
    const unpriced: string[] = [];
    const totals: Estimate['totals'] = {
      prompt_tokens: 0,
      output_tokens: { min: 0, expected: 0, max: 0 },
      cost_usd: { min: 0, expected: 0, max: 0 },
      batch_cost_usd: { min: 0, expected: 0, max: 0 },
      time_seconds: 0,
    };
    for (const [model, { estimate }] of [...this.#models].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      this.#timeOf(model, estimate);
      byModel[model] = estimate;
      totals.prompt_tokens += estimate.prompt_tokens;
      addRange(totals.output_tokens, estimate.output_tokens);
      if (estimate.cost_usd && estimate.batch_cost_usd) {
        addRange(totals.cost_usd, estimate.cost_usd);
        addRange(totals.batch_cost_usd, estimate.batch_cost_usd);
      } else {
        unpriced.push(model);
      }
      totals.time_seconds =
        totals.time_seconds === null || estimate.time_seconds === null ? null : Math.max(totals.time_seconds, estimate.time_seconds);
    }
    if (this.#models.size === 0) totals.time_seconds = null;
    for (const range of [
      totals.cost_usd,
      totals.batch_cost_usd,
      ...Object.values(byModel).flatMap((m) => [m.cost_usd, m.batch_cost_usd]),
    ]) {
      if (range) roundRange(range);
    }
    const prices = this.#options.prices;
    return {
      input: report.input,
      lines: report.lines,
      requests: report.valid - this.#reused,
      reused_requests: this.#reused,
      problems: report.problems,
      by_model: byModel,
      totals,
      unpriced_models: unpriced,
      pricing: { as_of: prices.as_of, source: prices.source, batch_discount: prices.batch_discount },
      notes: this.#notes(byModel, totals),
    };
  }

  #model(model: string): ModelAccumulator {
    let accumulator = this.#models.get(model);
    if (!accumulator) {
      const resolved = resolvePrice(this.#options.prices, model);
      accumulator = {
        resolved,
        estimate: {
          requests: 0,
          prompt_tokens: 0,
          output_tokens: { min: 0, expected: 0, max: 0 },
          unbounded_requests: 0,
          charged_tokens: 0,
          cost_usd: resolved ? { min: 0, expected: 0, max: 0 } : null,
          batch_cost_usd: resolved ? { min: 0, expected: 0, max: 0 } : null,
          priced_as: resolved?.name ?? null,
          time_seconds: null,
          limits: { rpm: null, tpm: null, source: null },
        },
      };
      this.#models.set(model, accumulator);
    }
    return accumulator;
  }

  /** Expected output of one request: the flag capped at the request's limit, else half the limit (or of the default allowance). */
  #expectedOutput(limit: number | null, chargedOutput: number): number {
    const flag = this.#options.expectedOutputTokens;
    if (flag !== undefined) return limit === null ? flag : Math.min(flag, limit);
    return Math.ceil((limit ?? chargedOutput) / 2);
  }

  #timeOf(model: string, estimate: ModelEstimate): void {
    const flags = this.#options.limits ?? {};
    const learned = this.#options.learnedLimits?.[model] ?? {};
    const rpm = flags.rpm ?? learned.rpm ?? null;
    const tpm = flags.tpm ?? learned.tpm ?? null;
    const fromFlags = flags.rpm !== undefined || flags.tpm !== undefined;
    const fromLearned = (flags.rpm === undefined && learned.rpm !== undefined) || (flags.tpm === undefined && learned.tpm !== undefined);
    estimate.limits = {
      rpm,
      tpm,
      source: fromFlags && fromLearned ? 'mixed' : fromFlags ? 'flags' : fromLearned ? 'earlier_run' : null,
    };
    if (rpm === null && tpm === null) return;
    const minutes = Math.max(rpm ? estimate.requests / rpm : 0, tpm ? estimate.charged_tokens / tpm : 0);
    estimate.time_seconds = Math.round(minutes * 60 * 10) / 10;
  }

  #notes(byModel: Record<string, ModelEstimate>, totals: Estimate['totals']): string[] {
    const notes: string[] = [];
    if (this.#options.isReused) {
      notes.push(`${this.#reused} request(s) would be answered by the response cache or by an identical earlier line: not bought, not priced`);
    }
    const unbounded = Object.values(byModel).reduce((n, m) => n + m.unbounded_requests, 0);
    if (unbounded > 0) {
      notes.push(
        `${unbounded} request(s) set no output limit (max_tokens, max_completion_tokens or max_output_tokens): their cost has no upper bound, so max is unbounded; expected counts half the default allowance for them`,
      );
    }
    notes.push(
      this.#options.expectedOutputTokens !== undefined
        ? `expected assumes ${this.#options.expectedOutputTokens} output tokens per request (at most its output limit)`
        : 'expected assumes each request uses half its output limit (give --expected-output-tokens N to set it)',
    );
    notes.push('min and expected price the prompt uncached; prompt caching (prompts of 1,024 tokens or more) can lower the real input cost');
    const learned = Object.entries(byModel).filter(([, m]) => m.limits.source === 'earlier_run' || m.limits.source === 'mixed');
    if (learned.length > 0) {
      notes.push(
        `time for ${learned.map(([model]) => model).join(', ')} uses the limits the API announced to an earlier run of this input (its summary's limits, --headroom applied); --rpm/--tpm override them`,
      );
    }
    if (totals.time_seconds === null && Object.keys(byModel).length > 0) {
      notes.push('time needs rate limits: give --rpm and/or --tpm (or run once: the limits the API announces are kept in the summary and used here)');
    }
    return notes;
  }
}

/** USD to 1e-10 (as the summary rounds): below any bill's precision, above float noise. */
function roundRange(range: Range): void {
  range.min = roundUsd(range.min);
  range.expected = roundUsd(range.expected);
  if (range.max !== null) range.max = roundUsd(range.max);
}

function addRange(total: Range, part: Range): void {
  total.min += part.min;
  total.expected += part.expected;
  total.max = total.max === null || part.max === null ? null : total.max + part.max;
}

/** One streaming pass over the input: its estimate and the validation report of the same pass. */
export async function estimateInput(
  scan: InputScanOptions,
  options: EstimateOptions,
  hooks: Pick<ValidateHooks, 'onProblem'> = {},
): Promise<{ estimate: Estimate; report: ValidationReport }> {
  const builder = new EstimateBuilder(options);
  const report = await validateInput(scan, { ...hooks, onItem: (item) => builder.add(item) });
  return { estimate: builder.finish(report), report };
}

/**
 * The limits an earlier run learned from the API's x-ratelimit-* headers, per
 * model (its summary's `limits` whose source is `headers` or `mixed`; these
 * already have --headroom applied, as that run used them).
 */
export function learnedLimitsOf(summary: unknown): Record<string, RateLimits> {
  const limits = summary && typeof summary === 'object' ? (summary as { limits?: unknown }).limits : undefined;
  if (!limits || typeof limits !== 'object') return {};
  const out: Record<string, RateLimits> = {};
  for (const [model, value] of Object.entries(limits as Record<string, unknown>)) {
    if (!value || typeof value !== 'object') continue;
    const { rpm, tpm, source } = value as { rpm?: unknown; tpm?: unknown; source?: unknown };
    // Only limits the API announced are learned; an earlier run's flags are not this account's limits.
    if (source !== 'headers' && source !== 'mixed') continue;
    const entry: RateLimits = {};
    if (typeof rpm === 'number' && rpm > 0) entry.rpm = rpm;
    if (typeof tpm === 'number' && tpm > 0) entry.tpm = tpm;
    if (entry.rpm !== undefined || entry.tpm !== undefined) out[model] = entry;
  }
  return out;
}

/** Learned limits from an earlier run's summary; none when it is absent or unreadable (the estimate then asks for --rpm/--tpm). */
export async function readLearnedLimits(path: string | undefined): Promise<Record<string, RateLimits>> {
  if (path === undefined) return {};
  try {
    return learnedLimitsOf(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return {};
  }
}
