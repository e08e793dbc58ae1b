// The price table's shape and how a model as the API named it finds its price.
//
// In:  a PriceTable (loaded and validated by shared/price-file.ts).
// Out: `resolvePrice` maps a model name as the API answered it to a listed
//      price; `tierPrice` picks the rates of the service tier the answer reports.
// Owns: name resolution and service tiers. Pure: no files, no errors thrown.
// Arithmetic lives in cost.ts.
//
// All prices are USD per 1,000,000 tokens.
/** Rates of one processing tier, USD per 1M tokens. */
export interface TierPrice {
  /** Uncached input tokens. */
  input: number;
  /** Input tokens served from the prompt cache; equals `input` where a model has no cache discount. */
  cached_input: number;
  /**
   * Input tokens written to the prompt cache, for models that bill cache
   * writes at their own rate (GPT-5.6 and later: 1.25 × input). Absent: cache
   * writes are billed as ordinary input, as OpenAI bills them on older models.
   */
  cache_write_input?: number;
  /** Output tokens, reasoning tokens included. */
  output: number;
}

/**
 * Long-context surcharge (GPT-5.4 and later): when one request has more than
 * `above_input_tokens` input tokens, the whole request is billed at the
 * multiplied rates ("input and cache rates double and output costs 1.5 times
 * the short-context rate for the full request", OpenAI model pages). Cache
 * writes take the input multiplier. The
 * multipliers apply on top of whichever tier rate applies; Batch and Flex
 * discounts then apply to the result.
 */
export interface LongContextPrice {
  above_input_tokens: number;
  input_multiplier: number;
  cached_input_multiplier: number;
  output_multiplier: number;
}

export interface ModelPrice extends TierPrice {
  /** `service_tier: "flex"` rates, where OpenAI publishes them. */
  flex?: TierPrice;
  /** `service_tier: "priority"` (renamed "Fast mode", also `"fast"`, on 2026-07-30). */
  priority?: TierPrice;
  /** `service_tier: "ultrafast"` rates, where published. */
  ultrafast?: TierPrice;
  long_context?: LongContextPrice;
}

export interface PriceTable {
  /** Date of the sources the prices were checked against, YYYY-MM-DD. */
  as_of: string;
  /** Where the prices come from; says so when an override file was applied. */
  source: string;
  /** Share taken off Batch API requests (0.5 = half price). */
  batch_discount: number;
  /** Listed models, keys in lower case. */
  models: Record<string, ModelPrice>;
  /** Path of the override file applied on top of the built-in table, or null. */
  override_path: string | null;
}

// ---------------------------------------------------------------------------
// Resolution: model as answered → listed price

export interface ResolvedPrice {
  /** The listed name whose price applies. */
  name: string;
  price: ModelPrice;
  /**
   * How the name was found: `exact`; `prefix` (a dated snapshot such as
   * gpt-4o-mini-2024-07-18 → gpt-4o-mini, see VERSION_SUFFIX);
   * `fine_tune_base` (an `ft:` model with no fine-tune price listed, priced at
   * its base model's standard rates, which usually under-counts: OpenAI bills
   * fine-tuned inference higher).
   */
  match: 'exact' | 'prefix' | 'fine_tune_base';
}

/**
 * What may follow a listed name for a model to share its price: a snapshot
 * date or version and nothing else. `-2024-07-18` (a dated snapshot), `-0125`
 * (an older MMDD snapshot), `-007` (a numbered version, text-moderation-007).
 * Any other word makes a different model with prices of its own, however
 * close the name: gpt-4o-mini-search-preview, gpt-4o-mini-tts,
 * gpt-4o-audio-preview, a proxy's gpt-4o-mini-mock. Those stay unpriced (and
 * so are never counted as free, and are refused under --max-cost) until they
 * are listed. `-latest` is not a version either: an alias may move to a model
 * with other prices, so the names that carry it are listed whole
 * (gpt-5-chat-latest, codex-mini-latest, omni-moderation-latest).
 */
const VERSION_SUFFIX = /^(?:\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|\d{3})$/;

/** Whether `suffix` (what follows `name-`) is a snapshot date or version (see VERSION_SUFFIX). */
export function isVersionSuffix(suffix: string): boolean {
  return VERSION_SUFFIX.test(suffix);
}

/** Names sorted longest first, per table (the table is immutable once loaded). */
const namesByLength = new WeakMap<Record<string, ModelPrice>, string[]>();

function sortedNames(models: Record<string, ModelPrice>): string[] {
  let names = namesByLength.get(models);
  if (!names) {
    names = Object.keys(models).sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    namesByLength.set(models, names);
  }
  return names;
}

function lookup(models: Record<string, ModelPrice>, model: string): ResolvedPrice | null {
  const exact = models[model];
  if (exact && Object.hasOwn(models, model)) return { name: model, price: exact, match: 'exact' };
  for (const name of sortedNames(models)) {
    if (model.length > name.length + 1 && model.startsWith(name) && model.charCodeAt(name.length) === 45 /* - */) {
      if (isVersionSuffix(model.slice(name.length + 1))) return { name, price: models[name] as ModelPrice, match: 'prefix' };
    }
  }
  return null;
}

/**
 * The price of a model as the API named it, or null when it is not listed.
 *
 * 1. An exact (case-insensitive) match.
 * 2. Else a listed name followed by `-` and a snapshot date or version only
 *    (VERSION_SUFFIX): gpt-4o-2024-08-06 → gpt-4o; gpt-4o-mini-2024-07-18 →
 *    gpt-4o-mini; gpt-3.5-turbo-0125 → gpt-3.5-turbo. gpt-4o-mini-mock or
 *    gpt-4o-mini-search-preview match nothing: unpriced, never priced as a
 *    sibling.
 * 3. A fine-tune `ft:BASE:org:name:id` resolves `ft:BASE` the same way against
 *    the listed `ft:` entries (fine-tuned inference has its own, higher,
 *    prices); when none is listed it falls back to BASE's own price, marked
 *    `fine_tune_base` so callers can warn that this is likely an under-count.
 */
export function resolvePrice(table: Pick<PriceTable, 'models'>, model: string): ResolvedPrice | null {
  const name = model.trim().toLowerCase();
  if (name === '') return null;
  if (name.startsWith('ft:')) {
    const base = name.slice(3).split(':', 1)[0] ?? '';
    if (base === '') return null;
    const tuned = lookup(table.models, `ft:${base}`);
    if (tuned) return tuned;
    const basePrice = lookup(table.models, base);
    return basePrice ? { ...basePrice, match: 'fine_tune_base' } : null;
  }
  return lookup(table.models, name);
}

// ---------------------------------------------------------------------------
// Service tiers

/** The tier a response's `service_tier` bills at. */
export type BilledTier = 'standard' | 'flex' | 'priority' | 'ultrafast';

/**
 * Maps a response's `service_tier` to the tier it is billed at:
 * `flex` → flex; `priority` and `fast` (Fast mode's name since 2026-07-30) →
 * priority; `ultrafast` → ultrafast; `default`, `auto`, `scale`, `standard`,
 * null or absent → standard. Anything else is returned as null: unknown.
 */
export function billedTier(serviceTier: string | null | undefined): BilledTier | null {
  if (serviceTier === null || serviceTier === undefined) return 'standard';
  switch (serviceTier.trim().toLowerCase()) {
    case '':
    case 'default':
    case 'auto':
    case 'scale':
    case 'standard':
      return 'standard';
    case 'flex':
      return 'flex';
    case 'priority':
    case 'fast':
      return 'priority';
    case 'ultrafast':
      return 'ultrafast';
    default:
      return null;
  }
}

/**
 * The rates for a response's service tier: the tier's own prices when the
 * model lists them, else the standard ones (an unlisted or unknown tier is
 * priced at standard rates; `tierIsPriced` tells whether that happened).
 */
export function tierPrice(price: ModelPrice, serviceTier: string | null | undefined): TierPrice {
  const tier = billedTier(serviceTier);
  if (tier === 'flex' && price.flex) return price.flex;
  if (tier === 'priority' && price.priority) return price.priority;
  if (tier === 'ultrafast' && price.ultrafast) return price.ultrafast;
  return price;
}

/** False when `tierPrice` fell back to standard rates for a non-standard tier. */
export function tierIsPriced(price: ModelPrice, serviceTier: string | null | undefined): boolean {
  const tier = billedTier(serviceTier);
  if (tier === 'standard') return true;
  if (tier === null) return false;
  return price[tier] !== undefined;
}
