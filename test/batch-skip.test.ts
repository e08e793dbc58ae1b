// `batch submit` after a partial `run`: the lines that already have a success
// in the results file are left out of the uploaded batches (and the manifest
// records which, so every later split leaves out the same lines), and
// download --resume then completes the file with each line once. The CLI as
// a child process against a simulator over real HTTP, plus the line ranges
// the manifest records.

import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { BatchApi } from '../src/batch/api.js';
import { LineRanges, LineRangesBuilder } from '../src/batch/line-ranges.js';
import type { Manifest } from '../src/batch/manifest.js';
import { DEFAULT_PART_LIMITS } from '../src/batch/split.js';
import { submitBatches, type SubmitOptions } from '../src/batch/submit.js';
import { createTransport } from '../src/pipeline/send/transport.js';
import { InputError } from '../src/shared/errors.js';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import type { Simulator } from '../src/sim/server.js';
import { runCli } from './support/cli.js';
import { chatLine, readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-batch-skip-test';
const { dir, simulator } = perTestFixture(KEY);

const lines = (n: number): Array<Record<string, unknown>> => Array.from({ length: n }, (_, i) => chatLine(i + 1, { metadata: { row: i + 1 } }));

/** The custom_ids of every batch input file uploaded to the simulator. */
async function uploadedIds(sim: Simulator): Promise<string[]> {
  const get = async (path: string): Promise<Response> => fetch(`${sim.url}${path}`, { headers: { authorization: `Bearer ${KEY}` } });
  const files = ((await (await get('/files?purpose=batch&limit=10000')).json()) as { data: Array<{ id: string }> }).data;
  const ids: string[] = [];
  for (const file of files) {
    const text = await (await get(`/files/${file.id}/content`)).text();
    for (const line of text.split('\n')) if (line.trim() !== '') ids.push((JSON.parse(line) as { custom_id: string }).custom_id);
  }
  return ids.sort();
}

describe('batch submit after a partial run', () => {
  it('uploads only the lines without a success, says how many it left out, and download --resume completes the file once per line', { timeout: 90_000 }, async () => {
    const sim = await simulator({ latencyMs: 1, batch: { stepMs: 30 } });
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url };
    const input = dir.file('in.jsonl');
    await writeJsonl(input, lines(12));

    const run = await runCli(['run', input, '--limit', '5', '--quiet'], { env });
    expect(run.code).toBe(0);

    const submit = await runCli(['batch', 'submit', input], { env });
    expect(submit.code).toBe(0);
    expect(submit.stderr).toContain(`left out 5 request(s) that already succeeded in ${dir.file('in.results.jsonl')}`);
    expect(submit.stderr).toContain(`batch download ${input} --resume`);
    const expectedIds = Array.from({ length: 7 }, (_, i) => `line-${i + 6}`).sort();
    expect(await uploadedIds(sim)).toEqual(expectedIds);
    const manifest = await readJson<Manifest>(dir.file('in.batch.json'));
    expect(manifest.skipped).toEqual({ results: dir.file('in.results.jsonl'), requests: 5, lines: '1-5' });
    expect(manifest.parts.reduce((n, p) => n + p.requests, 0)).toBe(7);

    expect((await runCli(['batch', 'wait', input, '--poll-interval', '0.05', '--quiet'], { env })).code).toBe(0);
    const download = await runCli(['batch', 'download', input, '--resume', '--quiet'], { env });
    expect(download.code).toBe(0);

    const results = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(results.map((r) => r.custom_id).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `line-${i + 1}`).sort());
    expect(results.filter((r) => r.via === 'batch').map((r) => r.line).sort((a, b) => a - b)).toEqual([6, 7, 8, 9, 10, 11, 12]);
    const summary = await readJson<Summary>(dir.file('in.summary.json'));
    expect(summary.requests).toEqual({ total: 12, succeeded: 12, failed: 0, skipped: 5, pending: 0 });
    // Nothing was answered twice: the five done lines were not bought again.
    expect(sim.stats().duplicates).toBe(0);
  });

  describe('through the library', () => {
    async function api(sim: Simulator): Promise<BatchApi> {
      return new BatchApi(createTransport({ baseUrl: sim.url, apiKey: KEY }));
    }

    function options(input: string, sim: Simulator, extra: Partial<SubmitOptions> = {}): SubmitOptions {
      return {
        input,
        errors: dir.file('in.errors.jsonl'),
        manifestPath: dir.file('in.batch.json'),
        endpoint: '/v1/chat/completions',
        maxLineBytes: 1 << 20,
        limits: DEFAULT_PART_LIMITS,
        baseUrl: sim.url,
        overwrite: false,
        skipSucceeded: { results: dir.file('in.results.jsonl'), summary: dir.file('in.summary.json'), force: false },
        ...extra,
      };
    }

    const success = (line: number): ResultRecord => ({
      id: `oaib_req_${line}`,
      custom_id: `line-${line}`,
      response: { status_code: 200, request_id: 'req_x', body: { model: 'gpt-4o-mini' } },
      error: null,
      line,
      attempts: 1,
      latency_ms: 1,
      cost_usd: 0,
    });

    it('leaves out scattered successes, sends every line when skipSucceeded is null, and reads a torn results file without cutting it', async () => {
      const sim = await simulator({ batch: { stepMs: 1000 } });
      const input = dir.file('in.jsonl');
      await writeJsonl(input, lines(10));
      const torn = [2, 3, 4, 7].map((n) => JSON.stringify(success(n))).join('\n') + '\n{"id": "oaib_req_9", "custom_';
      await writeFile(dir.file('in.results.jsonl'), torn);

      const left = await submitBatches(await api(sim), options(input, sim));

      expect(left.skipped).toBe(4);
      expect(left.session.manifest.skipped).toEqual({ results: dir.file('in.results.jsonl'), requests: 4, lines: '2-4,7' });
      expect(await uploadedIds(sim)).toEqual(['line-1', 'line-10', 'line-5', 'line-6', 'line-8', 'line-9']);
      expect(await readFile(dir.file('in.results.jsonl'), 'utf8')).toBe(torn); // only read: a run may still be writing it

      const all = await submitBatches(await api(sim), options(input, sim, { overwrite: true, manifestPath: dir.file('all.batch.json'), skipSucceeded: null }));
      expect(all.skipped).toBe(0);
      expect(all.session.manifest.skipped).toBeUndefined();
      expect(all.session.manifest.parts.reduce((n, p) => n + p.requests, 0)).toBe(10);
    });

    it('a resubmit leaves out what the manifest recorded, not what the results file says now', async () => {
      const sim = await simulator({ batch: { stepMs: 1000 } });
      const input = dir.file('in.jsonl');
      await writeJsonl(input, lines(6));
      await writeJsonl(dir.file('in.results.jsonl'), [success(1), success(2)]);
      const abort = new AbortController();
      abort.abort(); // stop before the first part is sent: the manifest is written, nothing uploaded
      const first = await submitBatches(await api(sim), options(input, sim, { signal: abort.signal }));
      expect(first.isInterrupted).toBe(true);
      expect(first.session.manifest.skipped?.lines).toBe('1-2');

      await writeJsonl(dir.file('in.results.jsonl'), [success(1), success(2), success(3)]);
      const again = await submitBatches(await api(sim), options(input, sim));

      expect(again.isResumed).toBe(true);
      expect(again.skipped).toBe(2);
      expect(await uploadedIds(sim)).toEqual(['line-3', 'line-4', 'line-5', 'line-6']);
    });

    it('refuses to leave out line-N successes of an input that changed since they were written, unless forced', async () => {
      const sim = await simulator({ batch: { stepMs: 1000 } });
      const input = dir.file('in.jsonl');
      await writeJsonl(input, lines(4));
      await writeJsonl(dir.file('in.results.jsonl'), [success(1)]);
      await writeFile(dir.file('in.summary.json'), JSON.stringify({ input: { path: input, fingerprint: 'sha256:00000000000000000000000000000000', lines: 4 } }));

      const refused = await submitBatches(await api(sim), options(input, sim)).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(InputError);
      expect((refused as InputError).code).toBe('input_changed');
      expect(await uploadedIds(sim)).toEqual([]);

      const forced = await submitBatches(await api(sim), options(input, sim, { skipSucceeded: { results: dir.file('in.results.jsonl'), summary: dir.file('in.summary.json'), force: true } }));
      expect(forced.skipped).toBe(1);
    });
  });
});

describe('line ranges', () => {
  it.each([
    [[], ''],
    [[1], '1'],
    [[1, 2, 3], '1-3'],
    [[1, 2, 3, 5, 7, 8], '1-3,5,7-8'],
    [[4, 10, 11, 12, 100], '4,10-12,100'],
  ])('writes %j as %j and reads it back', (numbers, text) => {
    const builder = new LineRangesBuilder();
    for (const n of numbers) builder.add(n);
    expect(builder.toString()).toBe(text);
    expect(builder.count).toBe(numbers.length);
    const ranges = new LineRanges(text);
    for (let n = 0; n <= 101; n++) expect(ranges.has(n), String(n)).toBe(numbers.includes(n));
  });

  it.each(['1-x', '3-1', '5,4', '1-3,2', 'a'])('refuses %j', (text) => {
    expect(() => new LineRanges(text)).toThrow();
  });

  it('refuses lines that do not increase', () => {
    const builder = new LineRangesBuilder();
    builder.add(3);
    expect(() => builder.add(3)).toThrow();
  });
});
