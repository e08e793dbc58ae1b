// Cost arithmetic: token counts × listed prices → USD.
//
// In:  a Usage (or a Charge for the worst case), a ModelPrice, the tier and
//      whether the request went through the Batch API.
// Out: USD, split into uncached input, cached input, cache-write input and output.
// Owns: the billing rules below; nothing here reads files or keeps state.
//
// Billing rules (OpenAI pricing page and model pages):
// - `input_tokens` includes the cached and the cache-write ones: uncached
//   input is billed at the input rate, cached input at the cached rate, input
//   written to the prompt cache at the cache-write rate (`cache_write_input`;
//   the input rate where a model lists none, as older models bill writes).
// - Reasoning tokens are part of `output_tokens` and are billed once, as output.
// - Audio tokens are billed here at the text rates of the same side: this
//   table prices text models, whose usage can report audio tokens only inside
//   the input/output totals. Audio models (gpt-4o-audio-preview, gpt-realtime,
//   …) bill audio at much higher rates; they are deliberately not listed, so
//   they stay unpriced instead of being priced wrong.
// - Long-context requests (more input tokens than the model's threshold) are
//   billed at the multiplied rates for the whole request.
// - The Batch API takes `batchDiscount` off everything (0.5 = half price).

import type { Charge, Usage } from '../shared/types.js';
import { tierPrice, type ModelPrice, type TierPrice } from './prices.js';

export interface CostOptions {
  /** The request went through the Batch API. */
  batch?: boolean;
  /** The table's batch discount (PriceTable.batch_discount). */
  batchDiscount: number;
  /** The `service_tier` the response reported. */
  serviceTier?: string | null;
  /**
   * Whether the long-context rates apply. Left out, they apply when
   * `usage.input_tokens` exceeds the model's threshold, which is right for
   * one request's usage. Totals over many requests must say so explicitly.
   */
  longContext?: boolean;
}

export interface CostUsd {
  /** Uncached input tokens (neither read from nor written to the prompt cache). */
  input: number;
  cached_input: number;
  /** Input tokens written to the prompt cache. */
  cache_write_input: number;
  output: number;
  total: number;
}

const PER_TOKENS = 1_000_000;

/** The rates that apply after tier and long-context adjustments (before the batch discount); cache writes at the input rate where none is listed. */
export function effectiveRates(
  price: ModelPrice,
  serviceTier: string | null | undefined,
  longContext: boolean,
): Required<TierPrice> {
  const tier = tierPrice(price, serviceTier);
  const rates: Required<TierPrice> = { ...tier, cache_write_input: tier.cache_write_input ?? tier.input };
  const lc = price.long_context;
  if (!longContext || !lc) return rates;
  return {
    input: rates.input * lc.input_multiplier,
    cached_input: rates.cached_input * lc.cached_input_multiplier,
    cache_write_input: rates.cache_write_input * lc.input_multiplier,
    output: rates.output * lc.output_multiplier,
  };
}

/** Whether one request with `inputTokens` input tokens is billed at long-context rates. */
export function isLongContext(price: ModelPrice, inputTokens: number): boolean {
  return price.long_context !== undefined && inputTokens > price.long_context.above_input_tokens;
}

/**
 * The cost of `usage` in USD:
 * ((input − cached − written) × input + cached × cached_input
 *  + written × cache_write_input + output × output) / 1M,
 * at the tier's rates, times (1 − batchDiscount) for Batch API requests.
 */
export function costOf(usage: Usage, price: ModelPrice, options: CostOptions): CostUsd {
  const cached = Math.min(usage.cached_input_tokens, usage.input_tokens);
  const written = Math.min(usage.cache_write_input_tokens, usage.input_tokens - cached);
  const uncached = usage.input_tokens - cached - written;
  const longContext = options.longContext ?? isLongContext(price, usage.input_tokens);
  const rates = effectiveRates(price, options.serviceTier, longContext);
  const factor = options.batch ? 1 - options.batchDiscount : 1;
  const input = ((uncached * rates.input) / PER_TOKENS) * factor;
  const cachedInput = ((cached * rates.cached_input) / PER_TOKENS) * factor;
  const cacheWriteInput = ((written * rates.cache_write_input) / PER_TOKENS) * factor;
  const output = ((usage.output_tokens * rates.output) / PER_TOKENS) * factor;
  return { input, cached_input: cachedInput, cache_write_input: cacheWriteInput, output, total: input + cachedInput + cacheWriteInput + output };
}

/**
 * The most a request can cost, for the budget cap: its whole charge at the
 * dearest input rate (no cache discount is assumed, and every token may be
 * written to the cache where writes cost more than input) plus its output
 * allowance at the output rate, at the tier's rates, long-context rates when
 * the charge's input alone crosses the threshold, and the batch discount.
 */
export function worstCaseCostUsd(charge: Charge, price: ModelPrice, options: CostOptions): number {
  const longContext = options.longContext ?? isLongContext(price, charge.inputTokens);
  const rates = effectiveRates(price, options.serviceTier, longContext);
  const factor = options.batch ? 1 - options.batchDiscount : 1;
  const inputRate = Math.max(rates.input, rates.cache_write_input);
  return ((charge.inputTokens * inputRate + charge.outputTokens * rates.output) / PER_TOKENS) * factor;
}
