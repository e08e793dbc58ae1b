// Shapes that cross module boundaries, typed once.
//
// File formats (results, errors, summary) use the snake_case field names of
// DESIGN.md §2 because scripts read them; in-memory shapes use camelCase.

/** OpenAI's API base; OPENAI_BASE_URL or --base-url replace it. */
export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/** Longest accepted input line (--max-line-bytes), bytes: 8 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;

/** The POST endpoints a line may name (Batch API `url` values). */
export const ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/embeddings',
  '/v1/completions',
  '/v1/moderations',
] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

export function isEndpoint(value: unknown): value is Endpoint {
  return typeof value === 'string' && (ENDPOINTS as readonly string[]).includes(value);
}

/** Tokens the rate limiter (and the budget cap, and `estimate`) count for one request. */
export interface Charge {
  /** Prompt tokens in the model's own encoding (exact where the encoding is known). */
  promptTokens: number;
  /** Text characters of the prompt, as the server's admission estimate counts them. */
  promptChars: number;
  /** max(promptTokens, ceil(promptChars / 4)): what admission counts for the input. */
  inputTokens: number;
  /** The request's own output limit times `n`, or null when it sets none. */
  maxOutputTokens: number | null;
  /** Output tokens counted at admission: maxOutputTokens, or the documented default. */
  outputTokens: number;
  /** inputTokens + outputTokens. */
  total: number;
}

/** One request, planned from one input line. */
export interface RequestItem {
  customId: string;
  /** 1-based physical line number (or 1-based element index for a JSON-array input). */
  line: number;
  method: 'POST';
  url: Endpoint;
  /** The body sent to the API (our top-level `metadata` already taken out). */
  body: Record<string, unknown>;
  /** The model the line names (`body.model`); moderations may omit it. */
  model: string;
  /** Our top-level `metadata`, echoed in the result, never sent. */
  metadata?: unknown;
  /** Which input form the line used. */
  form: 'batch' | 'bare';
  charge: Charge;
}

export const INPUT_PROBLEM_CODES = [
  'invalid_json',
  'not_an_object',
  'missing_model',
  'invalid_body',
  'unsupported_endpoint',
  'duplicate_custom_id',
  'line_too_long',
  'stream_not_supported',
] as const;
export type InputProblemCode = (typeof INPUT_PROBLEM_CODES)[number];

/** A line that cannot become a request. It becomes an errors-file record; the run goes on. */
export interface InputProblem {
  line: number;
  code: InputProblemCode;
  message: string;
  customId: string;
  metadata?: unknown;
}

/** Token counts as the API reported them, normalised across body kinds. */
export interface Usage {
  /** All input tokens, cached and cache-write ones included. */
  input_tokens: number;
  /** Input tokens read from the prompt cache. */
  cached_input_tokens: number;
  /** Input tokens written to the prompt cache (billed at their own rate by newer models); disjoint from the cached ones. */
  cache_write_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  input_audio_tokens: number;
  output_audio_tokens: number;
}

export function emptyUsage(): Usage {
  return {
    input_tokens: 0,
    cached_input_tokens: 0,
    cache_write_input_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
    input_audio_tokens: 0,
    output_audio_tokens: 0,
  };
}

/** The `response` object of a result or error line (Batch API output form). */
export interface ResponseRecord {
  status_code: number;
  request_id: string | null;
  body: unknown;
}

/** One line of the results file. */
export interface ResultRecord {
  id: string;
  custom_id: string;
  response: ResponseRecord;
  error: null;
  line: number;
  attempts: number;
  latency_ms: number;
  cost_usd: number | null;
  metadata?: unknown;
  /** "batch" for lines that came back through the Batch API. */
  via?: 'batch';
  /** An answer not bought for this line: from the response cache, or by an identical request of the same run. */
  cache?: 'hit' | 'dedup';
}

/** What answers not bought saved (with --cache or --dedup). */
export interface CacheSavings {
  hits: number;
  dedup: number;
  saved_usd: number;
  saved_tokens: number;
}

/** One line of the errors file. */
export interface ErrorRecord {
  id: string;
  custom_id: string;
  line: number;
  response: ResponseRecord | null;
  error: { code: string; message: string };
  attempts: number;
  metadata?: unknown;
  via?: 'batch';
}

export type StoppedReason =
  | 'interrupted'
  | 'max_cost'
  | 'max_total_cost'
  | 'auth_failed'
  | 'quota_exhausted'
  | 'rate_limit_wait'
  | 'unreachable'
  | 'budget_store_unavailable'
  | 'write_failed';

export type LimitSource = 'flags' | 'headers' | 'mixed' | 'default';

/** One model's budgets as the limiter enforces them now (progress, metrics, the summary's limits). */
export interface ModelLimitState {
  /** Effective budgets now (after headroom and any slow-down), per minute; null = unlimited. */
  rpm: number | null;
  tpm: number | null;
  /** The budgets before slow-down: what flags or headers set. */
  baseRpm: number | null;
  baseTpm: number | null;
  source: LimitSource;
  /** Limits the server announced (the lowest seen), if any. */
  headerRpm: number | null;
  headerTpm: number | null;
  /** Epoch ms until which the model is paused after a 429, or null. */
  pausedUntil: number | null;
  /** 1 = full budget; lower after 429s, recovering gradually. */
  rateFactor: number;
  inFlight: number;
  waiting: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export interface ModelTotals {
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  input_audio_tokens: number;
  output_audio_tokens: number;
  /** null when the model has no price (then it is listed in `unpriced_models`). */
  cost_usd: number | null;
  /** Answers of this model that carried no usage (their cost is unknown); absent when none. */
  requests_without_usage?: number;
}

export interface Alert {
  name: string;
  value: number;
  threshold: number;
}

/** The summary file, DESIGN.md §2. */
export interface Summary {
  tool: { name: 'oai-batch'; version: string };
  mode: 'online' | 'batch';
  input: { path: string; fingerprint: string; lines: number };
  requests: { total: number; succeeded: number; failed: number; skipped: number; pending: number };
  attempts: {
    total: number;
    retries: number;
    rate_limited: number;
    server_errors: number;
    timeouts: number;
  };
  usage: Usage;
  cost_usd: { total: number; input: number; cached_input: number; cache_write_input: number; output: number };
  by_model: Record<string, ModelTotals>;
  unpriced_models: string[];
  pricing: { as_of: string; source: string; batch_discount_applied: boolean };
  timing: {
    started_at: string;
    finished_at: string | null;
    wall_seconds: number;
    requests_per_minute: number;
    tokens_per_minute: number;
    charged_tokens_per_minute: number;
    /** Of successful requests; null in batch mode (the Batch API reports no per-request latency). */
    latency_ms: LatencySummary | null;
  };
  limits: Record<string, LimitReport>;
  alerts: Alert[];
  warnings: string[];
  /** This run's spend alone, USD (cost_usd covers the whole file, earlier runs included). */
  run_cost_usd: number;
  /** Answers that carried no usage: their cost is unknown, never counted as free. */
  requests_without_usage: number;
  /** What the response cache and in-run dedup saved (with --cache or --dedup). */
  cache?: CacheSavings;
  stopped_reason: StoppedReason | null;
}

export interface LimitReport {
  rpm: number | null;
  tpm: number | null;
  source: LimitSource;
  /** Whether `--concurrency`, not the budget, held the rate down for a noticeable share of the run. */
  concurrency_bound?: boolean;
}
