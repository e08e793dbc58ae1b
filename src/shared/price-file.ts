// Price files: the built-in pricing.json (shipped with the package) and an
// optional override file in the same format (`--prices file.json`).
//
// In:  paths.  Out: a validated PriceTable (pricing/prices.ts).
// Owns: reading, the file format and its validation; pricing/ itself stays
// pure arithmetic over the loaded table.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, InputError } from './errors.js';
import type { ModelPrice, PriceTable, TierPrice } from '../pricing/prices.js';

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
const PRICE_KEYS = new Set(['input', 'cached_input', 'cache_write_input', 'output']);
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
      fail(`${where}.${key}`, `is not a known field (expected input, cached_input, cache_write_input, output, flex, priority, ultrafast, long_context)`);
    }
  }
  const price: ModelPrice = parseTierPrice(e, where, fail);
  for (const tier of TIER_KEYS) {
    if (e[tier] === undefined) continue;
    if (!isPlainObject(e[tier])) fail(`${where}.${tier}`, `must be an object, got ${describe(e[tier])}`);
    const t = e[tier] as Record<string, unknown>;
    for (const key of Object.keys(t)) {
      if (!PRICE_KEYS.has(key) && !isComment(key)) {
        fail(`${where}.${tier}.${key}`, 'is not a known field (expected input, cached_input, cache_write_input, output)');
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

/**
 * `cached_input` may be omitted: the model then has no cache discount and it
 * equals `input`. `cache_write_input` may be omitted: cache writes are then
 * billed as ordinary input (left absent, so a tier does not inherit it).
 */
function parseTierPrice(
  e: Record<string, unknown>,
  where: string,
  fail: (where: string, problem: string) => never,
): TierPrice {
  const input = nonNegative(e.input, `${where}.input`, fail);
  const output = nonNegative(e.output, `${where}.output`, fail);
  const cached = e.cached_input === undefined ? input : nonNegative(e.cached_input, `${where}.cached_input`, fail);
  const price: TierPrice = { input, cached_input: cached, output };
  if (e.cache_write_input !== undefined) price.cache_write_input = nonNegative(e.cache_write_input, `${where}.cache_write_input`, fail);
  return price;
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

