import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import {
  COMPLETIONS_DEFAULT_MAX_TOKENS,
  DEFAULT_OUTPUT_TOKENS,
  charEstimate,
  chargeOf,
  encodingForModel,
  maxOutputTokensOf,
  measurePrompt,
  type EncodingName,
} from '../src/pipeline/plan/charge.js';
import type { Endpoint } from '../src/shared/types.js';

// A text whose token counts differ between the two encodings.
const MIXED_TEXT = 'Grüße aus Zürich! 東京の天気は晴れです。 Les élèves étudient la mécanique quantique.';

describe('encodingForModel', () => {
  it.each<[string, EncodingName]>([
    ['gpt-4o', 'o200k_base'],
    ['gpt-4o-mini', 'o200k_base'],
    ['gpt-4o-2024-08-06', 'o200k_base'],
    ['gpt-4o-mini-2024-07-18', 'o200k_base'],
    ['chatgpt-4o-latest', 'o200k_base'],
    ['GPT-4O', 'o200k_base'],
    ['gpt-4.1', 'o200k_base'],
    ['gpt-4.1-mini', 'o200k_base'],
    ['gpt-4.1-nano', 'o200k_base'],
    ['gpt-4.5-preview', 'o200k_base'],
    ['gpt-5', 'o200k_base'],
    ['gpt-5-mini', 'o200k_base'],
    ['gpt-5.4', 'o200k_base'],
    ['o1', 'o200k_base'],
    ['o1-mini', 'o200k_base'],
    ['o3', 'o200k_base'],
    ['o3-mini', 'o200k_base'],
    ['o4-mini', 'o200k_base'],
    ['omni-moderation-latest', 'o200k_base'],
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', 'o200k_base'],
    ['gpt-4', 'cl100k_base'],
    ['gpt-4-0613', 'cl100k_base'],
    ['gpt-4-turbo', 'cl100k_base'],
    ['gpt-4-turbo-2024-04-09', 'cl100k_base'],
    ['gpt-4-1106-preview', 'cl100k_base'],
    ['gpt-4-32k', 'cl100k_base'],
    ['gpt-3.5-turbo', 'cl100k_base'],
    ['gpt-3.5-turbo-0125', 'cl100k_base'],
    ['gpt-3.5-turbo-instruct', 'cl100k_base'],
    ['ft:gpt-3.5-turbo-0125:acme::abc123', 'cl100k_base'],
    ['ft:gpt-4-0613:acme::abc123', 'cl100k_base'],
    ['text-embedding-3-small', 'cl100k_base'],
    ['text-embedding-3-large', 'cl100k_base'],
    ['text-embedding-ada-002', 'cl100k_base'],
    ['davinci-002', 'cl100k_base'],
    ['babbage-002', 'cl100k_base'],
  ])('%s uses %s', (model, encoding) => {
    expect(encodingForModel(model)).toBe(encoding);
  });

  it('counts a prompt in the model family’s own encoding', () => {
    expect(o200k(MIXED_TEXT)).not.toBe(cl100k(MIXED_TEXT));
    const prompt = (model: string): number => measurePrompt('/v1/embeddings', { model, input: MIXED_TEXT }).tokens;
    expect(prompt('gpt-4o')).toBe(o200k(MIXED_TEXT));
    expect(prompt('text-embedding-3-small')).toBe(cl100k(MIXED_TEXT));
  });

  it('counts special-token text inside a prompt as ordinary text instead of throwing', () => {
    const text = 'Explain what <|endoftext|> means.';
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], max_tokens: 10 };
    expect(measurePrompt('/v1/chat/completions', body).tokens).toBe(3 + o200k('user') + o200k(text, { disallowedSpecial: new Set() }) + 3);
    expect(chargeOf('/v1/chat/completions', body).total).toBeGreaterThan(10);
  });
});

describe('measurePrompt: chat framing', () => {
  // OpenAI cookbook "How to count tokens with tiktoken": the API reported 129 prompt tokens for
  // these messages on gpt-3.5-turbo and gpt-4, and 124 on gpt-4o and gpt-4o-mini.
  const cookbookMessages = [
    { role: 'system', content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.' },
    { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
    { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
    { role: 'system', name: 'example_user', content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage." },
    { role: 'system', name: 'example_assistant', content: "Let's talk later when we're less busy about how to do better." },
    { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
  ];

  it.each<[string, number]>([
    ['gpt-3.5-turbo', 129],
    ['gpt-4', 129],
    ['gpt-4o', 124],
    ['gpt-4o-mini', 124],
  ])('matches the prompt tokens the API reported for the cookbook messages on %s (%d)', (model, tokens) => {
    expect(measurePrompt('/v1/chat/completions', { model, messages: cookbookMessages }).tokens).toBe(tokens);
  });

  it('adds 3 per message, 1 per name, 3 to prime the reply, and counts role, name and content', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', name: 'ada', content: MIXED_TEXT },
    ];
    const expected = 3 + o200k('system') + o200k('Be brief.') + 3 + o200k('user') + 1 + o200k('ada') + o200k(MIXED_TEXT) + 3;
    expect(measurePrompt('/v1/chat/completions', { model: 'gpt-4o', messages })).toEqual({
      tokens: expected,
      chars: 'Be brief.'.length + 'ada'.length + MIXED_TEXT.length,
    });
  });

  it('counts the text parts of multi-part content and skips images', () => {
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this image?' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
          { type: 'text', text: 'Answer in French.' },
        ],
      },
    ];
    const m = measurePrompt('/v1/chat/completions', { model: 'gpt-4o', messages });
    expect(m.tokens).toBe(3 + o200k('user') + o200k('What is in this image?') + o200k('Answer in French.') + 3);
    expect(m.chars).toBe('What is in this image?'.length + 'Answer in French.'.length);
  });

  it('measures nothing for a chat without messages', () => {
    expect(measurePrompt('/v1/chat/completions', { model: 'gpt-4o' })).toEqual({ tokens: 0, chars: 0 });
  });
});

describe('measurePrompt: the responses input forms', () => {
  it.each<[string, Record<string, unknown>, number, number]>([
    ['a string input', { input: 'Tell me a joke.' }, o200k('Tell me a joke.'), 'Tell me a joke.'.length],
    [
      'instructions and a string input',
      { instructions: 'Talk like a pirate.', input: 'Hello' },
      o200k('Talk like a pirate.') + o200k('Hello'),
      'Talk like a pirate.'.length + 'Hello'.length,
    ],
    [
      'a list of messages with string content',
      { input: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] },
      3 + o200k('Hi') + 3 + o200k('Hello!'),
      'Hi'.length + 'Hello!'.length,
    ],
    [
      'a message with input_text parts and an image',
      { input: [{ role: 'user', content: [{ type: 'input_text', text: 'Describe' }, { type: 'input_image', image_url: 'https://x/y.png' }] }] },
      3 + o200k('Describe'),
      'Describe'.length,
    ],
  ])('measures %s', (_name, body, tokens, chars) => {
    expect(measurePrompt('/v1/responses', { model: 'gpt-4.1', ...body })).toEqual({ tokens, chars });
  });
});

describe('measurePrompt: embeddings, moderations and completions inputs', () => {
  it.each<[string, Endpoint, unknown, number, number]>([
    ['one string', '/v1/embeddings', 'hello world', cl100k('hello world'), 11],
    ['a list of strings', '/v1/embeddings', ['hello', 'world'], cl100k('hello') + cl100k('world'), 10],
    ['one token array', '/v1/embeddings', [15339, 1917, 0], 3, 0],
    ['a list of token arrays', '/v1/embeddings', [[15339, 1917], [0]], 3, 0],
    ['a moderation string', '/v1/moderations', 'hello', cl100k('hello'), 5],
    ['moderation parts with an image', '/v1/moderations', [{ type: 'text', text: 'hello' }, { type: 'image_url', image_url: { url: 'x' } }], cl100k('hello'), 5],
  ])('counts %s', (_name, endpoint, input, tokens, chars) => {
    expect(measurePrompt(endpoint, { model: 'text-embedding-3-small', input })).toEqual({ tokens, chars });
  });

  it.each<[string, unknown, number, number]>([
    ['a prompt string', 'Once upon a time', cl100k('Once upon a time'), 16],
    ['a list of prompts', ['Once', 'upon'], cl100k('Once') + cl100k('upon'), 8],
    ['a prompt given as one token array', [7454, 2402, 264, 892], 4, 0],
    ['prompts given as token arrays', [[7454, 2402], [264]], 3, 0],
  ])('counts a completions %s', (_name, prompt, tokens, chars) => {
    expect(measurePrompt('/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt })).toEqual({ tokens, chars });
  });
});

describe('maxOutputTokensOf', () => {
  it.each<[string, Endpoint, Record<string, unknown>, number | null]>([
    ['chat max_tokens', '/v1/chat/completions', { max_tokens: 100 }, 100],
    ['chat max_completion_tokens', '/v1/chat/completions', { max_completion_tokens: 300 }, 300],
    ['max_completion_tokens over max_tokens', '/v1/chat/completions', { max_tokens: 100, max_completion_tokens: 50 }, 50],
    ['max_tokens when max_completion_tokens is null', '/v1/chat/completions', { max_tokens: 100, max_completion_tokens: null }, 100],
    ['chat n × max_tokens', '/v1/chat/completions', { max_tokens: 100, n: 3 }, 300],
    ['chat ignores best_of', '/v1/chat/completions', { max_tokens: 100, best_of: 5 }, 100],
    ['chat with a bad n counts one', '/v1/chat/completions', { max_tokens: 100, n: 0 }, 100],
    ['chat without a limit', '/v1/chat/completions', {}, null],
    ['chat with a string limit (not a number)', '/v1/chat/completions', { max_tokens: '100' }, null],
    ['responses max_output_tokens', '/v1/responses', { max_output_tokens: 256 }, 256],
    ['responses ignore max_tokens', '/v1/responses', { max_tokens: 256 }, null],
    ['responses ignore n', '/v1/responses', { max_output_tokens: 256, n: 4 }, 256],
    ['completions max_tokens', '/v1/completions', { max_tokens: 50 }, 50],
    ['completions default 16', '/v1/completions', {}, COMPLETIONS_DEFAULT_MAX_TOKENS],
    ['completions default 16 × n', '/v1/completions', { n: 2 }, 32],
    ['completions best_of above n', '/v1/completions', { max_tokens: 10, n: 2, best_of: 5 }, 50],
    ['completions n above best_of', '/v1/completions', { max_tokens: 10, n: 4, best_of: 1 }, 40],
    ['embeddings: no output', '/v1/embeddings', { max_tokens: 10 }, 0],
    ['moderations: no output', '/v1/moderations', {}, 0],
  ])('%s', (_name, endpoint, body, expected) => {
    expect(maxOutputTokensOf(endpoint, body)).toBe(expected);
  });

  it('keeps 16 as the completions default', () => {
    expect(COMPLETIONS_DEFAULT_MAX_TOKENS).toBe(16);
  });
});

describe('chargeOf', () => {
  it('charges the larger of the prompt tokens and characters / 4 (the server estimates from characters)', () => {
    const repetitive = 'a'.repeat(4000); // few tokens, many characters
    const charge = chargeOf('/v1/embeddings', { model: 'text-embedding-3-small', input: repetitive });
    expect(charge.promptTokens).toBeLessThan(1000);
    expect(charge.inputTokens).toBe(1000);
    expect(charge.promptChars).toBe(4000);
  });

  it('charges the prompt tokens when they exceed characters / 4 (CJK, emoji)', () => {
    const dense = '東京の天気は晴れです😀🎉'.repeat(20);
    const charge = chargeOf('/v1/embeddings', { model: 'text-embedding-3-small', input: dense });
    expect(charge.promptTokens).toBeGreaterThan(charEstimate(dense.length));
    expect(charge.inputTokens).toBe(charge.promptTokens);
  });

  it.each<[number, number]>([
    [0, 0],
    [1, 1],
    [4, 1],
    [5, 2],
    [401, 101],
  ])('estimates %d characters as %d tokens (rounded up)', (chars, tokens) => {
    expect(charEstimate(chars)).toBe(tokens);
  });

  it.each<[string, Endpoint, Record<string, unknown>, number | null, number]>([
    ['a chat with max_tokens', '/v1/chat/completions', { max_tokens: 100 }, 100, 100],
    ['a chat with n = 2 and max_completion_tokens', '/v1/chat/completions', { max_completion_tokens: 100, n: 2 }, 200, 200],
    ['a chat without a limit: the documented default', '/v1/chat/completions', {}, null, DEFAULT_OUTPUT_TOKENS],
    ['a chat without a limit and n = 3: the default × n', '/v1/chat/completions', { n: 3 }, null, 3 * DEFAULT_OUTPUT_TOKENS],
    ['a response without a limit', '/v1/responses', {}, null, DEFAULT_OUTPUT_TOKENS],
    ['a completion without a limit: its own default of 16', '/v1/completions', {}, 16, 16],
    ['an embedding: nothing', '/v1/embeddings', {}, 0, 0],
  ])('counts the output of %s', (_name, endpoint, extra, maxOutputTokens, outputTokens) => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], input: 'hi', prompt: 'hi', ...extra };
    const charge = chargeOf(endpoint, body);
    expect(charge).toMatchObject({ maxOutputTokens, outputTokens });
    expect(charge.total).toBe(charge.inputTokens + charge.outputTokens);
  });

  it('keeps the documented default at 4,096 output tokens', () => {
    expect(DEFAULT_OUTPUT_TOKENS).toBe(4096);
  });

  it('adds everything up for a whole chat request', () => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 20, n: 2 };
    const promptTokens = 3 + o200k('user') + o200k('Say hi') + 3;
    expect(chargeOf('/v1/chat/completions', body)).toEqual({
      promptTokens,
      promptChars: 6,
      inputTokens: promptTokens,
      maxOutputTokens: 40,
      outputTokens: 40,
      total: promptTokens + 40,
    });
  });
});
