// The simulator's options: what each means, its default, and eager validation.
//
// In:  SimulatorOptions as a caller (the CLI, a test) passes them.
// Out: ResolvedSimulatorOptions with every default filled in, or an Error
//      naming the bad option ("Expected `rpm` to be a number > 0, got `0`").

import { validateFaultRates, type FaultRates } from './faults.js';

export type RateLimit429Headers = 'reset' | 'none' | 'retry-after' | 'retry-after-ms';

export interface SimulatorOptions {
  /** TCP port; 0 (default) picks a free one. The CLI passes 8787. */
  port?: number;
  /** Interface to listen on. Default '127.0.0.1' (loopback only). */
  host?: string;
  /** If set, the only bearer key accepted on /v1 API paths; null/undefined accepts any non-empty key. */
  apiKey?: string | null;
  /** The only key accepted on /v1/organization/* paths. Default 'sk-admin-sim'. */
  adminKey?: string;
  /** Requests per minute per (key, model). Default 10,000. */
  rpm?: number;
  /** Tokens per minute per (key, model). Default 10,000,000. */
  tpm?: number;
  /** Per-model overrides of rpm/tpm, by requested model name. */
  limits?: Record<string, { rpm?: number; tpm?: number }>;
  /** Also enforce per second: buckets of capacity limit/60 (at least 1) refilled at limit/60 per s. Default true. */
  quantize?: boolean;
  /** Mean latency added to each admitted request, ms. Default 0. */
  latencyMs?: number;
  /** Spread of the latency as a fraction of latencyMs (±), deterministic per request. Default 0.2. */
  latencyJitter?: number;
  /** Fault rates 0..1 per kind; they must add up to at most 1. Default none. */
  faults?: FaultRates;
  /** Faults may hit every attempt of a body, not only the first. Default false. */
  faultsEveryAttempt?: boolean;
  /** Seed of every deterministic draw (lengths, caching, faults, latency). Default 1. */
  seed?: number;
  /** How long a "hang" fault holds a request before closing the socket, ms. Default 600,000. */
  hangMs?: number;
  /** What a rate-limit 429 carries: x-ratelimit-* headers ('reset', default), nothing, retry-after (s) or retry-after-ms. */
  rateLimit429Headers?: RateLimit429Headers;
  /** After this many successful answers, every request gets 429 insufficient_quota. Default never. */
  quotaAfterRequests?: number;
  /** Answer without any `usage` object, as some OpenAI-compatible servers (vLLM, llama.cpp, mocks) do. Default false. */
  omitUsage?: boolean;
  /** Batch API timing and limits (src/sim/batch.ts). Default: 1 s steps, 24 h window, no enqueued-token limit. */
  batch?: BatchSimulatorOptions;
}

/** How the simulated Batch API behaves; every field optional (defaults in src/sim/batch.ts). */
export interface BatchSimulatorOptions {
  /** Length of one lifecycle step, ms: validating takes 1 step, in_progress 3, finalizing 1, cancelling 1. Default 1,000. */
  stepMs?: number;
  /** A batch still validating or in progress this long after creation expires, ms. Default 24 h (the completion window). */
  expiresAfterMs?: number;
  /** Input tokens that may be enqueued per model at once; a batch past it fails with token_limit_exceeded. Default none. */
  enqueuedTokenLimit?: number | null;
  /** Delay before answering POST /v1/files and POST /v1/batches, after the object is stored, ms (crash tests). Default 0. */
  createDelayMs?: number;
}

export interface ResolvedSimulatorOptions {
  port: number;
  host: string;
  apiKey: string | null;
  adminKey: string;
  rpm: number;
  tpm: number;
  limits: Record<string, { rpm?: number; tpm?: number }>;
  quantize: boolean;
  latencyMs: number;
  latencyJitter: number;
  faults: FaultRates;
  faultsEveryAttempt: boolean;
  seed: number;
  hangMs: number;
  rateLimit429Headers: RateLimit429Headers;
  quotaAfterRequests: number | null;
  omitUsage: boolean;
  batch: BatchSimulatorOptions;
}

const HEADER_MODES: readonly RateLimit429Headers[] = ['reset', 'none', 'retry-after', 'retry-after-ms'];

export function resolveOptions(options: SimulatorOptions = {}): ResolvedSimulatorOptions {
  const resolved: ResolvedSimulatorOptions = {
    port: options.port ?? 0,
    host: options.host ?? '127.0.0.1',
    apiKey: options.apiKey ?? null,
    adminKey: options.adminKey ?? 'sk-admin-sim',
    rpm: options.rpm ?? 10_000,
    tpm: options.tpm ?? 10_000_000,
    limits: options.limits ?? {},
    quantize: options.quantize ?? true,
    latencyMs: options.latencyMs ?? 0,
    latencyJitter: options.latencyJitter ?? 0.2,
    faults: options.faults ?? {},
    faultsEveryAttempt: options.faultsEveryAttempt ?? false,
    seed: options.seed ?? 1,
    hangMs: options.hangMs ?? 600_000,
    rateLimit429Headers: options.rateLimit429Headers ?? 'reset',
    quotaAfterRequests: options.quotaAfterRequests ?? null,
    omitUsage: options.omitUsage ?? false,
    batch: options.batch ?? {},
  };

  expect(Number.isInteger(resolved.port) && resolved.port >= 0 && resolved.port <= 65535, 'port', 'an integer from 0 to 65535', resolved.port);
  expect(resolved.apiKey === null || resolved.apiKey !== '', 'apiKey', 'a non-empty string or null', resolved.apiKey);
  expect(resolved.adminKey !== '', 'adminKey', 'a non-empty string', resolved.adminKey);
  expectPositive(resolved.rpm, 'rpm');
  expectPositive(resolved.tpm, 'tpm');
  for (const [model, limit] of Object.entries(resolved.limits)) {
    if (limit.rpm !== undefined) expectPositive(limit.rpm, `limits["${model}"].rpm`);
    if (limit.tpm !== undefined) expectPositive(limit.tpm, `limits["${model}"].tpm`);
  }
  expect(Number.isFinite(resolved.latencyMs) && resolved.latencyMs >= 0, 'latencyMs', 'a number ≥ 0', resolved.latencyMs);
  expect(
    Number.isFinite(resolved.latencyJitter) && resolved.latencyJitter >= 0 && resolved.latencyJitter <= 1,
    'latencyJitter',
    'a number from 0 to 1',
    resolved.latencyJitter,
  );
  validateFaultRates(resolved.faults);
  expect(Number.isSafeInteger(resolved.seed), 'seed', 'an integer', resolved.seed);
  expect(Number.isFinite(resolved.hangMs) && resolved.hangMs >= 0, 'hangMs', 'a number ≥ 0', resolved.hangMs);
  expect(HEADER_MODES.includes(resolved.rateLimit429Headers), 'rateLimit429Headers', HEADER_MODES.join(' | '), resolved.rateLimit429Headers);
  if (resolved.quotaAfterRequests !== null) {
    expect(
      Number.isInteger(resolved.quotaAfterRequests) && resolved.quotaAfterRequests >= 0,
      'quotaAfterRequests',
      'an integer ≥ 0',
      resolved.quotaAfterRequests,
    );
  }
  return resolved;
}

function expectPositive(value: number, name: string): void {
  expect(Number.isFinite(value) && value > 0, name, 'a number > 0', value);
}

function expect(condition: boolean, name: string, expected: string, value: unknown): void {
  if (!condition) throw new Error(`Expected \`${name}\` to be ${expected}, got \`${String(value)}\``);
}
