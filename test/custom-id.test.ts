// A bare line's own top-level "custom_id" (DESIGN.md §2): it is the line's
// id, taken out of the body and never sent (the API refuses unknown
// parameters, and so does the simulator), and checked for duplicates — the
// same way in validate, run, export, --resume and the Batch API path. The CLI
// as a child process against a simulator over real HTTP.

import { describe, expect, it } from 'vitest';
import type { ErrorRecord, ResultRecord, Summary } from '../src/shared/types.js';
import { runCli } from './support/cli.js';
import { readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-custom-id-test';
const { dir, simulator } = perTestFixture(KEY);

const ask = (i: number): Record<string, unknown> => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: `Question ${i}` }],
  max_tokens: 20,
});

const LINES = [
  { custom_id: 'ticket-1', ...ask(1), metadata: { row: 1 } },
  { custom_id: 'ticket-2', ...ask(2) },
  ask(3), // no id of its own: line-3
  { custom_id: 'ticket-1', ...ask(4) }, // duplicate of line 1
  { custom_id: 5, ...ask(5) }, // not a string
  { ...ask(6), custom_id: 'ticket-6' },
];

const SENT_IDS = ['ticket-1', 'ticket-2', 'line-3', 'ticket-6'];

describe('a bare line’s own custom_id', () => {
  it('is the id in validate, run, export and --resume, and never reaches the API', { timeout: 60_000 }, async () => {
    const sim = await simulator({ latencyMs: 1 });
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url };
    const input = dir.file('tickets.jsonl');
    await writeJsonl(input, LINES);

    const validate = await runCli(['validate', input, '--format', 'json']);
    expect(validate.code).toBe(2);
    const report = JSON.parse(validate.stdout) as { problems: Array<{ line: number; code: string; custom_id: string }> };
    expect(report.problems.map((p) => [p.line, p.code, p.custom_id])).toEqual([
      [4, 'duplicate_custom_id', 'ticket-1'],
      [5, 'invalid_body', 'line-5'],
    ]);

    const run = await runCli(['run', input, '--quiet'], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(2);
    // Every request the simulator saw was answered: none was refused for an unknown `custom_id` parameter.
    expect(sim.stats().byStatus).toEqual({ '200': 4 });
    const results = await readJsonl<ResultRecord>(dir.file('tickets.results.jsonl'));
    expect(results.map((r) => [r.line, r.custom_id]).sort()).toEqual([
      [1, 'ticket-1'],
      [2, 'ticket-2'],
      [3, 'line-3'],
      [6, 'ticket-6'],
    ]);
    expect(results.find((r) => r.line === 1)?.metadata).toEqual({ row: 1 });
    const errors = await readJsonl<ErrorRecord>(dir.file('tickets.errors.jsonl'));
    expect(errors.map((e) => [e.line, e.custom_id, e.error.code])).toEqual([
      [4, 'ticket-1', 'duplicate_custom_id'],
      [5, 'line-5', 'invalid_body'],
    ]);

    const exported = await runCli(['export', input, '--format', 'jsonl']);
    expect(exported.code).toBe(0);
    const rows = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as { line: number; custom_id: string; status: string });
    expect(rows.map((r) => [r.line, r.custom_id, r.status])).toEqual([
      [1, 'ticket-1', 'succeeded'],
      [2, 'ticket-2', 'succeeded'],
      [3, 'line-3', 'succeeded'],
      [4, 'ticket-1', 'failed'],
      [5, 'line-5', 'failed'],
      [6, 'ticket-6', 'succeeded'],
    ]);

    const resumed = await runCli(['run', input, '--resume', '--quiet'], { env });
    expect(resumed.code).toBe(2);
    const summary = await readJson<Summary>(dir.file('tickets.summary.json'));
    expect(summary.requests).toMatchObject({ total: 6, succeeded: 4, skipped: 4, failed: 2, pending: 0 });
    expect(sim.stats().requests).toBe(4);
  });

  it('is the custom_id of the Batch API line, and is not left in its body', { timeout: 60_000 }, async () => {
    const sim = await simulator({ batch: { stepMs: 30 } });
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url };
    const input = dir.file('batch.jsonl');
    await writeJsonl(input, LINES);

    const submit = await runCli(['batch', 'submit', input, '--download', '--poll-interval', '0.05', '--quiet'], { env });
    expect(submit.code).toBe(2);

    // The simulator validates every batch line's body as the API does: a body with `custom_id` would come back an error.
    const results = await readJsonl<ResultRecord>(dir.file('batch.results.jsonl'));
    expect(results.map((r) => r.custom_id).sort()).toEqual([...SENT_IDS].sort());
    expect(results.every((r) => r.response.status_code === 200 && r.via === 'batch')).toBe(true);
    const errors = await readJsonl<ErrorRecord>(dir.file('batch.errors.jsonl'));
    expect(errors.map((e) => [e.line, e.error.code])).toEqual([
      [4, 'duplicate_custom_id'],
      [5, 'invalid_body'],
    ]);
  });
});
