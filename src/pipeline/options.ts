// The options of runBatch, with their defaults and eager validation.

import type { Readable } from 'node:stream';
import { ConfigError } from '../shared/errors.js';
import type { EventListener } from '../shared/events.js';
import type { Limiter } from './limit.js';
import type { TransportKind, TransportOptions } from './send/transport.js';
import { DEFAULT_MAX_LINE_BYTES, type Endpoint } from '../shared/types.js';
import type { PriceTable } from '../pricing/prices.js';

export interface RunOptions {
  /** Input path, or `-` for `stdin`. */
  input: string;
  /** The input the summary names, when `input` is a derived file (compare's per-model sample). Default: `input`. */
  inputLabel?: string;
  /** The stream read when `input` is `-`. */
  stdin?: Readable;
  /** Results file (default: the input name with `.results.jsonl`). */
  output: string;
  /** Errors file: this run's final failures. */
  errors: string;
  /** Summary file, written atomically during and after the run. */
  summary: string;
  /** Endpoint for bare-form lines. Default `/v1/chat/completions`. */
  endpoint?: Endpoint;
  /** Where and how to connect (base URL, keys, org/project headers). */
  transport: TransportOptions;
  /** The HTTP client: `undici` (default) or the official `openai` SDK. */
  transportKind?: TransportKind;
  /** Requests per minute per model (--rpm); without it, learned from headers. */
  rpm?: number;
  /** Tokens per minute per model (--tpm); without it, learned from headers. */
  tpm?: number;
  /** Share of header-learned limits to use. Default 0.9. */
  headroom?: number;
  /** Most requests in flight. Default 512. */
  concurrency?: number;
  /** Attempts per request for transient failures; 429 waits are not counted. Default 6. */
  maxAttempts?: number;
  /** Per-attempt timeout, ms. Default 120,000. */
  timeoutMs?: number;
  /** Cap on this run's spend, USD (--max-cost). */
  maxCostUsd?: number;
  /** Cap on the whole file's spend, earlier runs included (read back by --resume), USD (--max-total-cost). */
  maxTotalCostUsd?: number;
  /** Continue into an existing results file, skipping what succeeded. */
  resume?: boolean;
  /** Start over, replacing an existing results file. */
  overwrite?: boolean;
  /** Resume even though the input changed and its keys are line numbers. */
  force?: boolean;
  /** Only the first N non-blank lines. */
  limit?: number;
  /** Answer from and store into the response cache at this path (--cache); implies `dedup`. */
  cachePath?: string;
  /** Ignore cache entries older than this, ms (--cache-ttl). Default: no limit. */
  cacheTtlMs?: number;
  /** Send identical requests of the run once; the others share its answer (--dedup). Default false. */
  dedup?: boolean;
  /** Longest accepted line, bytes. Default 8 MiB. */
  maxLineBytes?: number;
  /** How long in-flight requests may take to finish after an interrupt, ms. Default 30,000. */
  drainTimeoutMs?: number;
  /** The price table (built-in merged with --prices). */
  prices: PriceTable;
  /** Alert thresholds: a finished run crossing them exits 5. */
  failOnErrorRate?: number;
  failOnRateLimitRate?: number;
  /** First abort: stop reading and drain. */
  signal?: AbortSignal;
  /** Second abort: stop at once, keeping what is done. */
  forceSignal?: AbortSignal;
  onEvent?: EventListener;
  /** Replace the in-memory limiter (e.g. one shared by many workers). */
  limiter?: Limiter;
  /** Progress events every N ms. Default 1,000. */
  progressIntervalMs?: number;
  /** Summary rewritten every N ms. Default 5,000. */
  summaryIntervalMs?: number;
  /** Results fsynced every N ms. Default 1,000. */
  syncIntervalMs?: number;
  /** Random source for backoff jitter (tests inject one). */
  random?: () => number;
}

/** How a run sends: connection, client, budgets, concurrency, timeout, attempts. Shared by `run` and `compare` (each compared model is a run). */
export type SendingRunOptions = Pick<RunOptions, 'transport' | 'transportKind' | 'rpm' | 'tpm' | 'headroom' | 'concurrency' | 'timeoutMs' | 'maxAttempts'>;

/** The sending options out of a larger options object. */
export function sendingOptionsOf(options: SendingRunOptions): SendingRunOptions {
  return {
    transport: options.transport,
    transportKind: options.transportKind,
    rpm: options.rpm,
    tpm: options.tpm,
    headroom: options.headroom,
    concurrency: options.concurrency,
    timeoutMs: options.timeoutMs,
    maxAttempts: options.maxAttempts,
  };
}

export type ResolvedRunOptions = Required<
  Pick<
    RunOptions,
    | 'endpoint'
    | 'transportKind'
    | 'headroom'
    | 'concurrency'
    | 'maxAttempts'
    | 'timeoutMs'
    | 'maxLineBytes'
    | 'drainTimeoutMs'
    | 'progressIntervalMs'
    | 'summaryIntervalMs'
    | 'syncIntervalMs'
    | 'random'
  >
> &
  RunOptions;

export function resolveRunOptions(options: RunOptions): ResolvedRunOptions {
  const resolved = {
    endpoint: '/v1/chat/completions' as Endpoint,
    transportKind: 'undici' as TransportKind,
    headroom: 0.9,
    concurrency: 512,
    maxAttempts: 6,
    timeoutMs: 120_000,
    maxLineBytes: DEFAULT_MAX_LINE_BYTES,
    drainTimeoutMs: 30_000,
    progressIntervalMs: 1000,
    summaryIntervalMs: 5000,
    syncIntervalMs: 1000,
    random: Math.random,
    ...stripUndefined(options),
  } as ResolvedRunOptions;
  positiveInteger('concurrency', resolved.concurrency);
  positiveInteger('maxAttempts', resolved.maxAttempts);
  positiveNumber('timeoutMs', resolved.timeoutMs);
  positiveInteger('maxLineBytes', resolved.maxLineBytes);
  if (resolved.rpm !== undefined) positiveNumber('rpm', resolved.rpm);
  if (resolved.tpm !== undefined) positiveNumber('tpm', resolved.tpm);
  if (resolved.limit !== undefined) positiveInteger('limit', resolved.limit);
  for (const name of ['maxCostUsd', 'maxTotalCostUsd'] as const) {
    const value = resolved[name];
    if (value !== undefined && !(value >= 0)) throw new ConfigError(`Expected \`${name}\` to be a number ≥ 0, got \`${value}\``);
  }
  if (!(resolved.headroom > 0 && resolved.headroom <= 1)) {
    throw new ConfigError(`Expected \`headroom\` to be a number in (0, 1], got \`${resolved.headroom}\``);
  }
  if (resolved.resume && resolved.overwrite) throw new ConfigError('--resume and --overwrite cannot be used together');
  return resolved;
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`Expected \`${name}\` to be an integer ≥ 1, got \`${value}\``);
}

function positiveNumber(name: string, value: number): void {
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new ConfigError(`Expected \`${name}\` to be a number > 0, got \`${value}\``);
  }
}

function stripUndefined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as Partial<T>;
}
