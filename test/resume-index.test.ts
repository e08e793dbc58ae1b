import { readdir, readFile, writeFile } from 'node:fs/promises';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openJsonlWriter } from '../src/pipeline/record/writer.js';
import { indexResults } from '../src/pipeline/record/resume.js';
import { endpointOfBody, isSuccessRecord } from '../src/shared/records.js';
import type { ResultRecord } from '../src/shared/types.js';
import { tempDir } from './support/files.js';

let dir: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  dir = await tempDir('oai-batch-resume-');
});
afterEach(async () => {
  await dir.remove();
});

function success(customId: string, extra: Record<string, unknown> = {}): ResultRecord {
  return {
    id: `oaib_req_${customId}`,
    custom_id: customId,
    response: { status_code: 200, request_id: 'req_1', body: { object: 'chat.completion', usage: { prompt_tokens: 3, completion_tokens: 2 } } },
    error: null,
    line: 1,
    attempts: 1,
    latency_ms: 10,
    cost_usd: 0.000001,
    ...extra,
  } as ResultRecord;
}

const failure = (customId: string): unknown => ({
  id: `oaib_req_${customId}`,
  custom_id: customId,
  response: null,
  error: { code: 'timeout', message: 'no answer within 120 s' },
  line: 2,
  attempts: 6,
});

const rejected = (customId: string): unknown => ({
  id: `batch_req_${customId}`,
  custom_id: customId,
  response: { status_code: 400, request_id: 'req_2', body: { error: { message: 'bad', type: 'invalid_request_error', code: null } } },
  error: null,
});

const lines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

const jsonl = (records: unknown[]): string => records.map((r) => JSON.stringify(r) + '\n').join('');

async function index(path: string): Promise<{ result: Awaited<ReturnType<typeof indexResults>>; seen: string[] }> {
  const seen: string[] = [];
  const result = await indexResults(path, (record) => seen.push(record.custom_id));
  return { result, seen };
}

describe('indexResults on a plain results file', () => {
  it('indexes successes and ignores failures and non-2xx answers', async () => {
    const path = dir.file('r.results.jsonl');
    await writeFile(path, jsonl([success('a'), failure('b'), rejected('c'), success('d', { status_code: 201 })]));
    const { result, seen } = await index(path);
    expect(seen).toEqual(['a', 'd']);
    expect(result.succeeded).toBe(2);
    expect(result.done.has('a')).toBe(true);
    expect(result.done.has('d')).toBe(true);
    expect(result.done.has('b')).toBe(false);
    expect(result.done.has('c')).toBe(false);
    expect(result).toMatchObject({ hasLineKeys: false, tornBytes: 0, unreadableLines: 0 });
  });

  it('counts a custom_id that succeeded twice once, and reports the first record', async () => {
    const path = dir.file('r.results.jsonl');
    await writeFile(path, jsonl([success('a', { attempts: 1 }), success('a', { attempts: 2 }), success('b')]));
    const attempts: number[] = [];
    const result = await indexResults(path, (record) => attempts.push(record.attempts));
    expect(result.succeeded).toBe(2);
    expect(attempts).toEqual([1, 1]);
  });

  it.each<[string, string[], boolean]>([
    ['line-N keys', ['line-1', 'line-7'], true],
    ['one line-N key among others', ['a', 'line-3'], true],
    ['custom keys only', ['a', 'line-x', 'xline-1'], false],
  ])('detects %s', async (_name, ids, expected) => {
    const path = dir.file('r.results.jsonl');
    await writeFile(path, jsonl(ids.map((id) => success(id))));
    expect((await index(path)).result.hasLineKeys).toBe(expected);
  });

  it('does not count line-N keys of failures', async () => {
    const path = dir.file('r.results.jsonl');
    await writeFile(path, jsonl([success('a'), failure('line-2')]));
    expect((await index(path)).result.hasLineKeys).toBe(false);
  });

  it('leaves complete lines that are not records in place and counts them', async () => {
    const path = dir.file('r.results.jsonl');
    const text = jsonl([success('a')]) + 'garbage\n\n' + jsonl([success('b')]);
    await writeFile(path, text);
    const { result } = await index(path);
    expect(result).toMatchObject({ succeeded: 2, unreadableLines: 1, tornBytes: 0 });
    expect(await readFile(path, 'utf8')).toBe(text);
  });

  it('reads CRLF line endings', async () => {
    const path = dir.file('r.results.jsonl');
    await writeFile(path, jsonl([success('a'), success('b')]).replaceAll('\n', '\r\n'));
    expect((await index(path)).result.succeeded).toBe(2);
  });

  it('indexes an empty file as nothing done', async () => {
    const path = dir.file('r.results.jsonl');
    await writeFile(path, '');
    const { result } = await index(path);
    expect(result).toMatchObject({ succeeded: 0, tornBytes: 0, hasLineKeys: false });
  });

  it('cuts a torn last line away (the file is truncated to the last newline) and never parses it', async () => {
    const path = dir.file('r.results.jsonl');
    const complete = jsonl([success('a'), success('b')]);
    const torn = JSON.stringify(success('c')).slice(0, 40);
    await writeFile(path, complete + torn);
    const { result, seen } = await index(path);
    expect(seen).toEqual(['a', 'b']);
    expect(result.tornBytes).toBe(Buffer.byteLength(torn));
    expect(await readFile(path, 'utf8')).toBe(complete);
  });

  it('cuts a torn last line away even when the fragment happens to be valid JSON', async () => {
    const path = dir.file('r.results.jsonl');
    const complete = jsonl([success('a')]);
    const torn = JSON.stringify(success('c')); // the newline never made it to disk
    await writeFile(path, complete + torn);
    const { result, seen } = await index(path);
    expect(seen).toEqual(['a']);
    expect(result.done.has('c')).toBe(false);
    expect(result.tornBytes).toBe(Buffer.byteLength(torn));
    expect(await readFile(path, 'utf8')).toBe(complete);
  });

  it('cuts a torn line that ends inside a multi-byte character', async () => {
    const path = dir.file('r.results.jsonl');
    const complete = jsonl([success('é')]);
    const tornBytes = Buffer.from(JSON.stringify(success('ü😀'))).subarray(0, 33);
    await writeFile(path, Buffer.concat([Buffer.from(complete), tornBytes]));
    const { result } = await index(path);
    expect(result).toMatchObject({ succeeded: 1, tornBytes: tornBytes.length });
    expect(await readFile(path, 'utf8')).toBe(complete);
  });

  it('indexes a large file read in many chunks', async () => {
    const path = dir.file('r.results.jsonl');
    const records = Array.from({ length: 5000 }, (_, i) => success(`line-${i + 1}`, { padding: 'x'.repeat(200) }));
    await writeFile(path, jsonl(records));
    const { result } = await index(path);
    expect(result.succeeded).toBe(5000);
    expect(result.done.has('line-5000')).toBe(true);
  });
});

describe('indexResults on a .gz results file', () => {
  it('reads a clean file and leaves it untouched', async () => {
    const path = dir.file('r.results.jsonl.gz');
    const bytes = gzipSync(jsonl([success('a'), failure('b'), success('line-3')]));
    await writeFile(path, bytes);
    const { result, seen } = await index(path);
    expect(seen).toEqual(['a', 'line-3']);
    expect(result).toMatchObject({ succeeded: 2, hasLineKeys: true, tornBytes: 0 });
    expect(Buffer.compare(await readFile(path), bytes)).toBe(0);
  });

  it('reads concatenated gzip members (one per earlier session)', async () => {
    const path = dir.file('r.results.jsonl.gz');
    await writeFile(path, Buffer.concat([gzipSync(jsonl([success('a')])), gzipSync(jsonl([success('b'), success('c')]))]));
    const { seen, result } = await index(path);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(result.tornBytes).toBe(0);
  });

  it('rewrites a file cut short by a crash with its complete lines only', async () => {
    const path = dir.file('r.results.jsonl.gz');
    const records = Array.from({ length: 200 }, (_, i) => success(`id-${i}`, { note: `record ${i} ${'ä'.repeat(i % 7)}` }));
    const whole = gzipSync(jsonl(records));
    const cut = whole.subarray(0, Math.floor(whole.length * 0.6));
    await writeFile(path, cut);
    // What a reader can decompress from the cut file, and its complete lines: the oracle.
    const readable = gunzipSync(cut, { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('utf8');
    const completeText = readable.slice(0, readable.lastIndexOf('\n') + 1);
    const expectedIds = completeText
      .split('\n')
      .filter((l) => l)
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(expectedIds.length).toBeGreaterThan(10);
    expect(expectedIds.length).toBeLessThan(200);

    const { result, seen } = await index(path);
    expect(seen).toEqual(expectedIds);
    expect(result.tornBytes).toBeGreaterThan(0);
    // The file is whole again: a plain gunzip reads exactly the complete lines.
    expect(gunzipSync(await readFile(path)).toString('utf8')).toBe(completeText);
    expect(await readdir(dir.path)).toEqual(['r.results.jsonl.gz']);
  });

  it('repairs the file a killed run left: a closed member from an earlier session and an open, synced one', async () => {
    const live = dir.file('live.jsonl.gz');
    let writer = await openJsonlWriter(live, { append: false });
    await writer.write(success('a'));
    await writer.write(failure('b'));
    await writer.close();
    writer = await openJsonlWriter(live, { append: true });
    await writer.write(success('c'));
    await writer.write(success('line-4'));
    await writer.sync();
    // The process dies here: what is on disk has no end-of-stream for the second member.
    const path = dir.file('r.results.jsonl.gz');
    await writeFile(path, await readFile(live));
    await writer.close();

    const { result, seen } = await index(path);
    expect(seen).toEqual(['a', 'c', 'line-4']);
    expect(result.hasLineKeys).toBe(true);
    expect(lines(gunzipSync(await readFile(path)).toString('utf8')).map((r) => (r as { custom_id: string }).custom_id)).toEqual([
      'a',
      'b',
      'c',
      'line-4',
    ]);
  });

  it('cuts a last line without newline in a complete gzip stream, even when it is valid JSON', async () => {
    const path = dir.file('r.results.jsonl.gz');
    const complete = jsonl([success('a'), success('b')]);
    await writeFile(path, gzipSync(complete + JSON.stringify(success('c'))));
    const { result, seen } = await index(path);
    expect(seen).toEqual(['a', 'b']);
    expect(result.done.has('c')).toBe(false);
    expect(result.tornBytes).toBeGreaterThan(0);
    expect(gunzipSync(await readFile(path)).toString('utf8')).toBe(complete);
  });

  it('indexes the same successes again after the repair (a second resume sees a clean file)', async () => {
    const path = dir.file('r.results.jsonl.gz');
    const whole = gzipSync(jsonl(Array.from({ length: 100 }, (_, i) => success(`k${i}`))));
    await writeFile(path, whole.subarray(0, whole.length - 40));
    const first = await index(path);
    const second = await index(path);
    expect(second.seen).toEqual(first.seen);
    expect(second.result.tornBytes).toBe(0);
  });
});

describe('isSuccessRecord and endpointOfBody', () => {
  it.each<[string, unknown, boolean]>([
    ['a 200 with error null', success('a'), true],
    ['a 200 without an error field', { custom_id: 'a', response: { status_code: 200 } }, true],
    ['a 299', { custom_id: 'a', response: { status_code: 299 }, error: null }, true],
    ['a 300', { custom_id: 'a', response: { status_code: 300 }, error: null }, false],
    ['a 400 in the Batch error-file shape', rejected('a'), false],
    ['a transport failure', failure('a'), false],
    ['a 200 that also has an error', { custom_id: 'a', response: { status_code: 200 }, error: { code: 'x' } }, false],
    ['a record without custom_id', { response: { status_code: 200 }, error: null }, false],
    ['a numeric custom_id', { custom_id: 1, response: { status_code: 200 }, error: null }, false],
    ['null', null, false],
    ['a string', 'hi', false],
  ])('%s is a success: %s', (_name, value, expected) => {
    expect(isSuccessRecord(value)).toBe(expected);
  });

  it.each<[unknown, string]>([
    [{ object: 'chat.completion' }, '/v1/chat/completions'],
    [{ object: 'response' }, '/v1/responses'],
    [{ object: 'list', data: [] }, '/v1/embeddings'],
    [{ object: 'text_completion' }, '/v1/completions'],
    [{ id: 'modr-1', results: [] }, '/v1/moderations'],
    [{}, '/v1/chat/completions'],
    [null, '/v1/chat/completions'],
  ])('recognises the endpoint of %j as %s', (body, endpoint) => {
    expect(endpointOfBody(body)).toBe(endpoint);
  });
});
