// Flag helpers shared by the commands: validation with messages shaped like
// "Expected `concurrency` to be an integer ≥ 1, got `0`", and the connection
// flags every command takes (--base-url, --simulate).

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import { sendingOptionsOf, type SendingRunOptions } from '../pipeline/options.js';
import type { TransportKind, TransportOptions } from '../pipeline/send/transport.js';
import { DEFAULT_BASE_URL, DEFAULT_MAX_LINE_BYTES, ENDPOINTS, isEndpoint, type Endpoint } from '../shared/types.js';
import type { InputScanOptions } from '../commands/validate.js';
import type { Args } from './command.js';
import type { BudgetStore } from '../stores/budget-store.js';
import { checkBudgetScope } from '../stores/budget-scope.js';
import { checkRedisUrl } from '../stores/redis-url.js';
import { MAX_SHARDS, parseShard, shardSuffix, type Shard } from '../shared/shard.js';
import { parseDurationMs } from '../shared/duration.js';
import { defaultCachePath } from '../stores/response-cache.js';

/** The input positional: a path, or `-` for stdin (yargs hands a lone `-` over as an empty string). */
export function inputFlag(args: Args): string {
  const input = args.input === '' ? '-' : optionalString(args, 'input');
  if (input === undefined) throw new ConfigError('Expected an input file (or - for stdin)');
  return input;
}

/** `--endpoint` for bare-form lines. */
export function endpointFlag(args: Args): Endpoint {
  const endpoint = args.endpoint ?? '/v1/chat/completions';
  if (!isEndpoint(endpoint)) throw new ConfigError(`Expected \`endpoint\` to be one of ${ENDPOINTS.join(', ')}, got \`${String(endpoint)}\``);
  return endpoint;
}

export function integerFlag(args: Args, name: string, min: number, fallback?: number): number {
  const value = args[name];
  if (value === undefined) {
    if (fallback === undefined) throw new ConfigError(`Expected \`${name}\` to be set`);
    return fallback;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(`Expected \`${name}\` to be an integer ≥ ${min}, got \`${String(value)}\``);
  }
  return value;
}

export function optionalInteger(args: Args, name: string, min: number): number | undefined {
  return args[name] === undefined ? undefined : integerFlag(args, name, min);
}

export function numberFlag(args: Args, name: string, min: number, max: number, fallback?: number): number {
  const value = args[name];
  if (value === undefined) {
    if (fallback === undefined) throw new ConfigError(`Expected \`${name}\` to be set`);
    return fallback;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `between ${min} and ${max}`;
    throw new ConfigError(`Expected \`${name}\` to be a number ${range}, got \`${String(value)}\``);
  }
  return value;
}

export function optionalNumber(args: Args, name: string, min: number, max = Infinity): number | undefined {
  return args[name] === undefined ? undefined : numberFlag(args, name, min, max);
}

export function optionalString(args: Args, name: string): string | undefined {
  const value = args[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new ConfigError(`Expected \`${name}\` to be a non-empty string, got \`${String(value)}\``);
  return value;
}

export function choiceFlag<T extends string>(args: Args, name: string, choices: readonly T[], fallback: T): T {
  const value = args[name] ?? fallback;
  if (!choices.includes(value as T)) {
    throw new ConfigError(`Expected \`${name}\` to be one of ${choices.join(', ')}, got \`${String(value)}\``);
  }
  return value as T;
}

/** Comma-separated list flag (`--models a,b,c`), also accepting repeated flags. */
export function listFlag(args: Args, name: string): string[] | undefined {
  const value = args[name];
  if (value === undefined) return undefined;
  const parts = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(','));
  const list = parts.map((p) => p.trim()).filter((p) => p !== '');
  return list.length > 0 ? list : undefined;
}

/** `--cache [PATH]`, `--cache-ttl D`, `--dedup` (implied by --cache). */
export function cacheFlags(args: Args, env: Record<string, string | undefined>): { cachePath: string | undefined; cacheTtlMs: number | undefined; dedup: boolean } {
  const cache = args.cache;
  let cachePath: string | undefined;
  if (cache !== undefined) {
    if (typeof cache !== 'string') throw new ConfigError(`Expected \`cache\` to be a path or nothing, got \`${String(cache)}\``);
    cachePath = cache === '' ? defaultCachePath(env) : cache;
  }
  const ttl = args['cache-ttl'];
  let cacheTtlMs: number | undefined;
  if (ttl !== undefined) {
    if (cachePath === undefined) throw new ConfigError('--cache-ttl needs --cache');
    const ms = parseDurationMs(String(ttl));
    if (ms === null || ms <= 0) throw new ConfigError(`Expected \`cache-ttl\` to be a duration such as 30d, 12h or 45m, got \`${String(ttl)}\``);
    cacheTtlMs = ms;
  }
  return { cachePath, cacheTtlMs, dedup: args.dedup === true || cachePath !== undefined };
}

/** Where to send requests: a base URL and keys, or the built-in simulator. */
export interface ConnectionOptions {
  baseUrl: string;
  simulate: boolean;
  apiKey: string | undefined;
  adminKey: string | undefined;
  organization: string | undefined;
  project: string | undefined;
}

export function connectionBuilder(yargs: Argv): Argv {
  return yargs
    .option('base-url', { type: 'string', describe: 'API base URL, e.g. http://127.0.0.1:8080/v1 (env OPENAI_BASE_URL)' })
    .option('simulate', { type: 'boolean', default: false, describe: 'use the built-in simulator (no key, no network)' });
}

export function connectionOptions(args: Args, env: Record<string, string | undefined>): ConnectionOptions {
  const simulate = args.simulate === true;
  const flagUrl = optionalString(args, 'base-url');
  // An empty OPENAI_BASE_URL means unset, as for the keys below and in the official SDK.
  const baseUrl = flagUrl ?? (env.OPENAI_BASE_URL || DEFAULT_BASE_URL);
  if (!simulate) {
    try {
      const url = new URL(baseUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    } catch {
      throw new ConfigError(`Expected \`base-url\` to be an http(s) URL, got \`${baseUrl}\``);
    }
  }
  return {
    baseUrl,
    simulate,
    apiKey: env.OPENAI_API_KEY || undefined,
    adminKey: env.OPENAI_ADMIN_KEY || undefined,
    organization: env.OPENAI_ORG_ID || undefined,
    project: env.OPENAI_PROJECT_ID || undefined,
  };
}

/** The flags of every command that sends requests through the pipeline (run, compare). */
export interface SendingOptions {
  connection: ConnectionOptions;
  transportKind: TransportKind;
  rpm: number | undefined;
  tpm: number | undefined;
  headroom: number;
  concurrency: number;
  timeoutMs: number;
  maxAttempts: number;
  pricesPath: string | undefined;
  /** --redis / OAI_BATCH_REDIS_URL: share the rate budgets through this Redis (DESIGN.md §6); undefined = this process's memory. Never printed. */
  redisUrl: string | undefined;
  /** --budget-scope: workers with the same scope share budgets; undefined = a hash of base URL, API key and project. */
  budgetScope: string | undefined;
  /** --redis-timeout, ms: how long grants wait for a lost Redis before the run stops (exit 3). Default 60 s. */
  redisTimeoutMs: number;
}

export function sendingBuilder(yargs: Argv): Argv {
  return connectionBuilder(
    yargs
      .option('rpm', { type: 'number', describe: 'requests per minute per model (default: learned from headers)' })
      .option('tpm', { type: 'number', describe: 'tokens per minute per model (default: learned from headers)' })
      .option('headroom', { type: 'number', default: 0.9, describe: 'share of learned limits to use' })
      .option('concurrency', { type: 'number', default: 512, describe: 'most requests in flight (fewer when the budget needs fewer or this process is saturated)' })
      .option('max-attempts', { type: 'number', default: 6, describe: 'attempts per request; 429 waits not counted' })
      .option('timeout', { type: 'number', default: 120, describe: 'seconds per attempt' })
      .option('prices', { type: 'string', describe: 'price table overrides (JSON, see samples/prices.json)' })
      .option('transport', { type: 'string', default: 'undici', choices: ['undici', 'sdk'], describe: 'HTTP client: undici (fast) or the openai SDK' })
      .option('redis', { type: 'string', describe: 'share rate budgets with other workers through this Redis: redis://[user:password@]host[:port][/db] or rediss:// (env OAI_BATCH_REDIS_URL)' })
      .option('budget-scope', { type: 'string', describe: 'workers with the same scope share one budget (default: a hash of base URL, API key and project)' })
      .option('redis-timeout', { type: 'number', default: 60, describe: 'seconds grants wait for a lost Redis before the run stops (exit 3, resumable)' }),
  );
}

/** The sending options as the core's run options take them, over an opened connection (and budget store, with --redis). */
export function sendingRunOptions(options: SendingOptions, transport: TransportOptions, budgetStore?: BudgetStore): SendingRunOptions {
  return sendingOptionsOf({ ...options, transport, budgetStore });
}

export function sendingOptions(args: Args, env: Record<string, string | undefined>): SendingOptions {
  return {
    connection: connectionOptions(args, env),
    transportKind: choiceFlag(args, 'transport', ['undici', 'sdk'] as const, 'undici'),
    rpm: optionalNumber(args, 'rpm', 1),
    tpm: optionalNumber(args, 'tpm', 1),
    headroom: numberFlag(args, 'headroom', 0.01, 1, 0.9),
    concurrency: integerFlag(args, 'concurrency', 1, 512),
    timeoutMs: numberFlag(args, 'timeout', 0.001, Infinity, 120) * 1000,
    maxAttempts: integerFlag(args, 'max-attempts', 1, 6),
    pricesPath: optionalString(args, 'prices'),
    ...budgetStoreFlags(args, env),
  };
}

/** --redis (or OAI_BATCH_REDIS_URL), --budget-scope, --redis-timeout. A message about the URL never contains it. */
function budgetStoreFlags(args: Args, env: Record<string, string | undefined>): Pick<SendingOptions, 'redisUrl' | 'budgetScope' | 'redisTimeoutMs'> {
  const flag = args.redis;
  if (flag !== undefined && (typeof flag !== 'string' || flag === '')) throw new ConfigError('Expected `redis` to be a redis:// or rediss:// URL, got nothing');
  // An empty OAI_BATCH_REDIS_URL means unset, as for OPENAI_BASE_URL.
  const redisUrl = flag ?? (env.OAI_BATCH_REDIS_URL || undefined);
  if (redisUrl !== undefined) checkRedisUrl(redisUrl);
  const budgetScope = optionalString(args, 'budget-scope');
  if (budgetScope !== undefined) {
    checkBudgetScope(budgetScope);
    if (redisUrl === undefined) throw new ConfigError('--budget-scope names a budget shared through Redis: give --redis URL (or OAI_BATCH_REDIS_URL) too');
  }
  return { redisUrl, budgetScope, redisTimeoutMs: numberFlag(args, 'redis-timeout', 0.1, Infinity, 60) * 1000 };
}

/** Default output names: strip a final .gz, then .jsonl or .json, add the shard (`.shard-I-of-N`) if any, and the suffix. */
export function defaultOutputName(input: string, kind: 'results' | 'errors' | 'summary', shard?: Shard): string {
  const stem = input.replace(/\.gz$/i, '').replace(/\.(jsonl|json)$/i, '') + (shard ? shardSuffix(shard) : '');
  return kind === 'summary' ? `${stem}.summary.json` : `${stem}.${kind}.jsonl`;
}

/** `--shard I/N` (0 ≤ I < N, as Kubernetes' JOB_COMPLETION_INDEX). */
export function shardFlag(args: Args): Shard | undefined {
  const value = args.shard;
  if (value === undefined) return undefined;
  const shard = typeof value === 'string' ? parseShard(value) : null;
  if (!shard) throw new ConfigError(`Expected \`shard\` to be I/N with 0 ≤ I < N ≤ ${MAX_SHARDS.toLocaleString('en-US')}, e.g. 0/4, got \`${String(value)}\``);
  return shard;
}

/** The flags that say how to read an input, as `run` reads it. */
export function inputScanBuilder(yargs: Argv): Argv {
  return yargs
    .positional('input', { type: 'string', describe: 'JSONL file of requests (either line form; .gz read compressed), or - for stdin' })
    .option('endpoint', { type: 'string', default: '/v1/chat/completions', describe: 'endpoint for bare-form lines' })
    .option('max-line-bytes', { type: 'number', default: DEFAULT_MAX_LINE_BYTES, describe: 'longest accepted input line, bytes' })
    .option('limit', { type: 'number', describe: 'only the first N lines' });
}

export function inputScanFromArgs(args: Args): InputScanOptions {
  const input = inputFlag(args);
  const endpoint = endpointFlag(args);
  const scan: InputScanOptions = { input, endpoint, maxLineBytes: integerFlag(args, 'max-line-bytes', 1, DEFAULT_MAX_LINE_BYTES) };
  const limit = optionalInteger(args, 'limit', 1);
  if (limit !== undefined) scan.limit = limit;
  return scan;
}

