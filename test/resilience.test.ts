// Never lose a request, never pay twice: the CLI as a real child process,
// killed with SIGKILL and SIGINT at random moments, resumed, against a
// simulator that counts how often it answered each request.

import { describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { requestDigest, type Simulator } from '../src/sim/server.js';
import type { ErrorRecord, ResultRecord, Summary } from '../src/shared/types.js';
import { runCli, startCli } from './support/cli.js';
import { batchLine, chatLine, readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-resilience-test-key-0123456789';
const { dir, simulator } = perTestFixture(KEY);


function env(s: Simulator): Record<string, string> {
  return { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url };
}

/** Bare chat lines whose bodies are all different. */
function lines(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => chatLine(i + 1, { metadata: { row: i + 1 } }));
}

function digestOf(line: Record<string, unknown>): string {
  const { metadata: _m, ...body } = line;
  return requestDigest(JSON.stringify('body' in line ? line.body : body));
}

/** Success records per custom_id in the results file. */
async function successCounts(path: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const r of await readJsonl<ResultRecord>(path)) {
    if (r.response?.status_code === 200) counts.set(r.custom_id, (counts.get(r.custom_id) ?? 0) + 1);
  }
  return counts;
}

async function linesOnDisk(path: string): Promise<number> {
  try {
    const bytes = await readFile(path);
    let n = 0;
    for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) n += 1;
    return n;
  } catch {
    return 0;
  }
}

/** Complete result lines only (a kill may leave a torn last line). */
async function successIdsOnDisk(path: string): Promise<Set<string>> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return new Set();
  }
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return new Set(
    complete
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => (JSON.parse(l) as ResultRecord).custom_id),
  );
}

describe('crash safety and resume', () => {
  it('repeated SIGKILL and --resume end with exactly one success per line, paying twice only for requests in flight', async () => {
    const s = await simulator({ latencyMs: 25 });
    const input = dir.file('big.jsonl');
    const all = lines(3000);
    await writeJsonl(input, all);
    const results = dir.file('big.results.jsonl');
    const concurrency = 24;
    const digests = all.map(digestOf);
    const kills = 5;

    for (let cycle = 0; cycle < kills; cycle++) {
      const onDisk = await successIdsOnDisk(results);
      const answeredBefore = { ...s.stats().answered };
      const args = ['run', input, '--concurrency', String(concurrency), '--quiet', cycle === 0 ? '--overwrite' : '--resume'];
      const { child, done } = startCli(args, { env: env(s) });
      // Kill at a random moment while results are being written (start-up time varies with load).
      const target = onDisk.size + 150 + Math.floor(Math.random() * 300);
      let exited = false;
      void done.then(() => (exited = true));
      while (!exited && (await linesOnDisk(results)) < target) await sleep(20);
      await sleep(Math.floor(Math.random() * 40));
      child.kill('SIGKILL');
      const result = await done;
      expect(result.signal === 'SIGKILL' || result.code === 0).toBe(true);
      // Nothing that had a success on disk before this cycle was sent again.
      const answeredAfter = s.stats().answered;
      for (const id of onDisk) {
        const digest = digests[Number(id.slice('line-'.length)) - 1] as string;
        expect(answeredAfter[digest]).toBe(answeredBefore[digest]);
      }
    }
    const last = await runCli(['run', input, '--concurrency', String(concurrency), '--quiet', '--resume'], { env: env(s) });
    expect(last.code).toBe(0);

    const counts = await successCounts(results);
    expect(counts.size).toBe(3000);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const stats = s.stats();
    const billedTwice = Object.values(stats.answered).reduce((sum, n) => sum + Math.max(0, n - 1), 0);
    expect(billedTwice).toBeLessThanOrEqual(concurrency * kills);
    const summary = await readJson<Summary>(dir.file('big.summary.json'));
    expect(summary.requests).toMatchObject({ total: 3000, succeeded: 3000, failed: 0, pending: 0 });
    expect(summary.requests.skipped).toBeGreaterThan(0);
  }, 120_000);

  it('SIGINT drains what is in flight, writes every paid-for answer, and exits 3', async () => {
    const s = await simulator({ latencyMs: 400 });
    const input = dir.file('int.jsonl');
    await writeJsonl(input, lines(400));
    const { child, done } = startCli(['run', input, '--concurrency', '20', '--quiet'], { env: env(s) });
    while (s.stats().requests < 60) await sleep(20);
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(3);
    const summary = await readJson<Summary>(dir.file('int.summary.json'));
    expect(summary.stopped_reason).toBe('interrupted');
    const paid = Object.values(s.stats().answered).reduce((a, b) => a + b, 0);
    const onDisk = await readJsonl<ResultRecord>(dir.file('int.results.jsonl'));
    expect(onDisk.length).toBe(paid);
    expect(summary.requests.succeeded).toBe(paid);
    expect(summary.requests.total).toBe(400);
    expect(summary.requests.pending).toBe(400 - paid);

    const resumed = await runCli(['run', input, '--resume', '--quiet'], { env: env(s) });
    expect(resumed.code).toBe(0);
    expect((await successCounts(dir.file('int.results.jsonl'))).size).toBe(400);
    expect(s.stats().duplicates).toBe(0);
  }, 60_000);

  it('a second SIGINT exits at once, keeping what is done', async () => {
    const s = await simulator({ latencyMs: 20_000 });
    const input = dir.file('twice.jsonl');
    await writeJsonl(input, lines(50));
    const { child, done } = startCli(['run', input, '--concurrency', '10', '--quiet'], { env: env(s) });
    // Signal only once it is sending (its handlers are in place by then).
    while (s.stats().inFlight < 1) await sleep(20);
    child.kill('SIGINT');
    await sleep(300);
    const before = Date.now();
    child.kill('SIGINT');
    const result = await done;
    // Far sooner than the 20 s answers or the 30 s drain timeout (generous for a loaded CI machine).
    expect(Date.now() - before).toBeLessThan(8000);
    expect(result.code).toBe(3);
    const summary = await readJson<Summary>(dir.file('twice.summary.json'));
    expect(summary.stopped_reason).toBe('interrupted');
    expect(summary.requests.pending).toBe(50);
  }, 60_000);

  it('refuses to resume a line-N keyed input that changed, unless --force', async () => {
    const s = await simulator();
    const input = dir.file('edit.jsonl');
    const original = lines(10);
    await writeJsonl(input, original.slice(0, 5));
    expect((await runCli(['run', input, '--quiet'], { env: env(s) })).code).toBe(0);
    // A line inserted at the top: every line-N key would now point at another request.
    await writeJsonl(input, [chatLine(99), ...original.slice(0, 5)]);
    const refused = await runCli(['run', input, '--resume', '--quiet'], { env: env(s) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/changed since .* line number.*--force/s);
    expect(s.stats().requests).toBe(5);
    const forced = await runCli(['run', input, '--resume', '--force', '--quiet'], { env: env(s) });
    expect(forced.code).toBe(0);
  }, 60_000);

  it('resumes an edited input whose lines carry their own custom_ids', async () => {
    const s = await simulator();
    const input = dir.file('ids.jsonl');
    await writeJsonl(input, [batchLine('a', 1), batchLine('b', 2)]);
    expect((await runCli(['run', input, '--quiet'], { env: env(s) })).code).toBe(0);
    await writeJsonl(input, [batchLine('c', 3), batchLine('a', 1), batchLine('b', 2)]);
    const resumed = await runCli(['run', input, '--resume', '--quiet'], { env: env(s) });
    expect(resumed.code).toBe(0);
    expect(s.stats().requests).toBe(3);
    const summary = await readJson<Summary>(dir.file('ids.summary.json'));
    expect(summary.requests).toMatchObject({ total: 3, succeeded: 3, skipped: 2 });
  }, 60_000);

  it('cuts a torn last line away on resume and sends that request again', async () => {
    const s = await simulator();
    const input = dir.file('torn.jsonl');
    await writeJsonl(input, lines(6));
    expect((await runCli(['run', input, '--quiet'], { env: env(s) })).code).toBe(0);
    const results = dir.file('torn.results.jsonl');
    const text = await readFile(results, 'utf8');
    const cut = text.slice(0, text.length - 40); // the last record loses its tail and its newline
    await writeFile(results, cut);
    const resumed = await runCli(['run', input, '--resume', '--quiet'], { env: env(s) });
    expect(resumed.code).toBe(0);
    const counts = await successCounts(results);
    expect(counts.size).toBe(6);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const summary = await readJson<Summary>(dir.file('torn.summary.json'));
    expect(summary.warnings.join(' ')).toMatch(/torn/);
  }, 60_000);

  it('a file with one bad line in seven runs everything else and lists each bad line by number (exit 2)', async () => {
    const s = await simulator();
    const input = dir.file('seven.jsonl');
    const content: unknown[] = [];
    const bad: number[] = [];
    for (let i = 1; i <= 70; i++) {
      if (i % 7 === 0) {
        bad.push(i);
        content.push(['{broken', { model: 'gpt-4o-mini' }, [1], { messages: [] }][i % 4] as unknown);
      } else {
        content.push(chatLine(i));
      }
    }
    await writeJsonl(input, content);
    const result = await runCli(['run', input, '--quiet'], { env: env(s) });
    expect(result.code).toBe(2);
    const errors = await readJsonl<ErrorRecord>(dir.file('seven.errors.jsonl'));
    expect(errors.map((e) => e.line).sort((a, b) => a - b)).toEqual(bad);
    expect((await readJsonl(dir.file('seven.results.jsonl'))).length).toBe(60);
  }, 60_000);
});

describe('secrets', () => {
  it('never writes the API key to any output, log line, error record or summary', async () => {
    const s = await simulator({ faults: { '500': 0.3, hang: 0.1 }, faultsEveryAttempt: true, hangMs: 10_000 });
    const input = dir.file('sec.jsonl');
    await writeJsonl(input, lines(30));
    const runs = [
      await runCli(['run', input, '--timeout', '0.5', '--max-attempts', '2'], { env: env(s) }),
      await runCli(['run', input, '--timeout', '0.5', '--overwrite'], { env: { ...env(s), OPENAI_API_KEY: `${KEY}-wrong` } }),
      await runCli(['run', input, '--timeout', '0.5', '--overwrite', '--log-format', 'json'], { env: env(s) }),
    ];
    const texts = runs.flatMap((r) => [r.stdout, r.stderr]);
    for (const name of ['sec.results.jsonl', 'sec.errors.jsonl', 'sec.summary.json']) {
      texts.push(await readFile(dir.file(name), 'utf8').catch(() => ''));
    }
    expect(runs[1]?.code).toBe(1);
    for (const text of texts) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(KEY.slice(3, 20));
    }
  }, 60_000);
});
