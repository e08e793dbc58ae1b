import { describe, expect, it } from 'vitest';
import { emptyUsage, type Endpoint, type Usage } from '../src/shared/types.js';
import { modelOf, serviceTierOf, usageFromBody } from '../src/shared/usage.js';

function usage(parts: Partial<Usage>): Usage {
  return { ...emptyUsage(), ...parts };
}

// Bodies as in OPENAI-API.md §3 (trimmed to what matters).
const chatBody = {
  id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
  object: 'chat.completion',
  model: 'gpt-5.4-2026-03-05',
  choices: [],
  usage: {
    prompt_tokens: 19,
    completion_tokens: 10,
    total_tokens: 29,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  },
  service_tier: 'default',
};

const responsesBody = {
  id: 'resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b',
  object: 'response',
  model: 'gpt-5.4',
  output: [],
  usage: {
    input_tokens: 36,
    input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: 87,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 123,
  },
};

describe('usageFromBody', () => {
  it.each<[string, Endpoint, unknown, Usage | null]>([
    ['a chat completion', '/v1/chat/completions', chatBody, usage({ input_tokens: 19, output_tokens: 10 })],
    [
      'a chat completion with cached, reasoning and audio details',
      '/v1/chat/completions',
      {
        usage: {
          prompt_tokens: 2006,
          completion_tokens: 300,
          total_tokens: 2306,
          prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 50 },
          completion_tokens_details: { reasoning_tokens: 192, audio_tokens: 20 },
        },
      },
      usage({
        input_tokens: 2006,
        cached_input_tokens: 1920,
        input_audio_tokens: 50,
        output_tokens: 300,
        reasoning_tokens: 192,
        output_audio_tokens: 20,
      }),
    ],
    [
      'a chat completion without detail objects',
      '/v1/chat/completions',
      { usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } },
      usage({ input_tokens: 5, output_tokens: 7 }),
    ],
    [
      'a chat completion with null detail objects',
      '/v1/chat/completions',
      { usage: { prompt_tokens: 5, completion_tokens: 7, prompt_tokens_details: null, completion_tokens_details: null } },
      usage({ input_tokens: 5, output_tokens: 7 }),
    ],
    [
      'a legacy completion',
      '/v1/completions',
      { object: 'text_completion', model: 'gpt-3.5-turbo-instruct', usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } },
      usage({ input_tokens: 5, output_tokens: 7 }),
    ],
    ['a response', '/v1/responses', responsesBody, usage({ input_tokens: 36, output_tokens: 87 })],
    [
      'a response with cached and reasoning tokens',
      '/v1/responses',
      {
        usage: {
          input_tokens: 5000,
          input_tokens_details: { cached_tokens: 4096, cache_write_tokens: 0 },
          output_tokens: 1200,
          output_tokens_details: { reasoning_tokens: 1024 },
          total_tokens: 6200,
        },
      },
      usage({ input_tokens: 5000, cached_input_tokens: 4096, output_tokens: 1200, reasoning_tokens: 1024 }),
    ],
    [
      'a response that wrote to the prompt cache (cache_write_tokens, part of input and apart from cached)',
      '/v1/responses',
      {
        usage: {
          input_tokens: 3000,
          input_tokens_details: { cached_tokens: 1024, cache_write_tokens: 1920 },
          output_tokens: 10,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: 3010,
        },
      },
      usage({ input_tokens: 3000, cached_input_tokens: 1024, cache_write_input_tokens: 1920, output_tokens: 10 }),
    ],
    [
      'a chat completion that wrote to the prompt cache',
      '/v1/chat/completions',
      { usage: { prompt_tokens: 2100, completion_tokens: 5, total_tokens: 2105, prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 2048, audio_tokens: 0 } } },
      usage({ input_tokens: 2100, cache_write_input_tokens: 2048, output_tokens: 5 }),
    ],
    [
      'a response without detail objects',
      '/v1/responses',
      { usage: { input_tokens: 3, output_tokens: 4 } },
      usage({ input_tokens: 3, output_tokens: 4 }),
    ],
    [
      'an embedding',
      '/v1/embeddings',
      { object: 'list', data: [], model: 'text-embedding-ada-002', usage: { prompt_tokens: 8, total_tokens: 8 } },
      usage({ input_tokens: 8 }),
    ],
    [
      'an embedding that reports only total_tokens',
      '/v1/embeddings',
      { usage: { total_tokens: 8 } },
      usage({ input_tokens: 8 }),
    ],
    [
      'a moderation (no usage: free, all zero)',
      '/v1/moderations',
      { id: 'modr-1', model: 'omni-moderation-latest', results: [{ flagged: false }] },
      emptyUsage(),
    ],
    [
      'a moderation with an empty usage object',
      '/v1/moderations',
      { usage: {} },
      emptyUsage(),
    ],
    ['a chat body with no usage', '/v1/chat/completions', { id: 'x', choices: [] }, null],
    ['a chat body with an unknown usage shape', '/v1/chat/completions', { usage: { tokens: 5 } }, null],
    ['not an object', '/v1/chat/completions', 'oops', null],
    ['null', '/v1/moderations', null, null],
    ['an array', '/v1/embeddings', [1, 2], null],
    [
      'a responses-shaped body filed under chat completions (shape wins)',
      '/v1/chat/completions',
      { usage: { input_tokens: 3, output_tokens: 4 } },
      usage({ input_tokens: 3, output_tokens: 4 }),
    ],
  ])('reads %s', (_name, url, body, want) => {
    expect(usageFromBody(url, body)).toEqual(want);
  });

  it.each<[string, unknown, number]>([
    ['an integer', 12, 12],
    ['a float, rounded', 12.6, 13],
    ['a numeric string', '42', 42],
    ['a negative number, clamped', -3, 0],
    ['NaN', Number.NaN, 0],
    ['Infinity', Number.POSITIVE_INFINITY, 0],
    ['a non-numeric string', 'lots', 0],
    ['a boolean', true, 0],
    ['an object', {}, 0],
    ['a huge number, capped', 1e300, Number.MAX_SAFE_INTEGER],
  ])('coerces %s to an integer count', (_name, value, want) => {
    const got = usageFromBody('/v1/chat/completions', { usage: { prompt_tokens: value, completion_tokens: 0 } });
    expect(got?.input_tokens).toBe(want);
    expect(Number.isSafeInteger(got?.input_tokens)).toBe(true);
  });

  it.each<[string, Record<string, unknown>, Partial<Usage>]>([
    [
      'cached above input',
      { prompt_tokens: 10, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 50, audio_tokens: 99 } },
      { input_tokens: 10, cached_input_tokens: 10, input_audio_tokens: 10 },
    ],
    [
      'cached plus cache-write above input',
      { input_tokens: 100, output_tokens: 0, input_tokens_details: { cached_tokens: 60, cache_write_tokens: 70 } },
      { input_tokens: 100, cached_input_tokens: 60, cache_write_input_tokens: 40 },
    ],
    [
      'reasoning above output',
      { input_tokens: 1, output_tokens: 5, output_tokens_details: { reasoning_tokens: 8 } },
      { input_tokens: 1, output_tokens: 5, reasoning_tokens: 5 },
    ],
  ])('never lets a part exceed its whole: %s', (_name, u, want) => {
    expect(usageFromBody('/v1/chat/completions', { usage: u })).toEqual(usage(want));
  });

  it('reads a Batch API output line through its response.body', () => {
    const line = {
      id: 'batch_req_wnaDys',
      custom_id: 'request-2',
      response: { status_code: 200, request_id: 'req_c187b3', body: chatBody },
      error: null,
    };
    expect(usageFromBody('/v1/chat/completions', line.response.body)).toEqual(usage({ input_tokens: 19, output_tokens: 10 }));
    expect(modelOf(line.response.body)).toBe('gpt-5.4-2026-03-05');
    expect(serviceTierOf(line.response.body)).toBe('default');
  });
});

describe('serviceTierOf and modelOf', () => {
  it.each<[unknown, string | null, string | null]>([
    [chatBody, 'default', 'gpt-5.4-2026-03-05'],
    [{ model: 'o3-2025-04-16', service_tier: 'flex' }, 'flex', 'o3-2025-04-16'],
    [{ model: 'gpt-5.6-sol', service_tier: 'priority' }, 'priority', 'gpt-5.6-sol'],
    [responsesBody, null, 'gpt-5.4'],
    [{ model: '', service_tier: '' }, null, null],
    [{ model: 42, service_tier: 7 }, null, null],
    [null, null, null],
    ['text', null, null],
  ])('%j → tier %s, model %s', (body, tier, model) => {
    expect(serviceTierOf(body)).toBe(tier);
    expect(modelOf(body)).toBe(model);
  });
});
