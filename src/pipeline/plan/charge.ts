// The charge of a request: the tokens OpenAI's rate limiter counts against
// TPM when it admits the request, computed before it is sent.
//
// In:  the endpoint, the body.  Out: a Charge.
// One function serves the limiter, the budget cap (`--max-cost`) and `estimate`.
//
// OpenAI estimates admission from the characters of the request rather than
// tokenizing it, and counts the output limit times `n` up front ("Usage needs
// are estimated from this value", rate-limit advice, help article 6891753).
// We take the larger of the model's own token count and characters / 4 so that
// our charge is never below the server's.

import { tokenCounter, type EncodingName } from './bpe.js';
import type { Charge, Endpoint } from '../../shared/types.js';

export type { EncodingName } from './bpe.js';

/**
 * Output tokens counted for a request that sets no output limit
 * (`max_tokens`, `max_completion_tokens`, `max_output_tokens`). The API then
 * allows up to the model's whole output window; 4,096 is a deliberate middle
 * ground: big enough that a budget cap reserving it is rarely exceeded by an
 * ordinary answer, small enough not to starve the token budget. Set an
 * output limit on your requests to make the charge (and `--max-cost`) exact.
 */
export const DEFAULT_OUTPUT_TOKENS = 4096;

/** The legacy completions endpoint's own default `max_tokens`. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** The tokenizer a model uses: o200k_base for gpt-4o, 4.1, 4.5, 5 and the o-series; cl100k_base for gpt-4, 3.5 and embeddings. */
export function encodingForModel(model: string): EncodingName {
  // A fine-tuned model (`ft:gpt-3.5-turbo-0125:org::id`) uses its base model's encoding.
  const m = model.toLowerCase().replace(/^ft:/, '');
  if (/^(gpt-3\.5|gpt-4(?![o.])|gpt-4-|text-embedding-|text-davinci|davinci|babbage)/.test(m)) return 'cl100k_base';
  return 'o200k_base';
}

export function countTokens(text: string, encoding: EncodingName): number {
  if (text.length === 0) return 0;
  return tokenCounter(encoding).count(text);
}

/** Tokens the chat format adds around every message, and to prime the reply (OpenAI cookbook, "How to count tokens"). */
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const TOKENS_REPLY_PRIMING = 3;

/**
 * The prompt of a request as the API sees it: its texts, and the token count
 * in the model's encoding. Non-text parts (images, audio, files) are not
 * counted; their tokens appear only in the usage the API reports.
 */
export interface PromptMeasure {
  chars: number;
  tokens: number;
}

export function measurePrompt(url: Endpoint, body: Record<string, unknown>): PromptMeasure {
  const encoding = encodingForModel(typeof body.model === 'string' ? body.model : '');
  let chars = 0;
  let tokens = 0;
  const add = (text: string): void => {
    chars += text.length;
    tokens += countTokens(text, encoding);
  };

  switch (url) {
    case '/v1/chat/completions': {
      const messages = Array.isArray(body.messages) ? body.messages : [];
      for (const message of messages) {
        if (!message || typeof message !== 'object') continue;
        const m = message as Record<string, unknown>;
        tokens += TOKENS_PER_MESSAGE;
        if (typeof m.role === 'string') tokens += countTokens(m.role, encoding);
        if (typeof m.name === 'string') {
          tokens += TOKENS_PER_NAME;
          add(m.name);
        }
        for (const text of textsOf(m.content)) add(text);
      }
      if (messages.length > 0) tokens += TOKENS_REPLY_PRIMING;
      break;
    }
    case '/v1/responses': {
      if (typeof body.instructions === 'string') add(body.instructions);
      if (typeof body.input === 'string') {
        add(body.input);
      } else if (Array.isArray(body.input)) {
        for (const inputItem of body.input) {
          if (!inputItem || typeof inputItem !== 'object') continue;
          const m = inputItem as Record<string, unknown>;
          if ('role' in m) tokens += TOKENS_PER_MESSAGE;
          for (const text of textsOf(m.content)) add(text);
        }
      }
      break;
    }
    // A completions prompt and an embeddings input take the same forms: a string, strings,
    // one token array, or token arrays.
    case '/v1/completions':
    case '/v1/embeddings':
    case '/v1/moderations': {
      const input = url === '/v1/completions' ? body.prompt : body.input;
      if (typeof input === 'string') {
        add(input);
      } else if (Array.isArray(input)) {
        for (const part of input) {
          if (typeof part === 'string') add(part);
          else if (typeof part === 'number') tokens += 1; // one token array
          else if (Array.isArray(part)) tokens += part.length; // an array of token arrays
          else for (const text of textsOf([part])) add(text);
        }
      }
      break;
    }
  }
  return { chars, tokens };
}

/** Text strings inside a content value: a string, or an array of parts with `text`. */
function textsOf(content: unknown): string[] {
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') texts.push(part);
    else if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
      texts.push((part as { text: string }).text);
    }
  }
  return texts;
}

/** The request's own output limit times `n`, or null when it sets none. */
export function maxOutputTokensOf(url: Endpoint, body: Record<string, unknown>): number | null {
  if (url === '/v1/embeddings' || url === '/v1/moderations') return 0;
  const limit = firstPositiveInteger(
    url === '/v1/responses' ? [body.max_output_tokens] : [body.max_completion_tokens, body.max_tokens],
  );
  const n = url === '/v1/responses' ? 1 : Math.max(positiveIntegerOr(body.n, 1), url === '/v1/completions' ? positiveIntegerOr(body.best_of, 1) : 1);
  if (limit === null) {
    return url === '/v1/completions' ? COMPLETIONS_DEFAULT_MAX_TOKENS * n : null;
  }
  return limit * n;
}

/** The server's admission estimate of a prompt: characters / 4, rounded up. */
export function charEstimate(chars: number): number {
  return Math.ceil(chars / 4);
}

export function chargeOf(url: Endpoint, body: Record<string, unknown>): Charge {
  const prompt = measurePrompt(url, body);
  const maxOutputTokens = maxOutputTokensOf(url, body);
  const inputTokens = Math.max(prompt.tokens, charEstimate(prompt.chars));
  const outputTokens = maxOutputTokens ?? DEFAULT_OUTPUT_TOKENS * positiveIntegerOr(body.n, 1);
  return {
    promptTokens: prompt.tokens,
    promptChars: prompt.chars,
    inputTokens,
    maxOutputTokens,
    outputTokens,
    total: inputTokens + outputTokens,
  };
}

function firstPositiveInteger(values: unknown[]): number | null {
  for (const value of values) {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  }
  return null;
}

function positiveIntegerOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : fallback;
}
