// Success bodies for the five model endpoints, in the shapes of
// OPENAI-API.md §3.
//
// In:  a validated request (endpoint, body, requested model), its digest and
//      draws, and its prompt token count.  Out: the answer body and the usage
//      it reports.
// Pure and deterministic: the same seed and body always give the same usage
// and text (only ids and timestamps differ), and every answer text starts
// with `[sim:<digest>] ` so a client can check an answer belongs to its request.

import { maxOutputTokensOf } from '../pipeline/plan/charge.js';
import type { Endpoint, Usage } from '../shared/types.js';
import { fmix32, mulberry32, RequestHash, SALT } from './digest.js';
import type { IdSource } from './ids.js';

/** Dated snapshots the API names in its answers for a few well-known aliases. */
export const MODEL_SNAPSHOTS: Readonly<Record<string, string>> = {
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'gpt-4o': 'gpt-4o-2024-08-06',
  'gpt-4.1': 'gpt-4.1-2025-04-14',
  'gpt-4.1-mini': 'gpt-4.1-mini-2025-04-14',
  'gpt-5': 'gpt-5-2025-08-07',
  'gpt-5-mini': 'gpt-5-mini-2025-08-07',
  'o4-mini': 'o4-mini-2025-04-16',
  o3: 'o3-2025-04-16',
};

/** The model name an answer carries: the dated snapshot of a known alias, else the requested name. */
export function answeredModel(requested: string): string {
  return MODEL_SNAPSHOTS[requested] ?? requested;
}

/** Models that think before answering; their reasoning tokens are part of completion_tokens. */
export function isReasoningModel(model: string): boolean {
  return /^(o1|o3|o4|gpt-5)/.test(model);
}

/**
 * Models that bill prompt-cache writes at their own rate (GPT-5.6 and later,
 * pricing.json's notes): their answers report the prompt tokens written to
 * the cache (`cache_write_tokens`). Older models report none.
 */
export function reportsCacheWrites(model: string): boolean {
  return /^gpt-(5\.([6-9]|\d{2,})|([6-9]|\d{2,})(\.\d+)?)(-|$)/.test(model);
}

/** Output length range for a request that sets no output limit. */
export const UNLIMITED_OUTPUT_TOKENS = 400;
/** Words of answer text at most; usage, not text length, is what clients bill by. */
const MAX_ANSWER_WORDS = 24;
/** Prompt caching starts at 1,024 tokens and grows in steps of 128 (OpenAI prompt caching guide). */
const CACHE_MIN_TOKENS = 1024;
const CACHE_STEP_TOKENS = 128;

/** Token counts an answer reports, normalised across body kinds (the client's Usage, without audio). */
export type AnswerUsage = Pick<Usage, 'input_tokens' | 'cached_input_tokens' | 'cache_write_input_tokens' | 'output_tokens' | 'reasoning_tokens'>;

export interface AnswerRequest {
  endpoint: Endpoint;
  body: Record<string, unknown>;
  /** The model the request named (moderations: the default when it named none). */
  model: string;
  digest: string;
  hash: RequestHash;
  /** Prompt tokens as `measurePrompt` counts them, so a client's exact count equals ours. */
  promptTokens: number;
  ids: IdSource;
  /** Unix seconds for `created` / `created_at`. */
  createdSec: number;
}

export interface Answer {
  body: Record<string, unknown>;
  /** The model as answered (a snapshot name for known aliases). */
  model: string;
  usage: AnswerUsage;
}

export function buildAnswer(request: AnswerRequest): Answer {
  switch (request.endpoint) {
    case '/v1/chat/completions':
      return chatAnswer(request);
    case '/v1/responses':
      return responsesAnswer(request);
    case '/v1/completions':
      return completionsAnswer(request);
    case '/v1/embeddings':
      return embeddingsAnswer(request);
    case '/v1/moderations':
      return moderationsAnswer(request);
  }
}

// ---------------------------------------------------------------------------
// Output planning: lengths, reasoning and cache, all drawn from the digest.

interface ChoicePlan {
  tokens: number;
  /** The choice used its whole output limit: finish_reason "length". */
  isAtLimit: boolean;
  text: string;
}

interface OutputPlan {
  choices: ChoicePlan[];
  completionTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  /** Prompt tokens written to the cache (models that report cache writes, on a long prompt that missed it). */
  cacheWriteTokens: number;
}

function planOutput(request: AnswerRequest, options: { withReasoning: boolean; withCache: boolean }): OutputPlan {
  const { endpoint, body, hash } = request;
  const choiceCount = endpoint === '/v1/responses' ? 1 : positiveIntegerOr(body.n, 1);
  // maxOutputTokensOf multiplies the per-answer limit by n (and best_of for
  // completions); undo that to get one choice's limit.
  const multiplier =
    endpoint === '/v1/responses'
      ? 1
      : Math.max(choiceCount, endpoint === '/v1/completions' ? positiveIntegerOr(body.best_of, 1) : 1);
  const maxOutput = maxOutputTokensOf(endpoint, body);
  const limit = maxOutput === null ? null : Math.max(1, Math.floor(maxOutput / multiplier));
  const range = limit ?? UNLIMITED_OUTPUT_TOKENS;

  const reasoningShare =
    options.withReasoning && isReasoningModel(request.model) ? 0.3 + 0.4 * hash.unit(SALT.reasoning) : 0;
  const choices: ChoicePlan[] = [];
  let completionTokens = 0;
  for (let index = 0; index < choiceCount; index++) {
    const tokens = 1 + Math.floor(hash.unit(SALT.output, index) * range);
    const visibleTokens = tokens - Math.floor(tokens * reasoningShare);
    choices.push({
      tokens,
      isAtLimit: limit !== null && tokens === limit,
      text: answerText(request.digest, hash, index, visibleTokens),
    });
    completionTokens += tokens;
  }
  // Reasoning is a share of the completion, never added on top of it.
  const reasoningTokens = Math.floor(completionTokens * reasoningShare);
  const cachedTokens = options.withCache ? cachedTokensOf(request.promptTokens, hash) : 0;
  // A long prompt that missed the cache is written to it: the same prefix a hit would have read.
  const cacheWriteTokens =
    options.withCache && cachedTokens === 0 && reportsCacheWrites(request.model) && request.promptTokens >= CACHE_MIN_TOKENS
      ? cachePrefixOf(request.promptTokens)
      : 0;
  return { choices, completionTokens, reasoningTokens, cachedTokens, cacheWriteTokens };
}

/** About half of long prompts hit the cache: the largest 1024 + 128·k that fits. */
function cachedTokensOf(promptTokens: number, hash: RequestHash): number {
  if (promptTokens < CACHE_MIN_TOKENS || hash.unit(SALT.cache) >= 0.5) return 0;
  return cachePrefixOf(promptTokens);
}

function cachePrefixOf(promptTokens: number): number {
  return CACHE_MIN_TOKENS + CACHE_STEP_TOKENS * Math.floor((promptTokens - CACHE_MIN_TOKENS) / CACHE_STEP_TOKENS);
}

const WORDS = [
  'the', 'answer', 'is', 'simulated', 'and', 'deterministic', 'for', 'this', 'request', 'body', 'so', 'every',
  'retry', 'gets', 'same', 'text', 'tokens', 'are', 'counted', 'from', 'prompt', 'model', 'output', 'limit',
  'rate', 'budget', 'minute', 'second', 'batch', 'line', 'result', 'file', 'cost', 'usage', 'cache', 'reason',
  'quiet', 'river', 'stone', 'green', 'light', 'small', 'window', 'paper', 'clock', 'north', 'garden', 'signal',
  'thread', 'number', 'value', 'table', 'field', 'order', 'queue', 'stream', 'bucket', 'header', 'status', 'client',
  'server', 'socket', 'latency', 'done',
];

/** `[sim:<digest>] ` and a few words, one word per visible token up to a small cap. */
function answerText(digest: string, hash: RequestHash, choice: number, visibleTokens: number): string {
  const next = mulberry32(hash.word(SALT.text, choice));
  const count = Math.max(1, Math.min(MAX_ANSWER_WORDS, visibleTokens));
  let text = `[sim:${digest}]`;
  for (let i = 0; i < count; i++) text += ` ${WORDS[Math.floor(next() * WORDS.length)] as string}`;
  return text;
}

// ---------------------------------------------------------------------------
// Bodies.

function chatAnswer(request: AnswerRequest): Answer {
  const plan = planOutput(request, { withReasoning: true, withCache: true });
  const model = answeredModel(request.model);
  const body = {
    id: `chatcmpl-${request.ids.base62(29)}`,
    object: 'chat.completion',
    created: request.createdSec,
    model,
    choices: plan.choices.map((choice, index) => ({
      index,
      message: { role: 'assistant', content: choice.text, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: choice.isAtLimit ? 'length' : 'stop',
    })),
    usage: {
      prompt_tokens: request.promptTokens,
      completion_tokens: plan.completionTokens,
      total_tokens: request.promptTokens + plan.completionTokens,
      prompt_tokens_details: reportsCacheWrites(request.model)
        ? { cached_tokens: plan.cachedTokens, cache_write_tokens: plan.cacheWriteTokens, audio_tokens: 0 }
        : { cached_tokens: plan.cachedTokens, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: plan.reasoningTokens,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: serviceTierOf(request.body),
    system_fingerprint: systemFingerprint(model),
  };
  return { body, model, usage: usageOf(request.promptTokens, plan) };
}

function responsesAnswer(request: AnswerRequest): Answer {
  const plan = planOutput(request, { withReasoning: true, withCache: true });
  const model = answeredModel(request.model);
  const choice = plan.choices[0] as ChoicePlan;
  const isIncomplete = choice.isAtLimit;
  const status = isIncomplete ? 'incomplete' : 'completed';
  const output: unknown[] = [];
  if (isReasoningModel(request.model)) {
    output.push({ id: `rs_${request.ids.hex(48)}`, type: 'reasoning', summary: [] });
  }
  output.push({
    id: `msg_${request.ids.hex(48)}`,
    type: 'message',
    status,
    content: [{ type: 'output_text', annotations: [], logprobs: [], text: choice.text }],
    role: 'assistant',
  });
  const fields = request.body;
  const requestedReasoning = isObject(fields.reasoning) ? fields.reasoning : {};
  const body = {
    id: `resp_${request.ids.hex(48)}`,
    object: 'response',
    created_at: request.createdSec,
    status,
    completed_at: isIncomplete ? null : request.createdSec,
    background: false,
    error: null,
    incomplete_details: isIncomplete ? { reason: 'max_output_tokens' } : null,
    instructions: fields.instructions ?? null,
    max_output_tokens: fields.max_output_tokens ?? null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: fields.previous_response_id ?? null,
    reasoning: {
      effort: isReasoningModel(request.model) ? (requestedReasoning.effort ?? 'medium') : null,
      summary: requestedReasoning.summary ?? null,
    },
    service_tier: serviceTierOf(fields),
    store: fields.store ?? true,
    temperature: fields.temperature ?? 1.0,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: fields.top_p ?? 1.0,
    truncation: 'disabled',
    usage: {
      input_tokens: request.promptTokens,
      input_tokens_details: { cached_tokens: plan.cachedTokens, cache_write_tokens: plan.cacheWriteTokens },
      output_tokens: plan.completionTokens,
      output_tokens_details: { reasoning_tokens: plan.reasoningTokens },
      total_tokens: request.promptTokens + plan.completionTokens,
    },
    user: null,
    metadata: isObject(fields.metadata) ? fields.metadata : {},
  };
  return { body, model, usage: usageOf(request.promptTokens, plan) };
}

function completionsAnswer(request: AnswerRequest): Answer {
  // The legacy endpoint reports plain usage (no cached or reasoning details), so none are drawn.
  const plan = planOutput(request, { withReasoning: false, withCache: false });
  const model = answeredModel(request.model);
  const body = {
    id: `cmpl-${request.ids.base62(29)}`,
    object: 'text_completion',
    created: request.createdSec,
    model,
    system_fingerprint: systemFingerprint(model),
    choices: plan.choices.map((choice, index) => ({
      text: choice.text,
      index,
      logprobs: null,
      finish_reason: choice.isAtLimit ? 'length' : 'stop',
    })),
    usage: {
      prompt_tokens: request.promptTokens,
      completion_tokens: plan.completionTokens,
      total_tokens: request.promptTokens + plan.completionTokens,
    },
  };
  return { body, model, usage: usageOf(request.promptTokens, plan) };
}

function embeddingsAnswer(request: AnswerRequest): Answer {
  const { body: fields, hash } = request;
  const input = fields.input;
  // A string, or one token array (numbers), is one input; otherwise one per element.
  const count = Array.isArray(input) && !input.every((part) => typeof part === 'number') ? input.length : 1;
  const dimensions = embeddingDimensions(request.model, fields.dimensions);
  const isBase64 = fields.encoding_format === 'base64';
  const data: unknown[] = [];
  for (let index = 0; index < count; index++) {
    const vector = unitVector(hash.word(SALT.vector, index), dimensions);
    data.push({
      object: 'embedding',
      index,
      embedding: isBase64 ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector,
    });
  }
  const model = answeredModel(request.model);
  const body = {
    object: 'list',
    data,
    model,
    usage: { prompt_tokens: request.promptTokens, total_tokens: request.promptTokens },
  };
  return {
    body,
    model,
    usage: { input_tokens: request.promptTokens, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 0, reasoning_tokens: 0 },
  };
}

function embeddingDimensions(model: string, requested: unknown): number {
  if (typeof requested === 'number' && Number.isInteger(requested) && requested >= 1) return requested;
  return model.includes('3-large') ? 3072 : 1536;
}

/** A deterministic unit vector, components rounded to 8 decimals as the API's JSON floats are short. */
function unitVector(seed: number, dimensions: number): number[] {
  const next = mulberry32(seed);
  const vector = new Array<number>(dimensions);
  let sumOfSquares = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = next() * 2 - 1;
    vector[i] = value;
    sumOfSquares += value * value;
  }
  const norm = Math.sqrt(sumOfSquares) || 1;
  for (let i = 0; i < dimensions; i++) vector[i] = Math.round(((vector[i] as number) / norm) * 1e8) / 1e8;
  return vector;
}

const MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
] as const;

function moderationsAnswer(request: AnswerRequest): Answer {
  const input = request.body.input;
  // Strings are judged one by one; an array of content parts (text, images) is one input.
  const count = Array.isArray(input) && input.every((part) => typeof part === 'string') ? input.length : 1;
  const results: unknown[] = [];
  for (let index = 0; index < count; index++) {
    const next = mulberry32(request.hash.word(SALT.moderation, index));
    const categories: Record<string, boolean> = {};
    const scores: Record<string, number> = {};
    const appliedTypes: Record<string, string[]> = {};
    for (const category of MODERATION_CATEGORIES) {
      categories[category] = false;
      // Harmless text scores in the 1e-6..1e-3 range.
      scores[category] = Number((10 ** (-6 + 3 * next())).toPrecision(6));
      appliedTypes[category] = ['text'];
    }
    results.push({ flagged: false, categories, category_scores: scores, category_applied_input_types: appliedTypes });
  }
  const model = answeredModel(request.model);
  const body = { id: `modr-${request.ids.hex(32)}`, model, results };
  // Moderations are free and their answers carry no usage.
  return { body, model, usage: { input_tokens: 0, cached_input_tokens: 0, cache_write_input_tokens: 0, output_tokens: 0, reasoning_tokens: 0 } };
}

// ---------------------------------------------------------------------------

function usageOf(promptTokens: number, plan: OutputPlan): AnswerUsage {
  return {
    input_tokens: promptTokens,
    cached_input_tokens: plan.cachedTokens,
    cache_write_input_tokens: plan.cacheWriteTokens,
    output_tokens: plan.completionTokens,
    reasoning_tokens: plan.reasoningTokens,
  };
}

/** The tier that served the request: flex and priority are echoed, everything else is "default". */
export function serviceTierOf(body: Record<string, unknown>): string {
  const tier = body.service_tier;
  return tier === 'flex' || tier === 'priority' || tier === 'default' ? tier : 'default';
}

const fingerprints = new Map<string, string>();

/** A stable `fp_…` per model, as the API identifies its backend configuration. */
function systemFingerprint(model: string): string {
  let fingerprint = fingerprints.get(model);
  if (fingerprint === undefined) {
    let h = 0x811c9dc5;
    for (let i = 0; i < model.length; i++) h = Math.imul(h ^ model.charCodeAt(i), 0x01000193);
    fingerprint = `fp_${fmix32(h).toString(16).padStart(8, '0')}${(fmix32(h ^ 0x5bd1e995) & 0xff).toString(16).padStart(2, '0')}`;
    if (fingerprints.size < 1000) fingerprints.set(model, fingerprint);
  }
  return fingerprint;
}

function positiveIntegerOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : fallback;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
