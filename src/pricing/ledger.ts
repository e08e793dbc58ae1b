// The cost ledger: integer token totals, priced at the end.
//
// In:  one `add` per finished request (model as answered, its usage, tier,
//      whether it went through the Batch API).
// Out: totals by model and overall, priced from the integer totals, so the
//      summary matches the bill to the token instead of summing rounded
//      per-line costs; a line's own cost for its result record; the answers
//      that carried no usage (their cost is unknown: never counted as free).
// Owns: the accumulation. Prices come from a PriceTable, arithmetic from cost.ts.
//
// Tokens are kept per (model, billed tier, batch or not, long context or
// not): each bucket has one set of rates, so pricing its totals is exact.

import { emptyUsage, type ModelTotals, type Usage } from '../shared/types.js';
import { costOf, isLongContext, type CostUsd } from './cost.js';
import { billedTier, resolvePrice, tierIsPriced, type PriceTable, type ResolvedPrice } from './prices.js';

export interface LedgerEntryOptions {
  /** The `service_tier` the response reported; null or absent = standard. */
  serviceTier?: string | null;
  /** The request came back through the Batch API. */
  batch?: boolean;
}

export interface LedgerTotals {
  usage: Usage;
  /** Priced models only; unpriced models' tokens are in `usage` but never counted as free here. */
  cost_usd: { total: number; input: number; cached_input: number; cache_write_input: number; output: number };
  /** Models answered that have no price, or whose answers carried no usage (cost unknown), sorted. */
  unpriced_models: string[];
  /** Answers that carried no usage. */
  requests_without_usage: number;
}

interface Bucket {
  model: string;
  /** The tier string as reported (normalised for known tiers), passed back to costOf. */
  serviceTier: string | null;
  batch: boolean;
  longContext: boolean;
  requests: number;
  usage: Usage;
}

const USAGE_KEYS = [
  'input_tokens',
  'cached_input_tokens',
  'cache_write_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'input_audio_tokens',
  'output_audio_tokens',
] as const satisfies readonly (keyof Usage)[];

export class CostLedger {
  readonly table: PriceTable;
  private readonly buckets = new Map<string, Bucket>();
  /** resolvePrice per model name as answered; null = unpriced. */
  private readonly resolved = new Map<string, ResolvedPrice | null>();
  private readonly warningSet = new Set<string>();
  /** Answers without usage, per model as answered. */
  private readonly withoutUsage = new Map<string, number>();

  constructor(table: PriceTable) {
    this.table = table;
  }

  /** The listed price a model resolves to (cached), or null when unpriced. */
  priceOf(model: string): ResolvedPrice | null {
    let r = this.resolved.get(model);
    if (r === undefined) {
      r = resolvePrice(this.table, model);
      this.resolved.set(model, r);
      if (r?.match === 'fine_tune_base') {
        this.warningSet.add(
          `${model} has no fine-tune price listed and is priced at ${r.name} base-model rates; ` +
            `OpenAI bills fine-tuned inference higher, so its cost is likely under-counted (add it with --prices)`,
        );
      }
    }
    return r;
  }

  /** Records one finished request. */
  add(model: string, usage: Usage, options: LedgerEntryOptions = {}): void {
    const batch = options.batch === true;
    const tier = normaliseTier(options.serviceTier);
    const resolved = this.priceOf(model);
    const longContext = resolved !== null && isLongContext(resolved.price, usage.input_tokens);

    const key = `${model}\u0000${tier ?? ''}\u0000${batch ? 1 : 0}${longContext ? 1 : 0}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { model, serviceTier: tier, batch, longContext, requests: 0, usage: emptyUsage() };
      this.buckets.set(key, bucket);
      if (resolved) this.warnForNewBucket(model, resolved, tier);
    }
    bucket.requests += 1;
    for (const k of USAGE_KEYS) bucket.usage[k] += usage[k];
    if ((usage.input_audio_tokens > 0 || usage.output_audio_tokens > 0) && resolved) {
      this.warningSet.add(`${model} reported audio tokens; they are priced at ${resolved.name}'s text rates`);
    }
  }

  /**
   * Records an answer that carried no usage (OpenAI-compatible servers often
   * omit it): its tokens and cost are unknown. It counts as a request of its
   * model, and the model is reported as unpriced, never as free.
   */
  addWithoutUsage(model: string): void {
    this.withoutUsage.set(model, (this.withoutUsage.get(model) ?? 0) + 1);
  }

  /** One request's own cost in USD for its result line, or null when the model is unpriced. */
  lineCostUsd(model: string, usage: Usage, options: LedgerEntryOptions = {}): number | null {
    const resolved = this.priceOf(model);
    if (!resolved) return null;
    return costOf(usage, resolved.price, {
      batch: options.batch === true,
      batchDiscount: this.table.batch_discount,
      serviceTier: normaliseTier(options.serviceTier),
    }).total;
  }

  /** Totals per model as answered; `cost_usd` is null for an unpriced model. */
  byModel(): Record<string, ModelTotals> {
    const out: Record<string, ModelTotals> = {};
    for (const bucket of this.buckets.values()) {
      let totals = out[bucket.model];
      if (!totals) {
        totals = {
          requests: 0,
          ...emptyUsage(),
          cost_usd: this.priceOf(bucket.model) ? 0 : null,
        };
        out[bucket.model] = totals;
      }
      totals.requests += bucket.requests;
      for (const k of USAGE_KEYS) totals[k] += bucket.usage[k];
      const cost = this.bucketCost(bucket);
      if (cost && totals.cost_usd !== null) totals.cost_usd += cost.total;
    }
    for (const [model, count] of this.withoutUsage) {
      const totals = (out[model] ??= { requests: 0, ...emptyUsage(), cost_usd: this.priceOf(model) ? 0 : null });
      totals.requests += count;
      totals.requests_without_usage = count;
    }
    return out;
  }

  /** Overall usage (all models), cost (priced models) and the unpriced models. */
  totals(): LedgerTotals {
    const usage = emptyUsage();
    const cost = { total: 0, input: 0, cached_input: 0, cache_write_input: 0, output: 0 };
    const unpriced = new Set<string>();
    for (const bucket of this.buckets.values()) {
      for (const k of USAGE_KEYS) usage[k] += bucket.usage[k];
      const c = this.bucketCost(bucket);
      if (!c) {
        unpriced.add(bucket.model);
        continue;
      }
      cost.input += c.input;
      cost.cached_input += c.cached_input;
      cost.cache_write_input += c.cache_write_input;
      cost.output += c.output;
    }
    cost.total = cost.input + cost.cached_input + cost.cache_write_input + cost.output;
    let withoutUsage = 0;
    for (const [model, count] of this.withoutUsage) {
      unpriced.add(model);
      withoutUsage += count;
    }
    return { usage, cost_usd: cost, unpriced_models: [...unpriced].sort(), requests_without_usage: withoutUsage };
  }

  /** Pricing caveats met so far (fine-tunes at base rates, unpriced tiers, audio at text rates), in order. */
  warnings(): string[] {
    const warnings = [...this.warningSet];
    if (this.withoutUsage.size > 0) {
      const models = [...this.withoutUsage].map(([model, count]) => `${model} (${count})`).join(', ');
      warnings.push(`answers without usage: ${models}; their tokens and cost are unknown and not counted (never as free), so cost_usd is a lower bound`);
    }
    return warnings;
  }

  private bucketCost(bucket: Bucket): CostUsd | null {
    const resolved = this.priceOf(bucket.model);
    if (!resolved) return null;
    return costOf(bucket.usage, resolved.price, {
      batch: bucket.batch,
      batchDiscount: this.table.batch_discount,
      serviceTier: bucket.serviceTier,
      longContext: bucket.longContext,
    });
  }

  private warnForNewBucket(model: string, resolved: ResolvedPrice, tier: string | null): void {
    if (tierIsPriced(resolved.price, tier)) return;
    const known = billedTier(tier) !== null;
    this.warningSet.add(
      known
        ? `${model} answered with service_tier "${tier}" but ${resolved.name} lists no ${tier} price; priced at standard rates`
        : `${model} answered with unknown service_tier "${tier}"; priced at standard rates`,
    );
  }
}

/** Known tiers to their canonical name (so "fast" and "priority" share a bucket); others kept as sent. */
function normaliseTier(serviceTier: string | null | undefined): string | null {
  const tier = billedTier(serviceTier);
  if (tier === 'standard') return null;
  if (tier !== null) return tier;
  return serviceTier ?? null;
}
