import { describe, expect, it } from 'vitest';
import { chargeOf } from '../src/pipeline/plan/charge.js';
import { createPlanContext, isInputProblem, modelOfRecord, planRecord, type PlanContext } from '../src/pipeline/plan.js';
import { isLineKey, lineKey } from '../src/shared/records.js';
import type { RawRecord } from '../src/pipeline/read.js';
import type { Endpoint, InputProblem, InputProblemCode, RequestItem } from '../src/shared/types.js';

const text = (line: number, value: unknown): RawRecord => ({ kind: 'text', line, text: typeof value === 'string' ? value : JSON.stringify(value) });

function plan(record: RawRecord, context: PlanContext = createPlanContext('/v1/chat/completions', 1024)): RequestItem | InputProblem {
  return planRecord(record, context);
}

function planItem(record: RawRecord, context?: PlanContext): RequestItem {
  const result = plan(record, context);
  if (isInputProblem(result)) throw new Error(`expected a request item, got ${result.code}: ${result.message}`);
  return result;
}

const chatBody = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 20 };

describe('planRecord: the bare form', () => {
  it('keys a bare body by its line number and sends it to the --endpoint', () => {
    const item = planItem(text(7, chatBody));
    expect(item).toEqual({
      customId: 'line-7',
      line: 7,
      method: 'POST',
      url: '/v1/chat/completions',
      body: chatBody,
      model: 'gpt-4o-mini',
      form: 'bare',
      charge: chargeOf('/v1/chat/completions', chatBody),
    });
  });

  it('takes the top-level metadata out of the body and echoes it', () => {
    const item = planItem(text(2, { ...chatBody, metadata: { ticket: 42, tags: ['a'] } }));
    expect(item.body).toEqual(chatBody);
    expect(item.body).not.toHaveProperty('metadata');
    expect(item.metadata).toEqual({ ticket: 42, tags: ['a'] });
  });

  it('echoes a null metadata too, and still does not send it', () => {
    const item = planItem(text(2, { ...chatBody, metadata: null }));
    expect(item.body).not.toHaveProperty('metadata');
    expect(item).toHaveProperty('metadata', null);
  });

  it('has no metadata when the line has none', () => {
    expect(planItem(text(1, chatBody))).not.toHaveProperty('metadata');
  });

  it.each<[Endpoint, Record<string, unknown>]>([
    ['/v1/embeddings', { model: 'text-embedding-3-small', input: 'hello' }],
    ['/v1/responses', { model: 'gpt-4.1-mini', input: 'hello', max_output_tokens: 50 }],
    ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon' }],
  ])('sends bare lines to %s when that is the --endpoint', (endpoint, body) => {
    const item = planItem(text(1, body), createPlanContext(endpoint, 1024));
    expect(item).toMatchObject({ url: endpoint, body, charge: chargeOf(endpoint, body) });
  });

  it('keys a bare line by its own top-level custom_id and takes it out of the body', () => {
    const item = planItem(text(3, { custom_id: 'ticket-17', ...chatBody, metadata: { m: 1 } }));
    expect(item).toMatchObject({ customId: 'ticket-17', line: 3, form: 'bare', metadata: { m: 1 } });
    expect(item.body).toEqual(chatBody);
    expect(item.body).not.toHaveProperty('custom_id');
  });

  it.each([
    ['an empty string', ''],
    ['a number', 7],
    ['null', null],
    ['an object', { id: 'x' }],
  ])('refuses a bare custom_id that is %s as invalid_body, keyed line-N', (_name, id) => {
    expect(plan(text(4, { custom_id: id, ...chatBody }))).toMatchObject({
      code: 'invalid_body',
      customId: 'line-4',
      message: expect.stringMatching(/^line 4: "custom_id" must be a non-empty string/),
    });
  });

  it('catches a bare custom_id used twice, and one that collides with a batch line or a line-N key', () => {
    const context = createPlanContext('/v1/chat/completions', 1024);
    const planned = [
      plan(text(1, { custom_id: 'a', ...chatBody }), context),
      plan(text(2, { custom_id: 'a', ...chatBody }), context),
      plan(text(3, { custom_id: 'b', method: 'POST', url: '/v1/chat/completions', body: chatBody }), context),
      plan(text(4, { custom_id: 'b', ...chatBody }), context),
      plan(text(5, chatBody), context),
      plan(text(6, { custom_id: 'line-5', ...chatBody }), context),
    ];
    expect(planned.map((p) => (isInputProblem(p) ? `${p.line}:${p.code}` : `${p.line}:${p.customId}`))).toEqual([
      '1:a',
      '2:duplicate_custom_id',
      '3:b',
      '4:duplicate_custom_id',
      '5:line-5',
      '6:duplicate_custom_id',
    ]);
  });

  it('plans an element of a JSON-array input like a line, keyed by its index', () => {
    const item = planItem({ kind: 'value', line: 3, value: chatBody });
    expect(item).toMatchObject({ customId: 'line-3', line: 3, form: 'bare' });
  });
});

describe('planRecord: the Batch API form', () => {
  const line = {
    custom_id: 'req-1',
    method: 'POST',
    url: '/v1/embeddings',
    body: { model: 'text-embedding-3-small', input: ['a', 'b'], metadata: { api: 'own' } },
    metadata: { ours: true },
  };

  it('keeps custom_id, url and body, echoing our top-level metadata and sending body.metadata', () => {
    const item = planItem(text(4, line));
    expect(item).toEqual({
      customId: 'req-1',
      line: 4,
      method: 'POST',
      url: '/v1/embeddings',
      body: line.body,
      model: 'text-embedding-3-small',
      form: 'batch',
      metadata: { ours: true },
      charge: chargeOf('/v1/embeddings', line.body),
    });
  });

  it('ignores --endpoint for batch-form lines', () => {
    const item = planItem(text(1, line), createPlanContext('/v1/responses', 1024));
    expect(item.url).toBe('/v1/embeddings');
  });

  it('plans both forms mixed in one file, in one context', () => {
    const context = createPlanContext('/v1/chat/completions', 1024);
    const results = [
      plan(text(1, chatBody), context),
      plan(text(2, { custom_id: 'x', method: 'POST', url: '/v1/chat/completions', body: chatBody }), context),
      plan(text(3, chatBody), context),
    ];
    expect(results.map((r) => (isInputProblem(r) ? r.code : `${r.form}:${r.customId}`))).toEqual(['bare:line-1', 'batch:x', 'bare:line-3']);
  });
});

describe('planRecord: input problems', () => {
  const batch = (over: Record<string, unknown>): Record<string, unknown> => ({
    custom_id: 'c1',
    method: 'POST',
    url: '/v1/chat/completions',
    body: chatBody,
    ...over,
  });

  it.each<[string, RawRecord, InputProblemCode, string, RegExp]>([
    ['text that is not JSON', text(5, '{"model": "gpt-4o",'), 'invalid_json', 'line-5', /^line 5: not valid JSON/],
    ['a JSON array line', text(6, '[1,2]'), 'not_an_object', 'line-6', /^line 6: expected a JSON object, got an array/],
    ['a JSON number', text(7, '42'), 'not_an_object', 'line-7', /got a number/],
    ['a JSON string', text(8, '"hello"'), 'not_an_object', 'line-8', /got a string/],
    ['JSON null', text(9, 'null'), 'not_an_object', 'line-9', /got null/],
    ['a bare body without a model', text(10, { messages: [] }), 'missing_model', 'line-10', /^line 10: no "model" \(required by \/v1\/chat\/completions\)/],
    ['an empty model', text(11, { model: '', messages: [] }), 'missing_model', 'line-11', /^line 11: "model" must be a non-empty string/],
    ['a numeric model', text(12, { model: 4, messages: [] }), 'missing_model', 'line-12', /got a number/],
    ['"stream": true', text(13, { ...chatBody, stream: true }), 'stream_not_supported', 'line-13', /^line 13: "stream": true is not supported/],
    ['a batch line without custom_id', text(14, batch({ custom_id: undefined })), 'invalid_body', 'line-14', /^line 14: a Batch API line needs a non-empty string custom_id/],
    ['a batch line with an empty custom_id', text(15, batch({ custom_id: '' })), 'invalid_body', 'line-15', /custom_id/],
    ['a batch line with a numeric custom_id', text(16, batch({ custom_id: 7 })), 'invalid_body', 'line-16', /custom_id/],
    ['a batch line with method GET', text(17, batch({ method: 'GET' })), 'unsupported_endpoint', 'c1', /^line 17: method must be "POST", got "GET"/],
    ['a batch line without method', text(18, batch({ method: undefined })), 'unsupported_endpoint', 'c1', /^line 18: method must be "POST"/],
    ['a batch line for an endpoint we do not run', text(19, batch({ url: '/v1/images/generations' })), 'unsupported_endpoint', 'c1', /^line 19: url "\/v1\/images\/generations" is not one of/],
    ['a batch line without url', text(20, batch({ url: undefined })), 'unsupported_endpoint', 'c1', /^line 20: url/],
    ['a batch line whose body is an array', text(21, batch({ body: [] })), 'invalid_body', 'c1', /^line 21: body must be a JSON object, got an array/],
    ['a batch line whose body is null', text(22, batch({ body: null })), 'invalid_body', 'c1', /got null/],
    ['a batch line whose body has no model', text(23, batch({ body: { messages: [] } })), 'missing_model', 'c1', /^line 23: no "model"/],
    ['a batch line asking to stream', text(24, batch({ body: { ...chatBody, stream: true } })), 'stream_not_supported', 'c1', /^line 24:/],
    ['a line over --max-line-bytes', { kind: 'too_long', line: 25, bytes: 5000 }, 'line_too_long', 'line-25', /^line 25: 5000 bytes, more than --max-line-bytes \(1024\)/],
    ['a broken JSON array', { kind: 'broken', line: 26, message: 'the JSON array input is not valid JSON after element 25: x' }, 'invalid_json', 'line-26', /^line 26: the JSON array/],
    ['a JSON-array element that is not an object', { kind: 'value', line: 27, value: 'hi' }, 'not_an_object', 'line-27', /got a string/],
  ])('reports %s', (_name, record, code, customId, message) => {
    const result = plan(record);
    expect(isInputProblem(result)).toBe(true);
    expect(result).toMatchObject({ code, line: record.line, customId });
    expect((result as InputProblem).message).toMatch(message);
  });

  it('echoes the metadata of a line that has a problem', () => {
    expect(plan(text(3, { messages: [], metadata: { id: 9 } }))).toMatchObject({ code: 'missing_model', metadata: { id: 9 } });
    expect(plan(text(4, batch({ method: 'PUT', metadata: 'm' })))).toMatchObject({ code: 'unsupported_endpoint', metadata: 'm' });
  });

  it('allows "stream": false', () => {
    expect(isInputProblem(plan(text(1, { ...chatBody, stream: false })))).toBe(false);
  });

  it('reports a duplicate custom_id on its second occurrence, with that line number', () => {
    const context = createPlanContext('/v1/chat/completions', 1024);
    const first = plan(text(1, batch({ custom_id: 'dup' })), context);
    const other = plan(text(2, batch({ custom_id: 'other' })), context);
    const second = plan(text(3, batch({ custom_id: 'dup' })), context);
    const third = plan(text(4, batch({ custom_id: 'dup' })), context);
    expect(isInputProblem(first)).toBe(false);
    expect(isInputProblem(other)).toBe(false);
    expect(second).toMatchObject({ code: 'duplicate_custom_id', line: 3, customId: 'dup', message: 'line 3: custom_id "dup" was already used by an earlier line' });
    expect(third).toMatchObject({ code: 'duplicate_custom_id', line: 4 });
  });

  it('sees a batch custom_id that collides with a bare line key as a duplicate', () => {
    const context = createPlanContext('/v1/chat/completions', 1024);
    expect(isInputProblem(plan(text(2, chatBody), context))).toBe(false);
    expect(plan(text(5, batch({ custom_id: 'line-2' })), context)).toMatchObject({ code: 'duplicate_custom_id', line: 5 });
  });
});

describe('planRecord: model optional only for moderations', () => {
  it('accepts a bare moderation without a model', () => {
    const item = planItem(text(1, { input: 'is this ok?' }), createPlanContext('/v1/moderations', 1024));
    expect(item).toMatchObject({ url: '/v1/moderations', model: 'omni-moderation-latest', body: { input: 'is this ok?' } });
  });

  it('accepts a batch-form moderation without a model', () => {
    const item = planItem(text(1, { custom_id: 'm1', method: 'POST', url: '/v1/moderations', body: { input: 'x' } }));
    expect(item.model).toBe('omni-moderation-latest');
  });

  it('uses the model a moderation names', () => {
    const item = planItem(text(1, { model: 'text-moderation-latest', input: 'x' }), createPlanContext('/v1/moderations', 1024));
    expect(item.model).toBe('text-moderation-latest');
  });

  it.each<Endpoint>(['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/completions'])('requires a model for %s', (endpoint) => {
    expect(plan(text(1, { input: 'x', prompt: 'x', messages: [] }), createPlanContext(endpoint, 1024))).toMatchObject({ code: 'missing_model' });
  });
});

describe('planRecord: a body must fit its endpoint', () => {
  const on = (endpoint: Endpoint) => createPlanContext(endpoint, 1024);

  it.each<[string, Endpoint, Record<string, unknown>, RegExp]>([
    ['an embedding body on the chat endpoint', '/v1/chat/completions', { model: 'text-embedding-3-small', input: 'hi' }, /no "messages" \(\/v1\/chat\/completions requires "messages"\): the body looks like a \/v1\/embeddings request, use --endpoint \/v1\/embeddings$/],
    ['a responses body on the chat endpoint', '/v1/chat/completions', { model: 'gpt-4.1-mini', input: 'hi' }, /use --endpoint \/v1\/responses$/],
    ['a moderation body on the chat endpoint', '/v1/chat/completions', { model: 'omni-moderation-latest', input: 'hi' }, /use --endpoint \/v1\/moderations$/],
    ['a completions body on the chat endpoint', '/v1/chat/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'Once' }, /use --endpoint \/v1\/completions$/],
    ['messages that are not an array', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: 'hi' }, /"messages" must be an array of messages, got a string \(/],
    ['empty messages', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [] }, /"messages" is empty \(\/v1\/chat\/completions requires "messages"\)$/],
    ['a chat body on the embeddings endpoint', '/v1/embeddings', chatBody, /no "input" \(\/v1\/embeddings requires "input"\): the body looks like a \/v1\/chat\/completions request, use --endpoint \/v1\/chat\/completions$/],
    ['a null input on the embeddings endpoint', '/v1/embeddings', { model: 'text-embedding-3-small', input: null }, /no "input"/],
    ['an empty input array on the embeddings endpoint', '/v1/embeddings', { model: 'text-embedding-3-small', input: [] }, /"input" is empty/],
    ['a chat body on the responses endpoint', '/v1/responses', chatBody, /no "input" \(\/v1\/responses requires "input"\): .*--endpoint \/v1\/chat\/completions$/],
    ['a chat body on the moderations endpoint', '/v1/moderations', chatBody, /no "input" \(\/v1\/moderations requires "input"\)/],
    ['a chat body on the completions endpoint', '/v1/completions', chatBody, /no "prompt" \(\/v1\/completions requires "prompt"\): .*--endpoint \/v1\/chat\/completions$/],
    ['a body with nothing to go on', '/v1/chat/completions', { model: 'gpt-4o-mini', temperature: 0 }, /no "messages" \(\/v1\/chat\/completions requires "messages"\)$/],
  ])('refuses %s as invalid_body with a hint', (_name, endpoint, body, message) => {
    const result = plan(text(9, body), on(endpoint));
    expect(result).toMatchObject({ code: 'invalid_body', line: 9, customId: 'line-9' });
    expect((result as InputProblem).message).toMatch(/^line 9: /);
    expect((result as InputProblem).message).toMatch(message);
  });

  it('hints at the url, not the flag, for a Batch API line', () => {
    const result = plan(text(2, { custom_id: 'e1', method: 'POST', url: '/v1/chat/completions', body: { model: 'text-embedding-3-small', input: 'x' } }));
    expect(result).toMatchObject({ code: 'invalid_body', customId: 'e1' });
    expect((result as InputProblem).message).toMatch(/set "url": "\/v1\/embeddings"$/);
  });

  it.each<[Endpoint, Record<string, unknown>]>([
    ['/v1/chat/completions', chatBody],
    ['/v1/responses', { model: 'gpt-4.1-mini', input: [{ role: 'user', content: 'hi' }] }],
    ['/v1/responses', { model: 'gpt-4.1-mini', prompt: { id: 'pmpt_abc', variables: { city: 'Oslo' } } }],
    ['/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'b'] }],
    ['/v1/embeddings', { model: 'text-embedding-3-small', input: [1, 2, 3] }],
    ['/v1/moderations', { input: 'is this ok?' }],
    ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon' }],
    ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: null }],
  ])('accepts a body that fits %s', (endpoint, body) => {
    expect(planItem(text(1, body), on(endpoint)).url).toBe(endpoint);
  });
});

describe('line keys', () => {
  it.each<[string, boolean]>([
    ['line-1', true],
    ['line-1234567', true],
    ['line-', false],
    ['line-1a', false],
    ['Line-1', false],
    ['xline-1', false],
    ['req-1', false],
  ])('isLineKey(%j) is %s', (key, expected) => {
    expect(isLineKey(key)).toBe(expected);
  });

  it('makes line-N keys', () => {
    expect(lineKey(42)).toBe('line-42');
    expect(isLineKey(lineKey(42))).toBe(true);
  });
});

describe('modelOfRecord', () => {
  it.each<[string, RawRecord, string | null]>([
    ['a bare line', { kind: 'text', line: 1, text: '{"model":"gpt-4o-mini","messages":[]}' }, 'gpt-4o-mini'],
    ['a Batch API line', { kind: 'text', line: 2, text: '{"custom_id":"a","body":{"model":"o4-mini"}}' }, 'o4-mini'],
    ['an array element', { kind: 'value', line: 3, value: { model: 'gpt-5' } }, 'gpt-5'],
    ['invalid JSON', { kind: 'text', line: 4, text: '{nope' }, null],
    ['no model', { kind: 'text', line: 5, text: '{"input":"x"}' }, null],
    ['a line too long', { kind: 'too_long', line: 6, bytes: 10 }, null],
  ])('reads the model of %s without planning it', (_name, record, model) => {
    expect(modelOfRecord(record)).toBe(model);
  });
});
