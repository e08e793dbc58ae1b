// Batch API mode as a library, against the simulator over HTTP: split rules,
// submit → wait → download, resuming a submit a crash cut short, the
// enqueued-token limit, failures, cancel, and `run --resume` afterwards.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { lockFile } from '../src/shared/lock.js';
import { BatchApi, type BatchObject, type FileObject } from '../src/batch/api.js';
import { downloadResults, type DownloadOptions } from '../src/batch/download.js';
import { readManifest } from '../src/batch/manifest.js';
import { BatchSession, type BatchEvent } from '../src/batch/session.js';
import { DEFAULT_PART_LIMITS, PartSplitter, batchLineOf, type PartLimits } from '../src/batch/split.js';
import { submitBatches, type SubmitOptions } from '../src/batch/submit.js';
import { waitForBatches } from '../src/batch/wait.js';
import { chargeOf } from '../src/pipeline/plan/charge.js';
import { ConnectionError } from '../src/shared/errors.js';
import { runBatch } from '../src/pipeline/run.js';
import { createTransport, type Transport } from '../src/pipeline/send/transport.js';
import type { Endpoint, ErrorRecord, RequestItem, ResultRecord, Summary } from '../src/shared/types.js';
import { costOf } from '../src/pricing/cost.js';
import { resolvePrice } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/sim/server.js';
import { readJson, readJsonl, tempDir, writeJsonl } from './support/files.js';

const KEY = 'sk-batch-test';
const prices = loadPriceTable();

// ---- the split, as a table ---------------------------------------------------

function item(line: number, url: Endpoint, model: string, body: Record<string, unknown> = {}): RequestItem {
  const full = url === '/v1/embeddings' ? { model, input: 'some text', ...body } : { model, messages: [{ role: 'user', content: 'hello' }], ...body };
  return { customId: `line-${line}`, line, method: 'POST', url, body: full, model, form: 'bare', charge: chargeOf(url, full) };
}

describe('PartSplitter', () => {
  const chat = '/v1/chat/completions' as const;
  const emb = '/v1/embeddings' as const;
  const cases: Array<{ name: string; limits: Partial<PartLimits>; items: RequestItem[]; bytes?: number; parts: number[] }> = [
    { name: 'one endpoint and model make one part', limits: {}, items: [item(1, chat, 'a'), item(2, chat, 'a')], parts: [1, 1] },
    { name: 'another model opens its own part', limits: {}, items: [item(1, chat, 'a'), item(2, chat, 'b'), item(3, chat, 'a')], parts: [1, 2, 1] },
    { name: 'another endpoint opens its own part', limits: {}, items: [item(1, chat, 'a'), item(2, emb, 'a'), item(3, emb, 'a')], parts: [1, 2, 2] },
    { name: 'the request limit closes a part', limits: { maxRequests: 2 }, items: [1, 2, 3, 4, 5].map((i) => item(i, chat, 'a')), parts: [1, 1, 2, 2, 3] },
    {
      name: 'embedding inputs count each array element',
      limits: { maxEmbeddingInputs: 5 },
      items: [item(1, emb, 'e', { input: ['x', 'y', 'z'] }), item(2, emb, 'e', { input: ['x', 'y'] }), item(3, emb, 'e', { input: 'x' })],
      parts: [1, 1, 2],
    },
    { name: 'the byte limit closes a part', limits: { maxBytes: 250 }, bytes: 100, items: [1, 2, 3, 4].map((i) => item(i, chat, 'a')), parts: [1, 1, 2, 2] },
    {
      name: 'the enqueued-token limit closes a part',
      limits: { maxEnqueuedTokens: 20 },
      items: [1, 2, 3].map((i) => item(i, chat, 'a', { messages: [{ role: 'user', content: 'x'.repeat(36) }] })),
      parts: [1, 2, 3],
    },
    { name: 'a single line larger than a limit still gets a part', limits: { maxBytes: 10 }, bytes: 100, items: [item(1, chat, 'a'), item(2, chat, 'a')], parts: [1, 2] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const splitter = new PartSplitter({ ...DEFAULT_PART_LIMITS, ...c.limits });
      const assigned = c.items.map((i) => splitter.assign(i, c.bytes ?? Buffer.byteLength(batchLineOf(i)) + 1).part);
      expect(assigned).toEqual(c.parts);
      for (const part of splitter.parts) {
        const members = c.items.filter((_, k) => assigned[k] === part.part);
        expect(new Set(members.map((m) => `${m.url} ${m.model}`)).size).toBe(1);
        expect(part.requests).toBe(members.length);
        expect(part.firstLine).toBe(members[0]?.line);
        expect(part.lastLine).toBe(members[members.length - 1]?.line);
      }
    });
  }

  it('writes the Batch API line without our metadata but with the body’s own', () => {
    const withOurs: RequestItem = { ...item(3, '/v1/chat/completions', 'a', { metadata: { api: 'kept' } }), metadata: { ours: 1 } };
    expect(JSON.parse(batchLineOf(withOurs))).toEqual({
      custom_id: 'line-3',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'a', messages: [{ role: 'user', content: 'hello' }], metadata: { api: 'kept' } },
    });
  });
});

// ---- against the simulator ---------------------------------------------------

let dir: Awaited<ReturnType<typeof tempDir>>;
let sim: Simulator | null = null;
let transport: Transport | null = null;

beforeEach(async () => {
  dir = await tempDir('oai-batch-batch-');
});
afterEach(async () => {
  await transport?.close();
  transport = null;
  await sim?.close();
  sim = null;
  await dir.remove();
});

async function simulator(options: SimulatorOptions = {}): Promise<BatchApi> {
  sim = await startSimulator({ apiKey: KEY, ...options, batch: { stepMs: 25, ...options.batch } });
  transport = createTransport({ baseUrl: sim.url, apiKey: KEY });
  return new BatchApi(transport);
}

/** Chat lines in bare form (with our metadata), embeddings in batch form: two endpoints, two models. */
function mixedLines(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return i % 3 === 0
      ? { custom_id: `emb-${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: `text number ${i}` }, metadata: { row: i } }
      : { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}` }], max_tokens: 30, metadata: { row: i } };
  });
}

function submitOptions(input: string, extra: Partial<SubmitOptions> = {}): SubmitOptions {
  return {
    input,
    errors: dir.file('in.errors.jsonl'),
    manifestPath: dir.file('in.batch.json'),
    endpoint: '/v1/chat/completions',
    maxLineBytes: 1 << 20,
    limits: DEFAULT_PART_LIMITS,
    baseUrl: sim!.url,
    overwrite: false,
    ...extra,
  };
}

function downloadOptions(input: string, extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return {
    input,
    manifestPath: dir.file('in.batch.json'),
    output: dir.file('in.results.jsonl'),
    errors: dir.file('in.errors.jsonl'),
    summary: dir.file('in.summary.json'),
    resume: false,
    overwrite: false,
    force: false,
    prices,
    baseUrl: sim!.url,
    ...extra,
  };
}

async function listAll<T>(api: BatchApi, kind: 'files' | 'batches'): Promise<T[]> {
  const out: T[] = [];
  for await (const x of kind === 'files' ? api.listFiles() : api.listBatches()) out.push(x as T);
  return out;
}

describe('submit → wait → download', () => {
  it('sends a mixed two-endpoint file as one batch per endpoint and model, and merges the answers as run writes them', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, [...mixedLines(30), '{not json']);
    const submitted = await submitBatches(api, submitOptions(input));
    const manifest = submitted.session.manifest;
    expect(manifest.parts.map((p) => [p.endpoint, p.model, p.requests])).toEqual([
      ['/v1/chat/completions', 'gpt-4o-mini', 20],
      ['/v1/embeddings', 'text-embedding-3-small', 10],
    ]);
    expect(submitted.inputProblems).toBe(1);
    expect(await waitForBatches(submitted.session, { pollMs: 10 })).toBe('ended');
    const { summary, exitCode } = await downloadResults(api, downloadOptions(input));

    const results = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(results).toHaveLength(30);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(30);
    for (const r of results) {
      expect(Object.keys(r)).toEqual(['id', 'custom_id', 'response', 'error', 'line', 'attempts', 'latency_ms', 'cost_usd', 'metadata', 'via']);
      expect(r.id).toMatch(/^batch_req_/);
      expect(r.via).toBe('batch');
      expect(r.metadata).toEqual({ row: r.line });
      expect(r.custom_id).toBe(r.line % 3 === 0 ? `emb-${r.line}` : `line-${r.line}`);
    }
    const errors = await readJsonl<ErrorRecord>(dir.file('in.errors.jsonl'));
    expect(errors.map((e) => [e.line, e.error.code])).toEqual([[31, 'invalid_json']]);

    expect(summary.mode).toBe('batch');
    expect(summary.pricing.batch_discount_applied).toBe(true);
    expect(summary.requests).toEqual({ total: 31, succeeded: 30, failed: 1, skipped: 0, pending: 0 });
    expect(exitCode).toBe(2);
    // The cost is the summary's own token totals priced at the batch rate.
    let expected = 0;
    for (const [model, totals] of Object.entries(summary.by_model)) {
      const price = resolvePrice(prices, model)!.price;
      expected += costOf({ ...totals, input_audio_tokens: 0, output_audio_tokens: 0 }, price, { batch: true, batchDiscount: prices.batch_discount, longContext: false }).total;
    }
    expect(summary.cost_usd.total).toBeCloseTo(expected, 12);
    expect(results.reduce((sum, r) => sum + (r.cost_usd ?? 0), 0)).toBeCloseTo(expected, 10);
  });

  it('submitting again uploads and creates nothing more', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(12));
    await submitBatches(api, submitOptions(input));
    const again = await submitBatches(api, submitOptions(input, { limits: { ...DEFAULT_PART_LIMITS, maxRequests: 1 } }));
    expect(again.isResumed).toBe(true);
    // The resumed manifest keeps the limits it was split with.
    expect(again.session.manifest.parts).toHaveLength(2);
    expect(await listAll<FileObject>(api, 'files')).toHaveLength(2);
    expect(await listAll<BatchObject>(api, 'batches')).toHaveLength(2);
  });

  it('after an upload whose answer was lost, a resubmit finds the file by name instead of uploading it again', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(12));
    class LosesSecondUpload extends BatchApi {
      uploads = 0;
      override async uploadFile(path: string, name: string): Promise<FileObject> {
        const file = await super.uploadFile(path, name);
        if (++this.uploads === 2) throw new Error('connection lost after the server stored the file');
        return file;
      }
    }
    await expect(submitBatches(new LosesSecondUpload(transport!), submitOptions(input))).rejects.toThrow(/connection lost/);
    const crashed = await readManifest(dir.file('in.batch.json'));
    expect(crashed!.parts.map((p) => p.state)).toEqual(['submitted', 'uploading']);

    const events: BatchEvent[] = [];
    await submitBatches(api, submitOptions(input, { session: { onEvent: (e) => events.push(e) } }));
    expect(events.filter((e) => e.type === 'uploaded')).toEqual([{ type: 'uploaded', part: 2, fileId: expect.any(String), isReused: true }]);
    expect(await listAll<FileObject>(api, 'files')).toHaveLength(2);
    expect(await listAll<BatchObject>(api, 'batches')).toHaveLength(2);
  });

  it('after a create whose answer was lost, a resubmit finds the batch by its metadata instead of creating it again', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(12));
    class LosesFirstCreate extends BatchApi {
      override async createBatch(fileId: string, endpoint: string, metadata: Record<string, string>): Promise<BatchObject> {
        await super.createBatch(fileId, endpoint, metadata);
        throw new Error('killed after the server created the batch');
      }
    }
    await expect(submitBatches(new LosesFirstCreate(transport!), submitOptions(input))).rejects.toThrow(/killed/);
    const crashed = await readManifest(dir.file('in.batch.json'));
    expect(crashed!.parts.map((p) => [p.state, p.attempt])).toEqual([['creating', 1], ['pending', 0]]);

    const resumed = await submitBatches(api, submitOptions(input));
    const batches = await listAll<BatchObject>(api, 'batches');
    expect(batches).toHaveLength(2);
    expect(resumed.session.manifest.parts.map((p) => p.batch_id).sort()).toEqual(batches.map((b) => b.id).sort());
    expect(batches.map((b) => b.metadata?.part).sort()).toEqual(['1', '2']);
  });

  it('holds parts back while the enqueued-token limit is full and creates each one as an earlier part ends', async () => {
    const api = await simulator({ batch: { stepMs: 20 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, Array.from({ length: 30 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}` }] })));
    const events: BatchEvent[] = [];
    // About 7 tokens per line: 10 lines per part.
    const limits = { ...DEFAULT_PART_LIMITS, maxEnqueuedTokens: 75 };
    const submitted = await submitBatches(api, submitOptions(input, { limits, session: { onEvent: (e) => events.push(e) } }));
    expect(submitted.session.manifest.parts.length).toBeGreaterThanOrEqual(3);
    expect(submitted.session.manifest.parts.map((p) => p.state).slice(0, 2)).toEqual(['submitted', 'uploaded']);
    expect(await waitForBatches(submitted.session, { pollMs: 5 })).toBe('ended');

    const order = events.filter((e) => e.type === 'created' || (e.type === 'status' && e.status === 'completed')).map((e) => `${e.type} ${e.part}`);
    const parts = submitted.session.manifest.parts.length;
    expect(order).toEqual(Array.from({ length: parts }, (_, i) => [`created ${i + 1}`, `status ${i + 1}`]).flat());
  });

  it('submits a part again when the API refused it with token_limit_exceeded, once capacity frees', async () => {
    // Long steps: part 1 is still running when parts 2 and 3 are validated, however slow the machine.
    const api = await simulator({ batch: { stepMs: 200, enqueuedTokenLimit: 100 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, Array.from({ length: 30 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}` }] })));
    const events: BatchEvent[] = [];
    const submitted = await submitBatches(api, submitOptions(input, { limits: { ...DEFAULT_PART_LIMITS, maxRequests: 10 }, session: { onEvent: (e) => events.push(e) } }));
    expect(await waitForBatches(submitted.session, { pollMs: 5 })).toBe('ended');
    const parts = submitted.session.manifest.parts;
    expect(parts.map((p) => p.status)).toEqual(['completed', 'completed', 'completed']);
    expect(events.some((e) => e.type === 'refused')).toBe(true);
    const refused = parts.flatMap((p) => p.previous_batches);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((b) => b.errors[0]?.code === 'token_limit_exceeded')).toBe(true);
    const { summary } = await downloadResults(api, downloadOptions(input));
    expect(summary.requests.succeeded).toBe(30);
  });
});

describe('lockFile (one command per manifest or results file)', () => {
  it('refuses a manifest a running process holds, takes over one a dead process left, and frees it on release', async () => {
    const manifest = dir.file('m.batch.json');
    await writeFile(`${manifest}.lock`, String(process.ppid));
    await expect(lockFile(manifest, 'manifest_locked')).rejects.toThrow(`another oai-batch command (pid ${process.ppid}) is working on`);
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    await writeFile(`${manifest}.lock`, gone.stdout.toString());
    const release = await lockFile(manifest, 'manifest_locked');
    expect(await readFile(`${manifest}.lock`, 'utf8')).toBe(String(process.pid));
    await release();
    expect(existsSync(`${manifest}.lock`)).toBe(false);
  });
});

describe('failures', () => {
  it('reports expired parts, all-failed parts and rejected lines, and run --resume then sends exactly what is missing', async () => {
    const api = await simulator({ batch: { stepMs: 150, expiresAfterMs: 400 } });
    const input = dir.file('in.jsonl');
    const good = Array.from({ length: 200 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}` }], max_tokens: 10 }));
    // Past our own checks (plan refuses empty messages), refused by the API's validation of the line.
    const rejected = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 0 };
    const unknownModel = { model: 'nonexistent-model', messages: [{ role: 'user', content: 'hi' }] };
    await writeJsonl(input, [rejected, ...good, unknownModel]);
    const submitted = await submitBatches(api, submitOptions(input));
    await waitForBatches(submitted.session, { pollMs: 10 });
    expect(submitted.session.manifest.parts.map((p) => [p.model, p.status])).toEqual([
      ['gpt-4o-mini', 'expired'],
      ['nonexistent-model', 'completed'],
    ]);
    expect(submitted.session.manifest.parts[1]!.output_file_id).toBeNull();

    const { summary, exitCode } = await downloadResults(api, downloadOptions(input));
    const errors = await readJsonl<ErrorRecord>(dir.file('in.errors.jsonl'));
    const codes = new Map<string, number>();
    for (const e of errors) codes.set(e.error.code, (codes.get(e.error.code) ?? 0) + 1);
    expect(codes.get('model_not_found')).toBe(1);
    expect(codes.get('integer_below_min_value')).toBe(1);
    const expired = codes.get('batch_expired') ?? 0;
    expect(expired).toBeGreaterThan(0);
    expect(summary.requests.succeeded + expired + 2).toBe(202);
    expect(errors.every((e) => e.via === 'batch')).toBe(true);
    expect(summary.warnings).toContain(`part 1 (${submitted.session.manifest.parts[0]!.batch_id}) expired before every request ran (24 h window)`);
    expect(exitCode).toBe(2);

    // run --resume: only the lines without a success are sent.
    const before = sim!.stats().billed['gpt-4o-mini-2024-07-18']?.requests ?? 0;
    const run = await runBatch({
      input,
      output: dir.file('in.results.jsonl'),
      errors: dir.file('in.errors.jsonl'),
      summary: dir.file('in.summary.json'),
      transport: { baseUrl: sim!.url, apiKey: KEY },
      resume: true,
      prices,
      maxAttempts: 1,
    });
    const sentOk = (sim!.stats().billed['gpt-4o-mini-2024-07-18']?.requests ?? 0) - before;
    expect(run.summary.requests.skipped).toBe(summary.requests.succeeded);
    expect(sentOk).toBe(202 - summary.requests.succeeded - 2);
    const results = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(results).toHaveLength(200);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(200);
    expect((await readJsonl<ErrorRecord>(dir.file('in.errors.jsonl'))).map((e) => e.line).sort()).toEqual([1, 202]);
    // The run's summary prices the earlier batch answers at the batch rate, as download did.
    const batchCost = results.filter((r) => r.via === 'batch').reduce((sum, r) => sum + (r.cost_usd ?? 0), 0);
    expect(batchCost).toBeCloseTo(summary.cost_usd.total, 10);
    expect(run.summary.cost_usd.total).toBeCloseTo(results.reduce((sum, r) => sum + (r.cost_usd ?? 0), 0), 10);
  });

  it('cancel stops running parts and never sends parts not yet created; download keeps what finished', async () => {
    const api = await simulator({ batch: { stepMs: 200 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, Array.from({ length: 300 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Q ${i}` }] })));
    // Part 1 fills the enqueued-token limit: part 2 waits and is never created.
    const limits = { ...DEFAULT_PART_LIMITS, maxRequests: 200, maxEnqueuedTokens: 2_000 };
    const submitted = await submitBatches(api, submitOptions(input, { limits }));
    const session = submitted.session;
    expect(session.manifest.parts.map((p) => p.state)).toEqual(['submitted', 'uploaded']);
    await waitUntil(async () => (await session.refresh(), session.manifest.parts[0]!.request_counts?.completed ?? 0) > 0);
    await session.cancel();
    expect(session.manifest.parts.map((p) => [p.state, p.status])).toEqual([['submitted', 'cancelling'], ['cancelled', null]]);
    expect(await waitForBatches(session, { pollMs: 10 })).toBe('ended');
    expect(await listAll<BatchObject>(api, 'batches')).toHaveLength(1);

    const { summary } = await downloadResults(api, downloadOptions(input));
    const errors = await readJsonl<ErrorRecord>(dir.file('in.errors.jsonl'));
    expect(summary.requests.succeeded).toBeGreaterThan(0);
    expect(summary.requests.succeeded + errors.length).toBe(300);
    expect(errors.every((e) => e.error.code === 'batch_cancelled')).toBe(true);
  });

  it('downloads again without duplicating, and refuses an existing results file without --resume or --overwrite', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(9));
    const submitted = await submitBatches(api, submitOptions(input));
    await waitForBatches(submitted.session, { pollMs: 10 });
    await downloadResults(api, downloadOptions(input));
    await expect(downloadResults(api, downloadOptions(input))).rejects.toThrow(/already exists: use --resume .* or --overwrite/);
    const again = await downloadResults(api, downloadOptions(input, { resume: true }));
    expect(again.summary.requests).toMatchObject({ total: 9, succeeded: 9, skipped: 9, failed: 0 });
    expect(await readJsonl(dir.file('in.results.jsonl'))).toHaveLength(9);
    const fresh = await downloadResults(api, downloadOptions(input, { overwrite: true }));
    expect(fresh.summary.requests.skipped).toBe(0);
    expect(await readJsonl(dir.file('in.results.jsonl'))).toHaveLength(9);
    const summary = await readJson<Summary>(dir.file('in.summary.json'));
    expect(summary.mode).toBe('batch');
  });

  it('downloads what has ended and reports the rest as pending with exit 3', async () => {
    const api = await simulator({ batch: { stepMs: 10_000 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(6));
    await submitBatches(api, submitOptions(input));
    const { summary, exitCode, pendingParts } = await downloadResults(api, downloadOptions(input));
    expect(pendingParts).toBe(2);
    expect(summary.requests).toMatchObject({ total: 6, succeeded: 0, pending: 6 });
    expect(exitCode).toBe(3);
  });

  it('wait gives up at its timeout while the batches keep running', async () => {
    const api = await simulator({ batch: { stepMs: 10_000 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(3));
    const submitted = await submitBatches(api, submitOptions(input));
    expect(await waitForBatches(submitted.session, { pollMs: 5, timeoutMs: 60 })).toBe('timeout');
  });

  it('creates refused parts again once a batch of their model ended after the refusal, even when one poll sees all of it at once', async () => {
    const api = await simulator({ batch: { stepMs: 100, enqueuedTokenLimit: 100 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, Array.from({ length: 30 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}` }] })));
    const submitted = await submitBatches(api, submitOptions(input, { limits: { ...DEFAULT_PART_LIMITS, maxRequests: 10 } }));
    // Nobody polls while part 1 runs and parts 2 and 3 are refused: the next poll sees the end and both refusals together.
    await waitUntil(async () => (await listAll<BatchObject>(api, 'batches')).every((b) => b.status === 'completed' || b.status === 'failed'));
    const started = Date.now();
    // The refusal backoff is a minute: ending within seconds shows the parts went again because part 1 ended.
    expect(await waitForBatches(submitted.session, { pollMs: 10, timeoutMs: 30_000 })).toBe('ended');
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(submitted.session.manifest.parts.map((p) => p.status)).toEqual(['completed', 'completed', 'completed']);
  });

  it('wait rides out polls that fail for a while (connection errors) and still sees every part end', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(6));
    const submitted = await submitBatches(api, submitOptions(input));
    class Flaky extends BatchApi {
      failures = 0;
      override async getBatch(id: string): Promise<BatchObject> {
        if (this.failures < 3) {
          this.failures += 1;
          throw new ConnectionError('ECONNRESET: socket hang up');
        }
        return super.getBatch(id);
      }
    }
    const flaky = new Flaky(transport!);
    const session = new BatchSession(dir.file('in.batch.json'), submitted.session.manifest, flaky);
    const seen: string[] = [];
    expect(await waitForBatches(session, { pollMs: 5, maxPollMs: 20, onPollError: (e) => seen.push(e.message) })).toBe('ended');
    expect(seen).toEqual(Array(3).fill('ECONNRESET: socket hang up'));
  });

  it('refuses to replace a manifest with --overwrite while its batches may still run', async () => {
    const api = await simulator({ batch: { stepMs: 10_000 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(3));
    await submitBatches(api, submitOptions(input));
    await expect(submitBatches(api, submitOptions(input, { overwrite: true }))).rejects.toThrow(/2 part\(s\) still running .* batch cancel/);
    expect(await listAll<BatchObject>(api, 'batches')).toHaveLength(2);
  });

  it('refuses to continue a manifest whose input changed', async () => {
    const api = await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, mixedLines(3));
    await submitBatches(api, submitOptions(input));
    await writeJsonl(input, mixedLines(4));
    await expect(submitBatches(api, submitOptions(input))).rejects.toThrow(/changed since .* was written/);
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
