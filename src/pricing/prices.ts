// The price table: OpenAI's published per-token prices, dated, overridable.
//
// In:  the built-in pricing.json (shipped with the package) and an optional
//      override file in the same format (`--prices file.json`).
// Out: a validated PriceTable; `resolvePrice` maps a model name as the API
//      answered it to a listed price; `tierPrice` picks the rates of the
//      service tier the answer reports.
// Owns: the file format and its validation. Arithmetic lives in cost.ts.
//
// All prices are USD per 1,000,000 tokens.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, InputError } from '../core/errors.js';

/** Rates of one processing tier, USD per 1M tokens. */
export interface TierPrice {
  /** Uncached input tokens. */
  input: number;
  /** Input tokens served from the prompt cache; equals `input` where a model has no cache discount. */
  cached_input: number;
  /** Output tokens, reasoning tokens included. */
  output: number;
}

/**
 * Long-context surcharge (GPT-5.4 and later): when one request has more than
 * `above_input_tokens` input tokens, the whole request is billed at the
 * multiplied rates ("input and cache rates double and output costs 1.5 times
 * the short-context rate for the full request", OpenAI model pages). The
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

/** The built-in table. The same relative URL works from src/pricing and from dist/pricing. */
export const BUILT_IN_PRICES_URL = new URL('../../pricing.json', import.meta.url);

/**
 * The built-in table merged with an override file when one is given.
 * Override models replace listed ones whole or add new ones; the override's
 * `as_of`, `source` and `batch_discount` win when it sets them.
 * A missing or unreadable override is an InputError; malformed content is a
 * ConfigError naming the file and the offending field.
 */
export function loadPriceTable(overridePath?: string): PriceTable {
  const builtInPath = fileURLToPath(BUILT_IN_PRICES_URL);
  const builtIn = parsePriceFile(readJson(builtInPath, 'built-in price table'), builtInPath, true);
  const base: PriceTable = {
    as_of: builtIn.as_of ?? '',
    source: builtIn.source ?? '',
    batch_discount: builtIn.batch_discount ?? 0.5,
    models: builtIn.models,
    override_path: null,
  };
  if (overridePath === undefined) return base;

  const override = parsePriceFile(readJson(overridePath, 'prices file'), overridePath, false);
  const source = `${override.source ?? 'prices file'} (override ${overridePath}) on top of the built-in table of ${base.as_of}`;
  return {
    as_of: override.as_of ?? base.as_of,
    source,
    batch_discount: override.batch_discount ?? base.batch_discount,
    models: Object.assign(Object.create(null) as Record<string, ModelPrice>, base.models, override.models),
    override_path: overridePath,
  };
}

/** A price file's content, validated; top-level fields are optional in an override. */
interface PriceFile {
  as_of?: string;
  source?: string;
  batch_discount?: number;
  models: Record<string, ModelPrice>;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new InputError(`Cannot read ${what} ${path}: ${reason}`, 'prices_unreadable', { cause: err });
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new ConfigError(`${what} ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

const TOP_LEVEL_KEYS = new Set(['as_of', 'source', 'batch_discount', 'models']);
const PRICE_KEYS = new Set(['input', 'cached_input', 'output']);
const TIER_KEYS = ['flex', 'priority', 'ultrafast'] as const;
const MODEL_KEYS = new Set([...PRICE_KEYS, ...TIER_KEYS, 'long_context']);
const LONG_CONTEXT_KEYS = new Set([
  'above_input_tokens',
  'input_multiplier',
  'cached_input_multiplier',
  'output_multiplier',
]);

/** Keys starting with `_` are comments and ignored anywhere in a price file. */
function isComment(key: string): boolean {
  return key.startsWith('_');
}

/** Validates a parsed price file; `complete` demands every top-level field (the built-in table). */
function parsePriceFile(data: unknown, path: string, complete: boolean): PriceFile {
  const fail = (where: string, problem: string): never => {
    throw new ConfigError(`prices file ${path}: ${where} ${problem}`);
  };
  if (!isPlainObject(data)) fail('the top level', `must be a JSON object, got ${describe(data)}`);
  const obj = data as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!TOP_LEVEL_KEYS.has(key) && !isComment(key)) {
      fail(`"${key}"`, `is not a known field (expected as_of, source, batch_discount, models)`);
    }
  }
  // No prototype: a model named "constructor" or "__proto__" is just a name.
  const out: PriceFile = { models: Object.create(null) as Record<string, ModelPrice> };

  if (obj.as_of !== undefined || complete) {
    if (typeof obj.as_of !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(obj.as_of)) {
      fail('as_of', `must be a date "YYYY-MM-DD", got ${describe(obj.as_of)}`);
    }
    out.as_of = obj.as_of as string;
  }
  if (obj.source !== undefined || complete) {
    if (typeof obj.source !== 'string' || obj.source.trim() === '') {
      fail('source', `must be a non-empty string, got ${describe(obj.source)}`);
    }
    out.source = obj.source as string;
  }
  if (obj.batch_discount !== undefined || complete) {
    const d = obj.batch_discount;
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > 1) {
      fail('batch_discount', `must be a number from 0 to 1, got ${describe(d)}`);
    }
    out.batch_discount = d as number;
  }
  if (obj.models !== undefined || complete) {
    if (!isPlainObject(obj.models)) fail('models', `must be an object, got ${describe(obj.models)}`);
    for (const [name, entry] of Object.entries(obj.models as Record<string, unknown>)) {
      if (isComment(name)) continue;
      const key = name.trim().toLowerCase();
      if (key === '') fail('models', 'has an empty model name');
      out.models[key] = parseModelPrice(entry, `models["${name}"]`, fail);
    }
  }
  return out;
}

function parseModelPrice(
  entry: unknown,
  where: string,
  fail: (where: string, problem: string) => never,
): ModelPrice {
  if (!isPlainObject(entry)) fail(where, `must be an object, got ${describe(entry)}`);
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!MODEL_KEYS.has(key) && !isComment(key)) {
      fail(`${where}.${key}`, `is not a known field (expected input, cached_input, output, flex, priority, ultrafast, long_context)`);
    }
  }
  const price: ModelPrice = parseTierPrice(e, where, fail);
  for (const tier of TIER_KEYS) {
    if (e[tier] === undefined) continue;
    if (!isPlainObject(e[tier])) fail(`${where}.${tier}`, `must be an object, got ${describe(e[tier])}`);
    const t = e[tier] as Record<string, unknown>;
    for (const key of Object.keys(t)) {
      if (!PRICE_KEYS.has(key) && !isComment(key)) {
        fail(`${where}.${tier}.${key}`, 'is not a known field (expected input, cached_input, output)');
      }
    }
    price[tier] = parseTierPrice(t, `${where}.${tier}`, fail);
  }
  if (e.long_context !== undefined) {
    const lc = e.long_context;
    const at = `${where}.long_context`;
    if (!isPlainObject(lc)) fail(at, `must be an object, got ${describe(lc)}`);
    const l = lc as Record<string, unknown>;
    for (const key of Object.keys(l)) {
      if (!LONG_CONTEXT_KEYS.has(key) && !isComment(key)) fail(`${at}.${key}`, 'is not a known field');
    }
    const above = l.above_input_tokens;
    if (typeof above !== 'number' || !Number.isSafeInteger(above) || above < 1) {
      fail(`${at}.above_input_tokens`, `must be an integer ≥ 1, got ${describe(above)}`);
    }
    const input = nonNegative(l.input_multiplier, `${at}.input_multiplier`, fail);
    price.long_context = {
      above_input_tokens: above as number,
      input_multiplier: input,
      cached_input_multiplier:
        l.cached_input_multiplier === undefined
          ? input
          : nonNegative(l.cached_input_multiplier, `${at}.cached_input_multiplier`, fail),
      output_multiplier: nonNegative(l.output_multiplier, `${at}.output_multiplier`, fail),
    };
  }
  return price;
}

/** `cached_input` may be omitted: the model then has no cache discount and it equals `input`. */
function parseTierPrice(
  e: Record<string, unknown>,
  where: string,
  fail: (where: string, problem: string) => never,
): TierPrice {
  const input = nonNegative(e.input, `${where}.input`, fail);
  const output = nonNegative(e.output, `${where}.output`, fail);
  const cached = e.cached_input === undefined ? input : nonNegative(e.cached_input, `${where}.cached_input`, fail);
  return { input, cached_input: cached, output };
}

function nonNegative(value: unknown, where: string, fail: (where: string, problem: string) => never): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(where, `must be a finite number ≥ 0, got ${describe(value)}`);
  }
  return value as number;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

// ---------------------------------------------------------------------------
// Resolution: model as answered → listed price

export interface ResolvedPrice {
  /** The listed name whose price applies. */
  name: string;
  price: ModelPrice;
  /**
   * How the name was found: `exact`; `prefix` (a dated snapshot such as
   * gpt-4o-mini-2024-07-18 → gpt-4o-mini); `fine_tune_base` (an `ft:` model
   * with no fine-tune price listed, priced at its base model's standard rates,
   * which usually under-counts: OpenAI bills fine-tuned inference higher).
   */
  match: 'exact' | 'prefix' | 'fine_tune_base';
}

/**
 * Words that, right after a listed name, mean a different modality with
 * prices of its own (audio tokens at many times the text rate): such a model
 * does not resolve by prefix and stays unpriced rather than priced wrong.
 * gpt-4o-audio-preview is not gpt-4o; gpt-4o-mini-tts is not gpt-4o-mini.
 */
const OTHER_MODALITY_WORDS = new Set(['audio', 'realtime', 'transcribe', 'tts', 'image']);

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
      const nextWord = model.slice(name.length + 1).split('-', 1)[0] ?? '';
      if (OTHER_MODALITY_WORDS.has(nextWord)) return null;
      return { name, price: models[name] as ModelPrice, match: 'prefix' };
    }
  }
  return null;
}

/**
 * The price of a model as the API named it, or null when it is not listed.
 *
 * 1. An exact (case-insensitive) match.
 * 2. Else the longest listed name that is a prefix of the model followed by
 *    `-`: gpt-4o-2024-08-06 → gpt-4o (not gpt-4o-mini, which is no prefix of
 *    it); gpt-4o-mini-2024-07-18 → gpt-4o-mini.
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
