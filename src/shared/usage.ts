// Token usage from a response body, normalised across body kinds.
//
// In:  the endpoint and a success body (online, or a Batch API output line's
//      `response.body`: the shapes are the same).
// Out: a Usage with integer counts, or null when the body reports none.
// Owns: the mapping of each API usage shape onto Usage (OPENAI-API.md §3).
//
// Shapes:
// - chat completions, legacy completions: `prompt_tokens`, `completion_tokens`,
//   `prompt_tokens_details.{cached_tokens, cache_write_tokens, audio_tokens}`,
//   `completion_tokens_details.{reasoning_tokens, audio_tokens}`;
// - responses: `input_tokens`, `input_tokens_details.{cached_tokens,
//   cache_write_tokens}`, `output_tokens`, `output_tokens_details.reasoning_tokens`;
// - embeddings: `prompt_tokens` (all input);
// - moderations: no usage at all; the endpoint is free, so all zero (not null).
// The shape is recognised by its fields, so a body is read right whatever
// endpoint it was filed under. Cache-write tokens (`cache_write_tokens` in the
// openai-openapi spec's CompletionUsage and ResponseUsage) are part of the
// input tokens, as cached ones are, and distinct from them: the Usage API
// reports input = uncached + cached + cache-write.

import { emptyUsage, type Endpoint, type Usage } from './types.js';

/**
 * A token count as a non-negative safe integer. The API sends integers; a
 * float, a numeric string or a negative number is coerced (rounded, clamped
 * at 0) rather than allowed to poison integer totals; anything else is 0.
 */
function count(value: unknown): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && value.trim() !== '') n = Number(value);
  else return 0;
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.round(n), Number.MAX_SAFE_INTEGER);
}

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function has(obj: Record<string, unknown>, key: string): boolean {
  return obj[key] !== undefined && obj[key] !== null;
}

/**
 * Normalised usage of a success body. Detail objects that are missing count
 * as 0. Parts never exceed their whole: cached and input-audio tokens are at
 * most the input tokens, cached plus cache-write tokens too; reasoning and output-audio tokens at most the output
 * tokens (so a malformed body cannot make an uncached count negative).
 */
export function usageFromBody(url: Endpoint, body: unknown): Usage | null {
  const b = objectOf(body);
  const u = b ? objectOf(b.usage) : undefined;
  if (!u) return url === '/v1/moderations' && b !== undefined ? emptyUsage() : null;

  let usage: Usage;
  if (has(u, 'input_tokens') || has(u, 'output_tokens')) {
    // Responses API.
    const inDetails = objectOf(u.input_tokens_details) ?? {};
    const outDetails = objectOf(u.output_tokens_details) ?? {};
    usage = {
      input_tokens: count(u.input_tokens),
      cached_input_tokens: count(inDetails.cached_tokens),
      cache_write_input_tokens: count(inDetails.cache_write_tokens),
      output_tokens: count(u.output_tokens),
      reasoning_tokens: count(outDetails.reasoning_tokens),
      input_audio_tokens: count(inDetails.audio_tokens),
      output_audio_tokens: count(outDetails.audio_tokens),
    };
  } else if (has(u, 'prompt_tokens') || has(u, 'completion_tokens') || has(u, 'total_tokens')) {
    // Chat completions, legacy completions, embeddings (prompt_tokens only).
    const inDetails = objectOf(u.prompt_tokens_details) ?? {};
    const outDetails = objectOf(u.completion_tokens_details) ?? {};
    const prompt = has(u, 'prompt_tokens')
      ? count(u.prompt_tokens)
      : Math.max(0, count(u.total_tokens) - count(u.completion_tokens));
    usage = {
      input_tokens: prompt,
      cached_input_tokens: count(inDetails.cached_tokens),
      cache_write_input_tokens: count(inDetails.cache_write_tokens),
      output_tokens: count(u.completion_tokens),
      reasoning_tokens: count(outDetails.reasoning_tokens),
      input_audio_tokens: count(inDetails.audio_tokens),
      output_audio_tokens: count(outDetails.audio_tokens),
    };
  } else {
    // A usage object with none of the known counts (moderations may one day send one).
    return url === '/v1/moderations' ? emptyUsage() : null;
  }

  usage.cached_input_tokens = Math.min(usage.cached_input_tokens, usage.input_tokens);
  usage.cache_write_input_tokens = Math.min(usage.cache_write_input_tokens, usage.input_tokens - usage.cached_input_tokens);
  usage.input_audio_tokens = Math.min(usage.input_audio_tokens, usage.input_tokens);
  usage.reasoning_tokens = Math.min(usage.reasoning_tokens, usage.output_tokens);
  usage.output_audio_tokens = Math.min(usage.output_audio_tokens, usage.output_tokens);
  return usage;
}

/** The `service_tier` a response reports (the tier it was billed at), or null. */
export function serviceTierOf(body: unknown): string | null {
  const tier = objectOf(body)?.service_tier;
  return typeof tier === 'string' && tier !== '' ? tier : null;
}

/** The model as the API named it in the answer (e.g. a dated snapshot), or null. */
export function modelOf(body: unknown): string | null {
  const model = objectOf(body)?.model;
  return typeof model === 'string' && model !== '' ? model : null;
}
