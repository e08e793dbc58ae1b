// `oai-batch batch …` as a real child process against a simulator in this
// process: the whole cycle on 3,000 lines compared with `run`, a SIGKILL in
// the middle of submit followed by a resubmit, timeout/cancel/download and
// `run --resume`, the all-in-one --simulate cycle, and flag errors.
// `npm test` builds dist/ first.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Manifest } from '../src/batch/manifest.js';
import type { ErrorRecord, ResultRecord, Summary } from '../src/shared/types.js';
import { costOf } from '../src/pricing/cost.js';
import { resolvePrice } from '../src/pricing/prices.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/sim/server.js';
import { runCli, startCli } from './support/cli.js';
import { readJson, readJsonl, tempDir, writeJsonl } from './support/files.js';
import { batchOptionsFromArgs } from '../src/cli/batch.js';

const KEY = 'sk-batch-cli-test-key';
let dir: Awaited<ReturnType<typeof tempDir>>;
let sim: Simulator | null = null;

beforeEach(async () => {
  dir = await tempDir('oai-batch-cli-');
});
afterEach(async () => {
  await sim?.close();
  sim = null;
  await dir.remove();
});

async function simulator(options: SimulatorOptions = {}): Promise<Simulator> {
  sim = await startSimulator({ apiKey: KEY, rpm: 1_000_000, tpm: 1_000_000_000, ...options, batch: { stepMs: 50, ...options.batch } });
  return sim;
}

function env(): Record<string, string> {
  return { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim!.url };
}

/** Two endpoints: bare chat lines with our metadata, and embeddings in Batch API form. */
function twoEndpointLines(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return i % 3 === 0
      ? { custom_id: `emb-${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: `passage ${i}` }, metadata: { row: i } }
      : { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}: what is ${i} times three?` }], max_tokens: 40, metadata: { row: i } };
  });
}

/** The server's uploaded batch input files, or its batches (up to 100). */
async function serverList(kind: 'files' | 'batches'): Promise<any[]> {
  const query = kind === 'files' ? 'purpose=batch&limit=10000' : 'limit=100';
  const response = await fetch(`${sim!.url}/${kind}?${query}`, { headers: { authorization: `Bearer ${KEY}` } });
  return ((await response.json()) as { data: any[] }).data;
}

async function waitUntil(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

async function manifestOf(path: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Manifest;
  } catch {
    return null; // not written yet (or being renamed into place)
  }
}

describe('batch CLI', () => {
  it('takes a 3,000-line two-endpoint file through submit → wait → download, with results in run’s form and cost at the batch rate', { timeout: 180_000 }, async () => {
    await simulator();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, twoEndpointLines(3000));

    const submit = await runCli(['batch', 'submit', input], { env: env() });
    expect(submit.stderr).toContain('next: oai-batch batch wait');
    expect(submit.code).toBe(0);
    const wait = await runCli(['batch', 'wait', input, '--poll-interval', '0.05'], { env: env() });
    expect(wait.code).toBe(0);
    const download = await runCli(['batch', 'download', input], { env: env() });
    expect(download.code).toBe(0);

    const run = await runCli(
      ['run', input, '-o', dir.file('run.results.jsonl'), '--errors', dir.file('run.errors.jsonl'), '--summary', dir.file('run.summary.json'), '--quiet'],
      { env: env() },
    );
    expect(run.code).toBe(0);

    const batchResults = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    const runResults = await readJsonl<ResultRecord>(dir.file('run.results.jsonl'));
    expect(batchResults).toHaveLength(3000);
    expect(new Set(batchResults.map((r) => r.custom_id)).size).toBe(3000);
    const online = new Map(runResults.map((r) => [r.custom_id, r]));
    for (const r of batchResults) {
      const twin = online.get(r.custom_id)!;
      expect(Object.keys(r)).toEqual([...Object.keys(twin), 'via']);
      expect(r.via).toBe('batch');
      expect(r.id).toMatch(/^batch_req_/);
      expect([r.line, r.metadata, r.response.status_code, r.error]).toEqual([twin.line, twin.metadata, twin.response.status_code, null]);
      const body = r.response.body as { model: string; usage: unknown };
      const twinBody = twin.response.body as { model: string; usage: unknown };
      expect([body.model, body.usage]).toEqual([twinBody.model, twinBody.usage]);
    }
    expect(await readJsonl(dir.file('in.errors.jsonl'))).toEqual([]);

    const batchSummary = await readJson<Summary>(dir.file('in.summary.json'));
    const runSummary = await readJson<Summary>(dir.file('run.summary.json'));
    expect(batchSummary.mode).toBe('batch');
    expect(batchSummary.pricing.batch_discount_applied).toBe(true);
    expect(batchSummary.requests).toEqual({ total: 3000, succeeded: 3000, failed: 0, skipped: 0, pending: 0 });
    expect(batchSummary.usage).toEqual(runSummary.usage);
    const prices = loadPriceTable();
    let atBatchRate = 0;
    for (const [model, totals] of Object.entries(batchSummary.by_model)) {
      const price = resolvePrice(prices, model)!.price;
      atBatchRate += costOf({ ...totals }, price, { batch: true, batchDiscount: prices.batch_discount, longContext: false }).total;
    }
    expect(batchSummary.cost_usd.total).toBeCloseTo(atBatchRate, 9);
    expect(batchSummary.cost_usd.total).toBeCloseTo(runSummary.cost_usd.total * 0.5, 9);
    expect(batchSummary.cost_usd.total).toBeGreaterThan(0);
  });

  it('resumes a submit killed with SIGKILL mid-upload and mid-create without uploading or creating anything twice', { timeout: 180_000 }, async () => {
    // The server stores each file and batch, then takes 500 ms to answer: a kill in that window loses the answer.
    await simulator({ batch: { createDelayMs: 500 } });
    const input = dir.file('in.jsonl');
    const manifestPath = dir.file('in.batch.json');
    await writeJsonl(input, twoEndpointLines(60).filter((line) => !('custom_id' in line)));
    const args = ['batch', 'submit', input, '--max-requests-per-part', '8'];

    /** Starts a submit and kills it once the manifest and the server both show the moment. */
    const killWhen = async (isTime: (m: Manifest) => Promise<boolean>): Promise<Manifest> => {
      const { child, done } = startCli(args, { env: env() });
      let exited = false;
      void done.then(() => (exited = true));
      for (;;) {
        if (exited) throw new Error(`submit ended before the moment to kill it: ${(await done).stderr}`);
        const manifest = await manifestOf(manifestPath);
        if (manifest && (await isTime(manifest))) {
          child.kill('SIGKILL');
          expect((await done).signal).toBe('SIGKILL');
          return (await manifestOf(manifestPath))!;
        }
        await sleep(5);
      }
    };

    // 1. Killed while part 2's upload is stored but unanswered: the server holds a file the manifest does not name.
    const first = await killWhen(async (m) => m.parts[1]?.state === 'uploading' && (await serverList('files')).length === 2);
    expect(first.parts.map((p) => p.state).slice(0, 3)).toEqual(['submitted', 'uploading', 'pending']);
    expect(first.parts[1]?.file_id).toBeNull();

    // 2. Killed while part 4's create is stored but unanswered: the server holds a batch the manifest does not name.
    const second = await killWhen(async (m) => m.parts[3]?.state === 'creating' && (await serverList('batches')).length === 4);
    expect(second.parts[3]?.batch_id).toBeNull();
    expect(await serverList('files')).toHaveLength(4);

    // 3. The resubmit finishes: every part exactly once on the server.
    const finished = await runCli(args, { env: env() });
    expect(finished.code).toBe(0);
    const manifest = (await manifestOf(manifestPath))!;
    const parts = manifest.parts.length;
    expect(parts).toBe(5);
    expect(manifest.parts.every((p) => p.state === 'submitted' && p.batch_id !== null)).toBe(true);
    const files = await serverList('files');
    const batches = await serverList('batches');
    expect(files).toHaveLength(parts);
    expect(new Set(files.map((f) => f.filename)).size).toBe(files.length);
    expect(batches).toHaveLength(parts);
    expect(batches.map((b) => b.metadata.part).sort()).toEqual(manifest.parts.map((p) => String(p.part)).sort());
    expect(new Set(manifest.parts.map((p) => p.batch_id))).toEqual(new Set(batches.map((b) => b.id)));
    expect(finished.stderr).toMatch(/part 4: found its earlier batch/);
    expect(second.parts[1]?.file_id).toBe(files.find((f) => f.filename === second.parts[1]?.filename)?.id);

    // And the answers come back once each.
    expect((await runCli(['batch', 'wait', input, '--poll-interval', '0.05', '--quiet'], { env: env() })).code).toBe(0);
    expect((await runCli(['batch', 'download', input, '--quiet'], { env: env() })).code).toBe(0);
    const results = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(results).toHaveLength(40);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(40);
  });

  it('wait times out with exit 3, cancel stops the parts, download lists the unfinished lines, and run --resume sends exactly those', { timeout: 180_000 }, async () => {
    // Slow steps: the batches are still running when cancel comes, however slow the machine.
    await simulator({ batch: { stepMs: 4000 } });
    const input = dir.file('in.jsonl');
    await writeJsonl(input, twoEndpointLines(40).filter((line) => !('custom_id' in line)).slice(0, 24));
    expect((await runCli(['batch', 'submit', input, '--max-requests-per-part', '12', '--quiet'], { env: env() })).code).toBe(0);

    const waited = await runCli(['batch', 'wait', input, '--timeout', '0.1', '--poll-interval', '0.05'], { env: env() });
    expect(waited.code).toBe(3);
    expect(waited.stderr).toContain('--timeout 0.1 s ran out');

    // One command at a time per manifest: cancel is refused while a wait holds it; status only looks.
    const waiting = startCli(['batch', 'wait', input, '--poll-interval', '0.05'], { env: env() });
    await waitUntil(() => existsSync(dir.file('in.batch.json.lock')));
    const refusedCancel = await runCli(['batch', 'cancel', input], { env: env() });
    expect(refusedCancel.code).toBe(1);
    expect(refusedCancel.stderr).toContain(`another oai-batch command (pid ${waiting.child.pid}) is working on`);
    const status = await runCli(['batch', 'status', input], { env: env() });
    waiting.child.kill('SIGINT');
    expect((await waiting.done).code).toBe(3);
    expect(existsSync(dir.file('in.batch.json.lock'))).toBe(false);

    expect(status.code).toBe(0);
    expect(status.stdout.split('\n')[0]).toMatch(/^part\s+endpoint\s+model\s+lines\s+requests\s+status\s+done\s+failed\s+batch\s+errors$/);
    expect(status.stdout).toMatch(/^2\s+\/v1\/chat\/completions\s+gpt-4o-mini\s+/m);

    expect((await runCli(['batch', 'cancel', input], { env: env() })).code).toBe(0);
    expect((await runCli(['batch', 'wait', input, '--poll-interval', '0.05', '--quiet'], { env: env() })).code).toBe(2);
    const download = await runCli(['batch', 'download', input, '--quiet'], { env: env() });
    expect(download.code).toBe(2);
    const errors = await readJsonl<ErrorRecord>(dir.file('in.errors.jsonl'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.error.code === 'batch_cancelled')).toBe(true);
    const answered = (await readJsonl(dir.file('in.results.jsonl'))).length;
    expect(answered + errors.length).toBe(24);

    const before = sim!.stats().billed['gpt-4o-mini-2024-07-18']?.requests ?? 0;
    const rerun = await runCli(['run', input, '--resume', '--quiet'], { env: env() });
    expect(rerun.code).toBe(0);
    expect((sim!.stats().billed['gpt-4o-mini-2024-07-18']?.requests ?? 0) - before).toBe(errors.length);
    const results = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(results).toHaveLength(24);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(24);
  });

  it('runs the whole cycle in one command with --simulate, and can run it twice', { timeout: 120_000 }, async () => {
    const input = dir.file('demo.jsonl');
    await writeJsonl(input, [...twoEndpointLines(9), '{"model": "gpt-4o-mini"}']);
    for (let i = 0; i < 2; i++) {
      const result = await runCli(['batch', 'submit', input, '--simulate', '--overwrite'], { env: {} });
      expect(result.stderr).toMatch(/parts: 2 completed/);
      expect(result.code).toBe(2); // the line without messages is sent and rejected: exit 2, as run would
    }
    const results = await readJsonl<ResultRecord>(dir.file('demo.results.jsonl'));
    expect(results).toHaveLength(9);
    const summary = await readJson<Summary>(dir.file('demo.summary.json'));
    expect(summary.mode).toBe('batch');
    expect(summary.requests).toMatchObject({ total: 10, succeeded: 9, failed: 1 });
    expect(existsSync(dir.file('demo.batch.json'))).toBe(true);
    // Its batches ended with that command: later commands against a real API say so.
    const later = await runCli(['batch', 'status', input, '--base-url', 'http://127.0.0.1:9/v1'], { env: { OPENAI_API_KEY: KEY } });
    expect(later.code).toBe(1);
    expect(later.stderr).toContain('ran in a simulator inside the command that submitted them');
  });

  it('explains what --simulate can do for the step-by-step commands, and names both flags when results exist', { timeout: 120_000 }, async () => {
    const input = dir.file('in.jsonl');
    await writeJsonl(input, twoEndpointLines(3));
    const refused = await runCli(['batch', 'wait', input, '--simulate'], { env: {} });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('oai-batch simulate');
    const missing = await runCli(['batch', 'download', input, '--base-url', 'http://127.0.0.1:9/v1'], { env: { OPENAI_API_KEY: KEY } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no batch manifest');

    await simulator();
    expect((await runCli(['batch', 'submit', input, '--wait', '--poll-interval', '0.05', '--quiet'], { env: env() })).code).toBe(0);
    expect((await runCli(['batch', 'download', input, '--quiet'], { env: env() })).code).toBe(0);
    const again = await runCli(['batch', 'download', input], { env: env() });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--resume.*--overwrite/);
    // The all-in-one --simulate cycle checks the results file before it sends anything.
    const simulated = await runCli(['batch', 'submit', input, '--simulate'], { env: {} });
    expect(simulated.code).toBe(1);
    expect(simulated.stderr).toMatch(/--resume.*--overwrite/);
    expect((await readJson<Manifest>(dir.file('in.batch.json'))).base_url).toBe(sim!.url);
    const elsewhere = await runCli(['batch', 'status', input, '--base-url', 'http://127.0.0.1:9/v1'], { env: env() });
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain(`pass --base-url ${sim!.url}`);
  });
});

describe('batch flags → options', () => {
  const io = { env: { OPENAI_API_KEY: 'k' }, cwd: '/' };
  const cases: Array<{ argv: Record<string, unknown>; expected?: Record<string, unknown>; error?: RegExp }> = [
    {
      argv: { action: 'submit', input: 'reqs.jsonl' },
      expected: { manifest: 'reqs.batch.json', output: 'reqs.results.jsonl', errors: 'reqs.errors.jsonl', summary: 'reqs.summary.json', wait: false, download: false, maxRequestsPerPart: 50_000 },
    },
    { argv: { action: 'submit', input: 'r.jsonl', download: true }, expected: { wait: true, download: true } },
    { argv: { action: 'submit', input: 'r.jsonl', simulate: true }, expected: { wait: true, download: true, pollSeconds: 0.1 } },
    { argv: { action: 'wait', input: 'r.jsonl.gz', timeout: 30 }, expected: { manifest: 'r.batch.json', timeoutSeconds: 30 } },
    { argv: { action: 'download', input: 'r.jsonl', output: 'o.jsonl', resume: true }, expected: { output: 'o.jsonl', resume: true } },
    { argv: { action: 'status', input: 'r.jsonl', wait: true }, error: /--wait applies to `batch submit`, not `batch status`/ },
    { argv: { action: 'download', input: 'r.jsonl', resume: true, overwrite: true }, error: /cannot be used together/ },
    { argv: { action: 'status', input: 'r.jsonl', simulate: true }, error: /oai-batch simulate/ },
    { argv: { action: 'submit', input: 'r.jsonl', 'max-requests-per-part': 50_001 }, error: /from 1 to 50000/ },
    { argv: { action: 'submit', input: '-' }, error: /not stdin/ },
    { argv: { action: 'submit', input: 'r.jsonl', endpoint: '/v1/images' }, error: /Expected `endpoint`/ },
  ];
  for (const { argv, expected, error } of cases) {
    it(`${JSON.stringify(argv)} → ${error ? 'error' : JSON.stringify(expected)}`, () => {
      const args = { endpoint: '/v1/chat/completions', 'max-line-bytes': 1024, 'max-requests-per-part': 50_000, 'poll-interval': 5, format: 'table', ...argv };
      if (error) expect(() => batchOptionsFromArgs(args, io)).toThrow(error);
      else expect(batchOptionsFromArgs(args, io)).toMatchObject(expected!);
    });
  }
});
