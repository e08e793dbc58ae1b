// The ground truth of cost tests: the simulator's billed tokens of a model,
// priced by the table (standard tier, online, no long-context rates).

import { costOf } from '../../src/pricing/cost.js';
import { resolvePrice, type PriceTable } from '../../src/pricing/prices.js';
import { emptyUsage } from '../../src/shared/types.js';
import type { BilledTotals } from '../../src/sim/server.js';

export function billedUsd(prices: PriceTable, model: string, billed: BilledTotals): number {
  const resolved = resolvePrice(prices, model);
  if (!resolved) throw new Error(`no price for ${model}`);
  const usage = {
    ...emptyUsage(),
    input_tokens: billed.input_tokens,
    cached_input_tokens: billed.cached_input_tokens,
    cache_write_input_tokens: billed.cache_write_input_tokens,
    output_tokens: billed.output_tokens,
  };
  return costOf(usage, resolved.price, { batchDiscount: prices.batch_discount, longContext: false }).total;
}
