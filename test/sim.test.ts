// The simulator over real HTTP: body shapes and usage of each endpoint,
// validation, auth, faults and stats. Rate limits: sim-ratelimit.test.ts.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { measurePrompt } from '../src/pipeline/plan/charge.js';
import type { Endpoint } from '../src/shared/types.js';
import {
  parseFaults,
  requestDigest,
  startSimulator,
  type FaultKind,
  type Route,
  type SimStats,
  type Simulator,
  type StartSimulatorOptions,
} from '../src/sim/server.js';

const KEY = 'sk-sim-test-0123456789abcdef';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function send(
  sim: Simulator,
  path: string,
  init: { body?: unknown; raw?: string; key?: string | null; method?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = init.key === undefined ? KEY : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const method = init.method ?? 'POST';
  const body = init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
  const response = await fetch(`${sim.url}${path}`, { method, headers, body: method === 'GET' ? undefined : body });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

function chatBody(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra };
}

const started: Simulator[] = [];
async function simulator(options: StartSimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({ apiKey: KEY, ...options });
  started.push(sim);
  return sim;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// One shared simulator for the read-only shape tests.
let shared: Simulator;
beforeAll(async () => {
  shared = await startSimulator({ apiKey: KEY });
});
afterAll(async () => {
  await shared.close();
});

describe('chat completions', () => {
  it('answers in the chat.completion shape, its text tagged with the request digest', async () => {
    const body = chatBody('What is the capital of France?', { max_completion_tokens: 50 });
    const raw = JSON.stringify(body);
    const reply = await send(shared, '/chat/completions', { raw });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json');
    const answer = reply.json;
    expect(answer).toMatchObject({ object: 'chat.completion', model: 'gpt-4o-mini-2024-07-18', service_tier: 'default' });
    expect(answer.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(answer.created).toBeCloseTo(Date.now() / 1000, -1);
    expect(answer.system_fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    expect(answer.choices).toHaveLength(1);
    const choice = answer.choices[0];
    expect(choice).toMatchObject({ index: 0, logprobs: null, message: { role: 'assistant', refusal: null, annotations: [] } });
    expect(choice.message.content).toMatch(new RegExp(`^\\[sim:${requestDigest(raw)}\\] \\w+`));

    const usage = answer.usage;
    expect(usage.prompt_tokens).toBe(measurePrompt('/v1/chat/completions', body).tokens);
    expect(usage.completion_tokens).toBeGreaterThanOrEqual(1);
    expect(usage.completion_tokens).toBeLessThanOrEqual(50);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    expect(usage.prompt_tokens_details).toEqual({ cached_tokens: 0, audio_tokens: 0 });
    expect(usage.completion_tokens_details).toEqual({
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    });
    expect(choice.finish_reason).toBe(usage.completion_tokens === 50 ? 'length' : 'stop');
  });

  it('gives the same body the same usage and text every time, on any simulator with the same seed', async () => {
    const raw = JSON.stringify(chatBody('Repeat after me', { max_tokens: 300 }));
    const other = await simulator();
    const replies = [await send(shared, '/chat/completions', { raw }), await send(other, '/chat/completions', { raw })];
    const [first, second] = replies.map((reply) => reply.json);
    expect(second.usage).toEqual(first.usage);
    expect(second.choices[0].message.content).toBe(first.choices[0].message.content);
    expect(second.id).not.toBe(first.id);
  });

  it('draws other lengths with another seed', async () => {
    const reseeded = await simulator({ seed: 42 });
    const lengths = async (sim: Simulator) =>
      Promise.all(
        ['a', 'b', 'c', 'd'].map(async (content) => (await send(sim, '/chat/completions', { body: chatBody(content, { max_tokens: 1000 }) })).json.usage.completion_tokens),
      );
    expect(await lengths(reseeded)).not.toEqual(await lengths(shared));
  });

  it('stops at the output limit with finish_reason "length"', async () => {
    const reply = await send(shared, '/chat/completions', { body: chatBody('Tell me a long story', { max_tokens: 1 }) });
    expect(reply.json.choices[0].finish_reason).toBe('length');
    expect(reply.json.usage.completion_tokens).toBe(1);
  });

  it('keeps outputs within 1..400 tokens when the request sets no limit', async () => {
    for (const content of ['one', 'two', 'three', 'four', 'five']) {
      const usage = (await send(shared, '/chat/completions', { body: chatBody(content) })).json.usage;
      expect(usage.completion_tokens).toBeGreaterThanOrEqual(1);
      expect(usage.completion_tokens).toBeLessThanOrEqual(400);
    }
  });

  it('answers n choices, each within the limit, billed together', async () => {
    const reply = await send(shared, '/chat/completions', { body: chatBody('Pick a number', { n: 3, max_tokens: 20 }) });
    const { choices, usage } = reply.json;
    expect(choices.map((choice: { index: number }) => choice.index)).toEqual([0, 1, 2]);
    expect(usage.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(usage.completion_tokens).toBeLessThanOrEqual(60);
  });

  it('reports reasoning tokens for reasoning models as a 30–70% share of completion tokens', async () => {
    for (const content of ['alpha', 'beta', 'gamma', 'delta']) {
      const body = { model: 'o4-mini', messages: [{ role: 'user', content }], max_completion_tokens: 2000 };
      const { model, usage } = (await send(shared, '/chat/completions', { body })).json;
      expect(model).toBe('o4-mini-2025-04-16');
      const { completion_tokens: completion, completion_tokens_details: details } = usage;
      expect(details.reasoning_tokens).toBeGreaterThanOrEqual(Math.floor(completion * 0.3));
      expect(details.reasoning_tokens).toBeLessThanOrEqual(Math.floor(completion * 0.7));
      expect(usage.total_tokens).toBe(usage.prompt_tokens + completion);
    }
  });

  it('reports cached tokens in steps of 128 from 1024 for about half of long prompts', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(300);
    const cached: number[] = [];
    for (let i = 0; i < 12; i++) {
      const usage = (await send(shared, '/chat/completions', { body: chatBody(`${i} ${long}`, { max_tokens: 5 }) })).json.usage;
      const tokens = usage.prompt_tokens_details.cached_tokens as number;
      expect(usage.prompt_tokens).toBeGreaterThanOrEqual(1024);
      if (tokens > 0) {
        expect((tokens - 1024) % 128).toBe(0);
        expect(tokens).toBeLessThanOrEqual(usage.prompt_tokens);
        expect(usage.prompt_tokens - tokens).toBeLessThan(128);
      }
      cached.push(tokens);
    }
    expect(cached.filter((tokens) => tokens > 0).length).toBeGreaterThan(0);
    expect(cached.filter((tokens) => tokens === 0).length).toBeGreaterThan(0);
    // Short prompts never hit the cache.
    expect((await send(shared, '/chat/completions', { body: chatBody('short') })).json.usage.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it('reports the prompt written to the cache on a long prompt that missed it, for models that bill cache writes', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(300);
    const seen = { hits: 0, writes: 0 };
    for (let i = 0; i < 12; i++) {
      const usage = (await send(shared, '/chat/completions', { body: chatBody(`${i} ${long}`, { model: 'gpt-5.6-sol', max_tokens: 5 }) })).json.usage;
      const { cached_tokens: cached, cache_write_tokens: written } = usage.prompt_tokens_details as { cached_tokens: number; cache_write_tokens: number };
      // Either read from the cache or written to it, the same 1024 + 128·k prefix.
      expect(cached === 0 || written === 0).toBe(true);
      const prefix = Math.max(cached, written);
      expect((prefix - 1024) % 128).toBe(0);
      expect(usage.prompt_tokens - prefix).toBeLessThan(128);
      if (cached > 0) seen.hits += 1;
      else seen.writes += 1;
    }
    expect(seen.hits).toBeGreaterThan(0);
    expect(seen.writes).toBeGreaterThan(0);
    const short = (await send(shared, '/chat/completions', { body: chatBody('short', { model: 'gpt-5.6-sol' }) })).json.usage;
    expect(short.prompt_tokens_details.cache_write_tokens).toBe(0);
    // Older models report no cache writes.
    const older = (await send(shared, '/chat/completions', { body: chatBody(`0 ${long}`, { max_tokens: 5 }) })).json.usage;
    expect(older.prompt_tokens_details).not.toHaveProperty('cache_write_tokens');
  });

  it('echoes flex, priority and default service tiers and answers "default" otherwise', async () => {
    const tierOf = async (tier?: string) =>
      (await send(shared, '/chat/completions', { body: chatBody('tier', tier === undefined ? {} : { service_tier: tier }) })).json.service_tier;
    expect(await tierOf('flex')).toBe('flex');
    expect(await tierOf('priority')).toBe('priority');
    expect(await tierOf('auto')).toBe('default');
    expect(await tierOf()).toBe('default');
  });

  it.each([
    ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18'],
    ['gpt-4o', 'gpt-4o-2024-08-06'],
    ['gpt-4.1', 'gpt-4.1-2025-04-14'],
    ['gpt-4.1-mini', 'gpt-4.1-mini-2025-04-14'],
    ['gpt-5', 'gpt-5-2025-08-07'],
    ['gpt-5-mini', 'gpt-5-mini-2025-08-07'],
    ['o4-mini', 'o4-mini-2025-04-16'],
    ['o3', 'o3-2025-04-16'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini-2024-07-18'],
    ['my-fine-tune', 'my-fine-tune'],
  ])('names %s as %s in the answer', async (requested, answered) => {
    const reply = await send(shared, '/chat/completions', { body: { model: requested, messages: [{ role: 'user', content: 'hi' }] } });
    expect(reply.json.model).toBe(answered);
  });
});

describe('responses', () => {
  it('answers in the response shape with output_text tagged with the digest', async () => {
    const body = { model: 'gpt-4.1', input: 'Write a haiku', instructions: 'Be brief', max_output_tokens: 200, metadata: { run: '1' } };
    const raw = JSON.stringify(body);
    const answer = (await send(shared, '/responses', { raw })).json;
    expect(answer.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(answer).toMatchObject({
      object: 'response',
      model: 'gpt-4.1-2025-04-14',
      error: null,
      instructions: 'Be brief',
      max_output_tokens: 200,
      parallel_tool_calls: true,
      tool_choice: 'auto',
      tools: [],
      metadata: { run: '1' },
      service_tier: 'default',
    });
    const message = answer.output.find((item: { type: string }) => item.type === 'message');
    expect(message.role).toBe('assistant');
    expect(message.content[0].type).toBe('output_text');
    expect(message.content[0].text.startsWith(`[sim:${requestDigest(raw)}] `)).toBe(true);
    const usage = answer.usage;
    expect(usage.input_tokens).toBe(measurePrompt('/v1/responses', body).tokens);
    expect(usage.input_tokens_details).toEqual({ cached_tokens: 0, cache_write_tokens: 0 });
    expect(usage.output_tokens_details).toEqual({ reasoning_tokens: 0 });
    expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens);
    expect(answer.status).toBe(usage.output_tokens === 200 ? 'incomplete' : 'completed');
  });

  it('is incomplete with reason max_output_tokens when it hits the limit', async () => {
    const answer = (await send(shared, '/responses', { body: { model: 'gpt-4o', input: 'go on', max_output_tokens: 1 } })).json;
    expect(answer.status).toBe('incomplete');
    expect(answer.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(answer.usage.output_tokens).toBe(1);
  });

  it('puts a reasoning item first and counts reasoning tokens inside output tokens for reasoning models', async () => {
    const answer = (await send(shared, '/responses', { body: { model: 'gpt-5', input: 'think', max_output_tokens: 3000 } })).json;
    expect(answer.model).toBe('gpt-5-2025-08-07');
    expect(answer.output[0].type).toBe('reasoning');
    const { output_tokens: output, output_tokens_details: details } = answer.usage;
    expect(details.reasoning_tokens).toBeGreaterThanOrEqual(Math.floor(output * 0.3));
    expect(details.reasoning_tokens).toBeLessThanOrEqual(Math.floor(output * 0.7));
  });
});

describe('embeddings', () => {
  const norm = (vector: number[]) => Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));

  it('answers one unit vector per input with the model dimensions and prompt usage', async () => {
    const body = { model: 'text-embedding-3-small', input: ['first text', 'second text'] };
    const answer = (await send(shared, '/embeddings', { body })).json;
    expect(answer.object).toBe('list');
    expect(answer.model).toBe('text-embedding-3-small');
    expect(answer.data.map((item: { object: string; index: number }) => [item.object, item.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
    ]);
    for (const item of answer.data) {
      expect(item.embedding).toHaveLength(1536);
      expect(norm(item.embedding)).toBeCloseTo(1, 5);
    }
    expect(answer.data[0].embedding).not.toEqual(answer.data[1].embedding);
    const tokens = measurePrompt('/v1/embeddings', body).tokens;
    expect(answer.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
  });

  it('uses 3072 dimensions for 3-large, `dimensions` when given, and base64 float32 when asked', async () => {
    const large = (await send(shared, '/embeddings', { body: { model: 'text-embedding-3-large', input: 'x' } })).json;
    expect(large.data[0].embedding).toHaveLength(3072);
    const small = (await send(shared, '/embeddings', { body: { model: 'text-embedding-3-small', input: 'x', dimensions: 256 } })).json;
    expect(small.data[0].embedding).toHaveLength(256);

    const body = { model: 'text-embedding-ada-002', input: 'x', encoding_format: 'base64' };
    const encoded = (await send(shared, '/embeddings', { body })).json.data[0].embedding;
    expect(typeof encoded).toBe('string');
    const bytes = Buffer.from(encoded, 'base64');
    const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    expect(floats).toHaveLength(1536);
    expect(norm(Array.from(floats))).toBeCloseTo(1, 5);
  });

  it('treats one token array as one input', async () => {
    const answer = (await send(shared, '/embeddings', { body: { model: 'text-embedding-3-small', input: [1, 2, 3] } })).json;
    expect(answer.data).toHaveLength(1);
    expect(answer.usage.prompt_tokens).toBe(3);
  });
});

describe('completions and moderations', () => {
  it('answers legacy completions as text_completion, 16 tokens at most by default', async () => {
    const body = { model: 'gpt-3.5-turbo-instruct', prompt: 'Say this is a test' };
    const raw = JSON.stringify(body);
    const answer = (await send(shared, '/completions', { raw })).json;
    expect(answer.id).toMatch(/^cmpl-[A-Za-z0-9]{29}$/);
    expect(answer).toMatchObject({ object: 'text_completion', model: 'gpt-3.5-turbo-instruct' });
    expect(answer.choices[0]).toMatchObject({ index: 0, logprobs: null });
    expect(answer.choices[0].text.startsWith(`[sim:${requestDigest(raw)}] `)).toBe(true);
    expect(answer.usage.prompt_tokens).toBe(measurePrompt('/v1/completions', body).tokens);
    expect(answer.usage.completion_tokens).toBeLessThanOrEqual(16);
    expect(answer.usage.total_tokens).toBe(answer.usage.prompt_tokens + answer.usage.completion_tokens);
  });

  it('answers moderations with one result per input and no usage, model optional', async () => {
    const answer = (await send(shared, '/moderations', { body: { input: ['hello', 'world'] } })).json;
    expect(answer.id).toMatch(/^modr-/);
    expect(answer.model).toBe('omni-moderation-latest');
    expect(answer.usage).toBeUndefined();
    expect(answer.results).toHaveLength(2);
    const result = answer.results[0];
    expect(result.flagged).toBe(false);
    expect(Object.keys(result.categories)).toHaveLength(13);
    expect(result.categories['self-harm/intent']).toBe(false);
    expect(result.category_scores.harassment).toBeGreaterThan(0);
    expect(result.category_scores.harassment).toBeLessThan(0.01);
    expect(result.category_applied_input_types.violence).toEqual(['text']);
  });
});

describe('validation', () => {
  it.each([
    ['/chat/completions', '{"model": "gpt-4o-mini",', 400, null, null],
    ['/chat/completions', '{"messages": [{"role": "user", "content": "hi"}]}', 400, 'model', 'missing_required_parameter'],
    ['/chat/completions', '{"model": "gpt-4o-mini"}', 400, 'messages', 'missing_required_parameter'],
    ['/chat/completions', '{"model": "gpt-4o-mini", "messages": []}', 400, 'messages', 'empty_array'],
    ['/chat/completions', '{"model": "gpt-4o-mini", "messages": "hi"}', 400, 'messages', 'invalid_type'],
    ['/chat/completions', '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": true}', 400, 'stream', 'unsupported_parameter'],
    ['/chat/completions', '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', 400, 'max_tokens', 'integer_below_min_value'],
    ['/responses', '{"model": "gpt-4o-mini"}', 400, 'input', 'missing_required_parameter'],
    ['/embeddings', '{"model": "text-embedding-3-small"}', 400, 'input', 'missing_required_parameter'],
    ['/moderations', '{}', 400, 'input', 'missing_required_parameter'],
    ['/completions', '[1, 2]', 400, null, 'invalid_type'],
    ['/completions', '{"model": "gpt-3.5-turbo-instruct"}', 400, 'prompt', 'missing_required_parameter'],
    ['/chat/completions', '{"custom_id": "a1", "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}', 400, null, null],
    ['/embeddings', '{"custom_id": "a1", "model": "text-embedding-3-small", "input": "hi"}', 400, null, null],
    ['/responses', '{"custom_id": "a1", "model": "gpt-4o-mini", "input": "hi"}', 400, 'custom_id', 'unknown_parameter'],
  ])('%s with %s → %i (param %s, code %s)', async (path, raw, status, param, code) => {
    const reply = await send(shared, path, { raw });
    expect(reply.status).toBe(status);
    expect(reply.json.error).toMatchObject({ type: 'invalid_request_error', param, code });
    expect(reply.json.error.message).toEqual(expect.any(String));
    expect(reply.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('answers a model named nonexistent… with 404 model_not_found', async () => {
    const reply = await send(shared, '/chat/completions', { body: chatBody('hi', { model: 'nonexistent-model' }) });
    expect(reply.status).toBe(404);
    expect(reply.json).toEqual({
      error: {
        message: 'The model `nonexistent-model` does not exist or you do not have access to it.',
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      },
    });
  });

  it('answers unknown paths with 404 and other methods than POST with 405', async () => {
    const unknown = await send(shared, '/chat/completion', { body: chatBody('hi') });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toBe('Invalid URL (POST /v1/chat/completion)');
    const wrongMethod = await send(shared, '/chat/completions', { method: 'GET' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect((await fetch(`${shared.url.replace(/\/v1$/, '')}/nowhere`)).status).toBe(404);
  });
});

describe('authentication', () => {
  it('answers a missing key with 401 and the "didn\'t provide" message', async () => {
    const reply = await send(shared, '/chat/completions', { body: chatBody('hi'), key: null });
    expect(reply.status).toBe(401);
    expect(reply.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key', param: null });
    expect(reply.json.error.message).toMatch(/^You didn't provide an API key\./);
    expect(reply.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('answers a wrong key with 401 and the key masked, never the whole key', async () => {
    const reply = await send(shared, '/chat/completions', { body: chatBody('hi'), key: 'sk-wrong-wrong-wrong' });
    expect(reply.status).toBe(401);
    expect(reply.json).toEqual({
      error: {
        message: 'Incorrect API key provided: sk-wro*****ong. You can find your API key at https://platform.openai.com/account/api-keys.',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });
    const longKey = `sk-proj-${'a1B2c3D4'.repeat(6)}`;
    const masked = (await send(shared, '/chat/completions', { body: chatBody('hi'), key: longKey })).json.error.message;
    expect(masked).toContain('sk-proj-*****c3D4');
    expect(masked).not.toContain(longKey);
  });

  it('accepts any non-empty key when no apiKey is configured', async () => {
    const open = await simulator({ apiKey: null });
    expect((await send(open, '/chat/completions', { body: chatBody('hi'), key: 'anything' })).status).toBe(200);
  });

  it('accepts only the admin key on /v1/organization/* and dispatches registered routes with params', async () => {
    const routes: Route[] = [
      {
        method: 'GET',
        pattern: /^\/v1\/organization\/echo\/(\w+)$/,
        handler: (ctx) => ctx.sendJson(200, { id: ctx.params[1], limit: ctx.url.searchParams.get('limit'), key: ctx.apiKey }),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/test\/answer$/,
        handler: (ctx) => ctx.sendJson(200, ctx.host.answer('/v1/chat/completions', ctx.body)),
      },
    ];
    const sim = await simulator({ routes, adminKey: 'sk-admin-test' });
    expect((await send(sim, '/organization/echo/abc?limit=3', { method: 'GET' })).status).toBe(401);
    const admin = await send(sim, '/organization/echo/abc?limit=3', { method: 'GET', key: 'sk-admin-test' });
    expect(admin.status).toBe(200);
    expect(admin.json).toEqual({ id: 'abc', limit: '3', key: 'sk-admin-test' });
    expect(admin.headers.get('x-request-id')).toMatch(/^req_/);
    expect((await send(sim, '/organization/echo/abc', { method: 'POST', key: 'sk-admin-test' })).status).toBe(405);
    expect((await send(sim, '/organization/nothing-here', { method: 'GET', key: 'sk-admin-test' })).status).toBe(404);
    // The API key does not open admin paths, and the admin key does not open API paths when apiKey is set.
    expect((await send(sim, '/chat/completions', { body: chatBody('hi'), key: 'sk-admin-test' })).status).toBe(401);

    // host.answer gives batch lines the same usage and text as the online endpoint.
    const raw = JSON.stringify(chatBody('same answer', { max_tokens: 40 }));
    const offline = (await send(sim, '/test/answer', { raw })).json;
    const online = (await send(sim, '/chat/completions', { raw })).json;
    expect(offline.statusCode).toBe(200);
    expect(offline.body.usage).toEqual(online.usage);
    expect(offline.body.choices[0].message.content).toBe(online.choices[0].message.content);
    expect(sim.stats().byStatus).toMatchObject({ '200': 3, '401': 2, '404': 1, '405': 1 });
  });
});

describe('faults', () => {
  const request = (sim: Simulator, content = 'fault me') => send(sim, '/chat/completions', { body: chatBody(content, { max_tokens: 20 }) });

  it('500: server_error naming the request id', async () => {
    const sim = await simulator({ faults: { '500': 1 } });
    const reply = await request(sim);
    expect(reply.status).toBe(500);
    const requestId = reply.headers.get('x-request-id');
    expect(reply.json.error).toMatchObject({ type: 'server_error', code: null, param: null });
    expect(reply.json.error.message).toBe(
      'The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our ' +
        `help center at help.openai.com if you keep seeing this error. (Please include the request ID ${requestId} in your email.)`,
    );
  });

  it('503: the overloaded message', async () => {
    const sim = await simulator({ faults: { '503': 1 } });
    const reply = await request(sim);
    expect(reply.status).toBe(503);
    expect(reply.json.error.type).toBe('server_error');
    expect(reply.json.error.message).toMatch(/^That model is currently overloaded with other requests\./);
  });

  it('502: an HTML page, not JSON', async () => {
    const sim = await simulator({ faults: { '502': 1 } });
    const reply = await request(sim);
    expect(reply.status).toBe(502);
    expect(reply.headers.get('content-type')).toBe('text/html');
    expect(reply.text).toMatch(/^<html>[\s\S]*502 Bad Gateway[\s\S]*<\/html>/);
    expect(reply.json).toBeUndefined();
    expect(reply.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it.each([
    ['400', 400, { type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' }],
    ['404', 404, { type: 'invalid_request_error', code: 'model_not_found', param: null }],
    ['403', 403, { type: 'request_forbidden', code: 'unsupported_country_region_territory', param: null }],
  ] as const)('%s: a final error with a realistic body', async (kind, status, error) => {
    const sim = await simulator({ faults: { [kind]: 1 } });
    const reply = await request(sim);
    expect(reply.status).toBe(status);
    expect(reply.json.error).toMatchObject(error);
  });

  it('reset: the connection is dropped without an answer', async () => {
    const sim = await simulator({ faults: { reset: 1 } });
    await expect(request(sim)).rejects.toThrow();
    await until(() => sim.stats().inFlight === 0);
    expect(sim.stats().byStatus).toEqual({ reset: 1 });
    expect(sim.stats().faults.reset).toBe(1);
  });

  it('malformed: status 200 with truncated JSON, not billed', async () => {
    const sim = await simulator({ faults: { malformed: 1 } });
    const reply = await request(sim);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json');
    expect(reply.text.startsWith('{"id":"chatcmpl-')).toBe(true);
    expect(() => JSON.parse(reply.text)).toThrow();
    expect(sim.stats().billed).toEqual({});
    expect(sim.stats().answered).toEqual({});
  });

  it('hang: nothing comes back and the socket closes after hangMs', async () => {
    const sim = await simulator({ faults: { hang: 1 }, hangMs: 150 });
    const startedAt = Date.now();
    await expect(request(sim)).rejects.toThrow();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(140);
    await until(() => sim.stats().inFlight === 0);
    expect(sim.stats().byStatus).toEqual({ hang: 1 });
  });

  it('hang: a client that gives up frees the request, and close() ends hanging sockets', async () => {
    const sim = await simulator({ faults: { hang: 1 } });
    const controller = new AbortController();
    const abandoned = fetch(`${sim.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify(chatBody('abandoned')),
      signal: controller.signal,
    });
    await until(() => sim.stats().inFlight === 1);
    controller.abort();
    await expect(abandoned).rejects.toThrow();
    await until(() => sim.stats().inFlight === 0);

    const pending = request(sim, 'held until close');
    await until(() => sim.stats().inFlight === 1);
    const closedAt = Date.now();
    await sim.close();
    await expect(pending).rejects.toThrow();
    expect(Date.now() - closedAt).toBeLessThan(1_000);
  });

  it('hit only the first attempt of a body by default', async () => {
    const sim = await simulator({ faults: { '500': 1 } });
    expect((await request(sim)).status).toBe(500);
    expect((await request(sim)).status).toBe(200);
    expect((await request(sim, 'another body')).status).toBe(500);
    expect(sim.stats().faults['500']).toBe(2);
  });

  it('hit every attempt with faultsEveryAttempt', async () => {
    const sim = await simulator({ faults: { '503': 1 }, faultsEveryAttempt: true });
    const statuses = [await request(sim), await request(sim), await request(sim)].map((reply) => reply.status);
    expect(statuses).toEqual([503, 503, 503]);
  });

  it('are drawn deterministically by seed and body at the configured rate', async () => {
    const options = { faults: { '500': 0.5 }, faultsEveryAttempt: true, seed: 7 };
    const statuses = async (sim: Simulator) =>
      Promise.all(Array.from({ length: 40 }, async (_, i) => (await request(sim, `body ${i}`)).status));
    const first = await statuses(await simulator(options));
    const second = await statuses(await simulator(options));
    expect(second).toEqual(first);
    const failed = first.filter((status) => status === 500).length;
    expect(failed).toBeGreaterThan(8);
    expect(failed).toBeLessThan(32);
  });
});

describe('parseFaults', () => {
  it('reads kind=rate lists', () => {
    expect(parseFaults('500=0.1,503=0.02, reset=0.02,hang=0.01,malformed=0.02')).toEqual({
      '500': 0.1,
      '503': 0.02,
      reset: 0.02,
      hang: 0.01,
      malformed: 0.02,
    });
    expect(parseFaults('')).toEqual({});
  });

  it.each([
    ['500', /expected kind=rate/],
    ['501=0.1', /Unknown fault kind "501"/],
    ['500=abc', /number from 0 to 1, got "abc"/],
    ['500=1.5', /number from 0 to 1/],
    ['500=0.1,500=0.2', /given twice/],
    ['500=0.6,503=0.6', /add up to 1.2/],
  ])('rejects %s', (spec, message) => {
    expect(() => parseFaults(spec)).toThrow(message);
  });
});

describe('stats', () => {
  it('bill the usage of every success body by answered model and count answers per digest', async () => {
    const sim = await simulator();
    const bodies = [
      chatBody('first', { max_tokens: 30 }),
      chatBody('second', { max_tokens: 30, metadata: { mine: true } }),
      { model: 'o3', messages: [{ role: 'user', content: 'third' }], max_completion_tokens: 100 },
    ];
    const usages = [];
    for (const body of bodies) usages.push((await send(sim, '/chat/completions', { body })).json.usage);
    const repeat = (await send(sim, '/chat/completions', { body: bodies[0] })).json.usage;
    await send(sim, '/embeddings', { body: { model: 'text-embedding-3-small', input: 'vector' } });
    await send(sim, '/chat/completions', { body: chatBody('hi', { model: 'nonexistent-x' }) });

    const stats = sim.stats();
    const mini = [usages[0], usages[1], repeat];
    expect(stats.billed['gpt-4o-mini-2024-07-18']).toEqual({
      requests: 3,
      input_tokens: mini.reduce((sum, usage) => sum + usage.prompt_tokens, 0),
      cached_input_tokens: 0,
      cache_write_input_tokens: 0,
      output_tokens: mini.reduce((sum, usage) => sum + usage.completion_tokens, 0),
      reasoning_tokens: 0,
    });
    expect(stats.billed['o3-2025-04-16']).toMatchObject({
      requests: 1,
      output_tokens: usages[2].completion_tokens,
      reasoning_tokens: usages[2].completion_tokens_details.reasoning_tokens,
    });
    expect(stats.billed['text-embedding-3-small']).toMatchObject({ requests: 1, output_tokens: 0 });
    expect(stats.answered[requestDigest(JSON.stringify(bodies[0]))]).toBe(2);
    expect(stats.duplicates).toBe(1);
    expect(stats.withMetadata).toBe(1);
    expect(stats.requests).toBe(6);
    expect(stats.byStatus).toEqual({ '200': 5, '404': 1 });

    sim.resetStats();
    expect(sim.stats()).toMatchObject({ requests: 0, byStatus: {}, billed: {}, answered: {}, duplicates: 0 });
  });

  it('measure the most requests in flight at once, server-side', async () => {
    const sim = await simulator({ latencyMs: 150, latencyJitter: 0 });
    const startedAt = Date.now();
    await Promise.all(Array.from({ length: 5 }, (_, i) => send(sim, '/chat/completions', { body: chatBody(`parallel ${i}`) })));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(140);
    expect(sim.stats().maxInFlight).toBe(5);
    await until(() => sim.stats().inFlight === 0);
  });

  it('count a client that leaves during latency as aborted, and bill nothing for it', async () => {
    const sim = await simulator({ latencyMs: 200, latencyJitter: 0 });
    const controller = new AbortController();
    const leaving = fetch(`${sim.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify(chatBody('leaving early')),
      signal: controller.signal,
    });
    await until(() => sim.stats().inFlight === 1);
    controller.abort();
    await expect(leaving).rejects.toThrow();
    await until(() => sim.stats().inFlight === 0);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(sim.stats()).toMatchObject({ byStatus: { aborted: 1 }, billed: {}, answered: {} });
  });

  it('are served on /sim/stats and reset by POST /sim/reset without auth', async () => {
    const sim = await simulator();
    await send(sim, '/chat/completions', { body: chatBody('count me') });
    const base = sim.url.replace(/\/v1$/, '');
    const stats = (await (await fetch(`${base}/sim/stats`)).json()) as SimStats;
    expect(stats.requests).toBe(1);
    expect(stats.byStatus).toEqual({ '200': 1 });
    expect((await fetch(`${base}/sim/reset`, { method: 'POST' })).status).toBe(200);
    expect(sim.stats().requests).toBe(0);
  });
});

describe('endpoints answer their own bodies', () => {
  it.each<[Endpoint, Record<string, unknown>, (answer: any) => string]>([
    ['/v1/chat/completions', chatBody('tag'), (answer) => answer.choices[0].message.content],
    ['/v1/responses', { model: 'gpt-4o-mini', input: 'tag' }, (answer) => answer.output.at(-1).content[0].text],
    ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'tag' }, (answer) => answer.choices[0].text],
  ])('%s', async (endpoint, body, textOf) => {
    const raw = JSON.stringify(body);
    const answer = (await send(shared, endpoint.replace('/v1', ''), { raw })).json;
    expect(textOf(answer)).toMatch(new RegExp(`^\\[sim:${requestDigest(raw)}\\] `));
  });
});

// FaultKind is part of the public API; keep the type import exercised.
const allKinds: FaultKind[] = ['500', '502', '503', 'reset', 'hang', 'malformed', '400', '404', '403'];
it('parseFaults accepts every FaultKind', () => {
  expect(Object.keys(parseFaults(allKinds.map((kind) => `${kind}=0.1`).join(',')))).toHaveLength(9);
});
