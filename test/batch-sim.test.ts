// The simulated Files and Batch APIs over real HTTP: uploads, the batch
// lifecycle, output and error files, validation failures, the enqueued-token
// limit, cancel and expiry.

import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/sim/server.js';

const KEY = 'sk-test';
let sim: Simulator | null = null;

afterEach(async () => {
  await sim?.close();
  sim = null;
});

async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  sim = await startSimulator({ seed: 7, ...options, batch: { stepMs: 30, ...options.batch } });
  return sim;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const response = await fetch(`${sim!.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

async function upload(content: string, filename = 'input.jsonl', purpose = 'batch'): Promise<{ status: number; json: any }> {
  const form = new FormData();
  form.append('purpose', purpose);
  form.append('file', new Blob([content]), filename);
  const response = await fetch(`${sim!.url}/files`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
  return { status: response.status, json: await response.json() };
}

function chatLine(i: number, extra: Record<string, unknown> = {}, model = 'gpt-4o-mini'): string {
  return JSON.stringify({
    custom_id: `r${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 20, ...extra },
  });
}

function chatFile(n: number, model = 'gpt-4o-mini'): string {
  return Array.from({ length: n }, (_, i) => chatLine(i + 1, {}, model)).join('\n') + '\n';
}

async function createBatch(content: string, endpoint = '/v1/chat/completions', metadata?: Record<string, string>): Promise<any> {
  const file = await upload(content);
  expect(file.status).toBe(200);
  const created = await call('POST', '/batches', { input_file_id: file.json.id, endpoint, completion_window: '24h', metadata });
  expect(created.status).toBe(200);
  return created.json;
}

/** Polls until the batch reaches one of `statuses`; returns every snapshot seen. */
async function pollUntil(id: string, statuses: string[], timeoutMs = 10_000): Promise<any[]> {
  const seen: any[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await call('GET', `/batches/${id}`);
    seen.push(json);
    if (statuses.includes(json.status)) return seen;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${json.status}`);
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
}

async function contentLines(fileId: string): Promise<any[]> {
  const { status, text } = await call('GET', `/files/${fileId}/content`);
  expect(status).toBe(200);
  return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));
}

describe('simulated Files API', () => {
  it('stores a multipart upload with purpose batch and serves it back by id, in the list and as content', async () => {
    await start();
    const content = chatFile(3);
    const { status, json } = await upload(content, 'part-1.jsonl');
    expect(status).toBe(200);
    expect(json).toMatchObject({ object: 'file', bytes: Buffer.byteLength(content), filename: 'part-1.jsonl', purpose: 'batch' });
    expect(json.id).toMatch(/^file-/);
    expect(json.expires_at - json.created_at).toBe(30 * 24 * 3600);
    expect((await call('GET', `/files/${json.id}`)).json).toMatchObject({ id: json.id, filename: 'part-1.jsonl' });
    expect((await call('GET', `/files/${json.id}/content`)).text).toBe(content);
    const list = await call('GET', '/files?purpose=batch');
    expect(list.json.data.map((f: any) => f.id)).toEqual([json.id]);
  });

  it('rejects an upload without purpose, with a non-.jsonl batch file, and answers 404 for an unknown file', async () => {
    await start();
    const form = new FormData();
    form.append('file', new Blob(['{}\n']), 'x.jsonl');
    const missing = await fetch(`${sim!.url}/files`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as any).error.param).toBe('purpose');
    expect((await upload('{}\n', 'x.csv')).status).toBe(400);
    const unknown = await call('GET', '/files/file-nope/content');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toBe('No such File object: file-nope');
  });
});

describe('simulated Batch API', () => {
  it('moves validating → in_progress → finalizing → completed, with request_counts growing while in progress', async () => {
    // in_progress lasts 3 steps (1.2 s): long enough that a late timer on a busy machine still shows a midway count.
    await start({ batch: { stepMs: 400 } });
    const batch = await createBatch(chatFile(300), '/v1/chat/completions', { part: '1' });
    expect(batch).toMatchObject({ object: 'batch', status: 'validating', completion_window: '24h', metadata: { part: '1' } });
    const seen = [batch, ...(await pollUntil(batch.id, ['completed']))];
    const statuses = seen.map((b) => b.status).filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(['validating', 'in_progress', 'finalizing', 'completed']);
    const midway = seen.filter((b) => b.status === 'in_progress').map((b) => b.request_counts.completed);
    expect(midway.some((n) => n > 0 && n < 300)).toBe(true);
    const last = seen[seen.length - 1];
    expect(last.request_counts).toEqual({ total: 300, completed: 300, failed: 0 });
    expect(last.error_file_id).toBeNull();
    for (const stamp of ['in_progress_at', 'finalizing_at', 'completed_at']) expect(typeof last[stamp]).toBe('number');
  });

  it('answers each line as the online endpoint would, in shuffled order, billed once per line', async () => {
    await start();
    const batch = await createBatch(chatFile(50));
    const [done] = (await pollUntil(batch.id, ['completed'])).slice(-1);
    const lines = await contentLines(done.output_file_id);
    const ids = lines.map((line) => line.custom_id);
    expect([...ids].sort()).toEqual(Array.from({ length: 50 }, (_, i) => `r${i + 1}`).sort());
    expect(ids).not.toEqual(Array.from({ length: 50 }, (_, i) => `r${i + 1}`));
    for (const line of lines) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(200);
      expect(line.response.request_id).toMatch(/^req_/);
    }
    // The same body online gets the same usage.
    const r7 = lines.find((line) => line.custom_id === 'r7');
    const online = await call('POST', '/chat/completions', JSON.parse(chatLine(7)).body);
    expect(r7.response.body.usage).toEqual(online.json.usage);
    const billed = sim!.stats().billed['gpt-4o-mini-2024-07-18']!;
    expect(billed.requests).toBe(51);
    expect(done.usage.input_tokens).toBe(lines.reduce((sum, line) => sum + line.response.body.usage.prompt_tokens, 0));
  });

  it('puts requests the API rejects in the error file with their 4xx response, and the rest in the output', async () => {
    await start();
    const content = [chatLine(1), chatLine(2, { messages: [] }), chatLine(3), chatLine(4, { max_tokens: 0 })].join('\n') + '\n';
    const batch = await createBatch(content);
    const [done] = (await pollUntil(batch.id, ['completed'])).slice(-1);
    expect(done.request_counts).toEqual({ total: 4, completed: 2, failed: 2 });
    expect((await contentLines(done.output_file_id)).map((l) => l.custom_id).sort()).toEqual(['r1', 'r3']);
    const errors = await contentLines(done.error_file_id);
    expect(errors.map((l) => l.custom_id).sort()).toEqual(['r2', 'r4']);
    for (const line of errors) {
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(400);
      expect(line.response.body.error.type).toBe('invalid_request_error');
    }
  });

  it('completes with output_file_id null and only an error file when every line failed', async () => {
    await start();
    const batch = await createBatch(chatFile(5, 'nonexistent-model'));
    const [done] = (await pollUntil(batch.id, ['completed', 'failed'])).slice(-1);
    expect(done.status).toBe('completed');
    expect(done.output_file_id).toBeNull();
    expect(done.request_counts).toEqual({ total: 5, completed: 0, failed: 5 });
    const errors = await contentLines(done.error_file_id);
    expect(errors.every((line) => line.response.status_code === 404 && line.response.body.error.code === 'model_not_found')).toBe(true);
  });

  const invalidFiles: Array<{ name: string; content: string; code: string; line: number | null }> = [
    { name: 'a line that is not JSON', content: `${chatLine(1)}\n{"custom_id": \n`, code: 'invalid_json_line', line: 2 },
    {
      name: 'a line for another endpoint',
      content: `${chatLine(1)}\n${chatLine(2).replace('/v1/chat/completions', '/v1/embeddings')}\n`,
      code: 'url_mismatch',
      line: 2,
    },
    { name: 'a line for another model', content: `${chatLine(1)}\n${chatLine(2, {}, 'gpt-4o')}\n`, code: 'model_mismatch', line: 2 },
    { name: 'a repeated custom_id', content: `${chatLine(1)}\n${chatLine(1)}\n`, code: 'duplicate_custom_id', line: 2 },
    { name: 'an empty file', content: '\n', code: 'empty_file', line: null },
    { name: 'more than 50,000 requests', content: chatFile(50_001), code: 'too_many_tasks', line: null },
  ];
  for (const { name, content, code, line } of invalidFiles) {
    it(`fails validation with errors.data ${code} for ${name}`, async () => {
      await start();
      const batch = await createBatch(content);
      const [done] = (await pollUntil(batch.id, ['failed', 'completed'])).slice(-1);
      expect(done.status).toBe('failed');
      expect(typeof done.failed_at).toBe('number');
      expect(done.output_file_id).toBeNull();
      expect(done.errors.object).toBe('list');
      expect(done.errors.data[0]).toMatchObject({ code, line });
    });
  }

  it('refuses a batch past the enqueued-token limit with token_limit_exceeded, and takes one again once the queue drained', async () => {
    // Each 100-line file enqueues about 1,000 prompt tokens.
    await start({ batch: { stepMs: 150, enqueuedTokenLimit: 1_500 } });
    const first = await createBatch(chatFile(100));
    await pollUntil(first.id, ['in_progress']);
    const second = await createBatch(chatFile(100));
    const [refused] = (await pollUntil(second.id, ['failed', 'in_progress'])).slice(-1);
    expect(refused.status).toBe('failed');
    expect(refused.errors.data[0]).toMatchObject({ code: 'token_limit_exceeded', line: null });
    expect(refused.errors.data[0].message).toMatch(/^Enqueued token limit reached for gpt-4o-mini in organization org-sim\. Limit: 1,500 enqueued tokens\./);
    await pollUntil(first.id, ['completed']);
    const third = await createBatch(chatFile(100));
    expect((await pollUntil(third.id, ['completed', 'failed'])).pop().status).toBe('completed');
  });

  it('cancels a running batch: cancelling, then cancelled with the partial output', async () => {
    await start({ batch: { stepMs: 200 } });
    const batch = await createBatch(chatFile(400));
    await pollUntil(batch.id, ['in_progress']);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const cancelling = await call('POST', `/batches/${batch.id}/cancel`);
    expect(cancelling.json.status).toBe('cancelling');
    const [done] = (await pollUntil(batch.id, ['cancelled'])).slice(-1);
    expect(done.request_counts.total).toBe(400);
    expect(done.request_counts.completed).toBeGreaterThan(0);
    expect(done.request_counts.completed).toBeLessThan(400);
    expect((await contentLines(done.output_file_id)).length).toBe(done.request_counts.completed);
    const again = await call('POST', `/batches/${batch.id}/cancel`);
    expect(again.json.status).toBe('cancelled');
  });

  it('refuses to cancel a completed batch with a 409', async () => {
    await start();
    const batch = await createBatch(chatFile(2));
    await pollUntil(batch.id, ['completed']);
    const refused = await call('POST', `/batches/${batch.id}/cancel`);
    expect(refused.status).toBe(409);
  });

  it('expires a batch still in progress at the end of its window, keeping what was done and listing the rest as batch_expired', async () => {
    await start({ batch: { stepMs: 150, expiresAfterMs: 400 } });
    const batch = await createBatch(chatFile(300));
    const [done] = (await pollUntil(batch.id, ['expired', 'completed'])).slice(-1);
    expect(done.status).toBe('expired');
    expect(typeof done.expired_at).toBe('number');
    const answered = await contentLines(done.output_file_id);
    const expired = await contentLines(done.error_file_id);
    expect(answered.length).toBeGreaterThan(0);
    expect(answered.length + expired.length).toBe(300);
    expect(expired.every((line) => line.response === null && line.error.code === 'batch_expired')).toBe(true);
  });

  it('lists batches newest first, page by page with after and limit', async () => {
    await start();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createBatch(chatFile(1), '/v1/chat/completions', { n: String(i) })).id);
    const first = await call('GET', '/batches?limit=2');
    expect(first.json).toMatchObject({ object: 'list', has_more: true, first_id: ids[2], last_id: ids[1] });
    const second = await call('GET', `/batches?limit=2&after=${first.json.last_id}`);
    expect(second.json.data.map((b: any) => b.id)).toEqual([ids[0]]);
    expect(second.json.has_more).toBe(false);
  });

  it('answers create errors as HTTP errors: unknown file, a window other than 24h, too much metadata', async () => {
    await start();
    const file = await upload(chatFile(1));
    const base = { input_file_id: file.json.id, endpoint: '/v1/chat/completions', completion_window: '24h' };
    expect((await call('POST', '/batches', { ...base, input_file_id: 'file-none' })).status).toBe(404);
    expect((await call('POST', '/batches', { ...base, completion_window: '1h' })).json.error.param).toBe('completion_window');
    const metadata = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    expect((await call('POST', '/batches', { ...base, metadata })).json.error.param).toBe('metadata');
    expect((await call('POST', '/batches', { ...base, endpoint: '/v1/nothing' })).status).toBe(400);
  });
});
