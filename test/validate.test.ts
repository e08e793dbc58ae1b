// validate and run --dry-run: every input problem by line and code, counts
// per endpoint and model, nothing sent. The CLI as a child process for the
// exit codes; the simulator only to prove that nothing reached it.

import { validateCommand } from '../src/cli/validate.js';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { validateInput, type ValidationReport } from '../src/commands/validate.js';
import { estimateInput } from '../src/commands/estimate.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { fileURLToPath } from 'node:url';
import type { InputProblem } from '../src/shared/types.js';
import { runCli } from './support/cli.js';
import { chatLine, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { optionsOf } from './support/argv.js';

const { dir, simulator } = perTestFixture(null);

const embedding = (id: string): Record<string, unknown> => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/embeddings',
  body: { model: 'text-embedding-3-small', input: `text ${id}` },
});

/** One line of each problem code, between valid lines of two endpoints and three models. */
const MIXED = [
  chatLine(1), // 1 gpt-4.1-mini
  '{"model": "gpt-4o-mini", "messages": [', // 2 invalid_json
  '"just a string"', // 3 not_an_object
  { messages: [{ role: 'user', content: 'no model' }] }, // 4 missing_model
  { custom_id: 'b1', method: 'POST', url: '/v1/chat/completions', body: 'not an object' }, // 5 invalid_body
  { custom_id: 'b2', method: 'GET', url: '/v1/chat/completions', body: {} }, // 6 unsupported_endpoint
  embedding('e1'), // 7
  embedding('e1'), // 8 duplicate_custom_id
  { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(600) }] }, // 9 line_too_long at 512 bytes
  { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }, // 10 stream_not_supported
  '', // 11 blank: skipped, not counted
  chatLine(2), // 12 gpt-4o-mini
  chatLine(4), // 13 gpt-4o-mini
];

const EXPECTED_PROBLEMS: Array<[number, string]> = [
  [2, 'invalid_json'],
  [3, 'not_an_object'],
  [4, 'missing_model'],
  [5, 'invalid_body'],
  [6, 'unsupported_endpoint'],
  [8, 'duplicate_custom_id'],
  [9, 'line_too_long'],
  [10, 'stream_not_supported'],
];

describe('validateInput', () => {
  it('hands out every problem in line order with its code and counts the valid lines per endpoint and model', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);
    const problems: InputProblem[] = [];

    const report = await validateInput({ input, maxLineBytes: 512 }, { onProblem: (p) => void problems.push(p) });

    expect(problems.map((p) => [p.line, p.code])).toEqual(EXPECTED_PROBLEMS);
    expect(problems.every((p) => p.message.startsWith(`line ${p.line}: `))).toBe(true);
    expect(report).toEqual<ValidationReport>({
      input,
      lines: 12,
      valid: 4,
      problems: 8,
      problemCounts: {
        invalid_json: 1,
        not_an_object: 1,
        missing_model: 1,
        invalid_body: 1,
        unsupported_endpoint: 1,
        duplicate_custom_id: 1,
        line_too_long: 1,
        stream_not_supported: 1,
      },
      byEndpoint: {
        '/v1/chat/completions': { 'gpt-4.1-mini': 1, 'gpt-4o-mini': 2 },
        '/v1/embeddings': { 'text-embedding-3-small': 1 },
      },
    });
  });

  it('reads only the first N non-blank lines with --limit', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);

    const report = await validateInput({ input, limit: 3 });

    expect([report.lines, report.valid, report.problems]).toEqual([3, 1, 2]);
  });

  it('reads stdin and uses --endpoint for bare-form lines', async () => {
    const text = [{ model: 'text-embedding-3-large', input: 'a' }, { model: 'text-embedding-3-large', input: 'b' }].map((l) => JSON.stringify(l)).join('\n');

    const report = await validateInput({ input: '-', stdin: Readable.from([Buffer.from(text)]), endpoint: '/v1/embeddings' });

    expect(report.byEndpoint).toEqual({ '/v1/embeddings': { 'text-embedding-3-large': 2 } });
  });
});

describe('oai-batch validate (CLI)', () => {
  it('prints one line per problem and exits 2', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);

    const run = await runCli(['validate', input, '--max-line-bytes', '512']);

    expect(run.code).toBe(2);
    const problemLines = run.stdout.split('\n').filter((line) => line.startsWith('line '));
    expect(problemLines.map((line) => /^line (\d+): (\w+): /.exec(line)?.slice(1))).toEqual(EXPECTED_PROBLEMS.map(([n, code]) => [String(n), code]));
    expect(problemLines[0]).toMatch(/^line 2: invalid_json: not valid JSON/);
    expect(run.stdout).toMatch(/^\/v1\/chat\/completions\s+gpt-4o-mini\s+2$/m);
    expect(run.stdout).toContain(`${input}: 12 lines, 4 valid, 8 with problems`);
  });

  it('exits 0 on a clean file and prints the counts', async () => {
    const input = dir.file('clean.jsonl');
    await writeJsonl(input, [chatLine(1), chatLine(2)]);

    const run = await runCli(['validate', input]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${input}: 2 lines, 2 valid, no problems`);
  });

  it('prints one JSON document with --format json', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);

    const run = await runCli(['validate', input, '--max-line-bytes', '512', '--format', 'json']);

    expect(run.code).toBe(2);
    const report = JSON.parse(run.stdout) as { problems: Array<{ line: number; code: string; custom_id: string }>; valid: number; problem_count: number; by_endpoint: unknown };
    expect(report.problems.map((p) => [p.line, p.code])).toEqual(EXPECTED_PROBLEMS);
    expect(report.problems.find((p) => p.line === 8)?.custom_id).toBe('e1');
    expect([report.valid, report.problem_count]).toEqual([4, 8]);
    expect(report.by_endpoint).toEqual({
      '/v1/chat/completions': { 'gpt-4.1-mini': 1, 'gpt-4o-mini': 2 },
      '/v1/embeddings': { 'text-embedding-3-small': 1 },
    });
  });

  it('reads the input from stdin given as -', async () => {
    const run = await runCli(['validate', '-'], { stdin: [JSON.stringify(chatLine(1)), 'oops', ''].join('\n') });

    expect(run.code).toBe(2);
    expect(run.stdout).toContain('line 2: invalid_json:');
    expect(run.stdout).toContain('-: 2 lines, 1 valid, 1 with problems');
  });

  it('exits 1 with one clear line when the input does not exist', async () => {
    const run = await runCli(['validate', dir.file('missing.jsonl')]);

    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(`oai-batch: cannot read input ${dir.file('missing.jsonl')}: no such file`);
  });
});

describe('a body that does not fit its endpoint', () => {
  const sample = (name: string): string => fileURLToPath(new URL(`../samples/${name}`, import.meta.url));

  it('validate reports samples/embeddings.jsonl against the chat endpoint as invalid_body on every line, with the flag to use', async () => {
    const run = await runCli(['validate', sample('embeddings.jsonl')]);

    expect(run.code).toBe(2);
    const problems = run.stdout.split('\n').filter((line) => line.startsWith('line '));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toBe(
      'line 1: invalid_body: no "messages" (/v1/chat/completions requires "messages"): the body looks like a /v1/embeddings request, use --endpoint /v1/embeddings',
    );
    for (const line of problems) expect(line).toMatch(/^line \d+: invalid_body: .*use --endpoint \/v1\/embeddings$/);
    expect(run.stdout).toContain(`0 valid, ${problems.length} with problems`);
  });

  it.each([
    ['chat.jsonl', []],
    ['batch.jsonl', []],
    ['responses.jsonl', []],
    ['embeddings.jsonl', ['--endpoint', '/v1/embeddings']],
  ])('validate still passes samples/%s %j', async (name, flags) => {
    const run = await runCli(['validate', sample(name), ...flags]);

    expect(run.stdout).toContain('no problems');
    expect(run.code).toBe(0);
  });

  it('run --dry-run and estimate see the same problem before anything is sent', async () => {
    const sim = await simulator();
    const dry = await runCli(['run', sample('embeddings.jsonl'), '--dry-run', '--base-url', sim.url], { env: { OPENAI_API_KEY: 'sk-dry-run' } });
    expect(dry.code).toBe(2);
    expect(dry.stdout).toMatch(/^line 1: invalid_body: .*use --endpoint \/v1\/embeddings$/m);
    expect(sim.stats().requests).toBe(0);

    const { estimate, report } = await estimateInput({ input: sample('embeddings.jsonl') }, { prices: loadPriceTable() });
    expect(report.problemCounts).toEqual({ invalid_body: report.lines });
    expect([estimate.requests, estimate.problems]).toEqual([0, report.lines]);
  });
});

describe('oai-batch run --dry-run (CLI)', () => {
  it('validates and estimates with run’s flags, sends nothing and writes no results', async () => {
    const sim = await simulator();
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);

    const run = await runCli(['run', input, '--dry-run', '--max-line-bytes', '512', '--rpm', '60', '--base-url', sim.url], { env: { OPENAI_API_KEY: 'sk-dry-run' } });

    expect(run.code).toBe(2);
    expect(run.stdout).toContain('line 9: line_too_long:');
    expect(run.stdout).toMatch(/^gpt-4o-mini\s+2\s+/m);
    expect(run.stdout).toContain('dry run: nothing was sent');
    expect(sim.stats().requests).toBe(0);
    expect(existsSync(dir.file('mixed.results.jsonl'))).toBe(false);
  });

  it('exits 1 under --max-cost when a model has no price, as the run would', async () => {
    const input = dir.file('unpriced.jsonl');
    await writeFile(input, JSON.stringify({ model: 'house-model-7', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }) + '\n');

    const run = await runCli(['run', input, '--dry-run', '--max-cost', '1']);

    expect(run.code).toBe(1);
    expect(run.stdout).toContain('--max-cost needs a price for every model, and house-model-7 has none');
  });
});

describe('validate: argv → options', () => {
  it.each([
    [['validate', 'in.jsonl'], { scan: { input: 'in.jsonl', endpoint: '/v1/chat/completions', maxLineBytes: 8 * 1024 * 1024 }, format: 'table' }],
    [
      ['validate', '-', '--endpoint', '/v1/embeddings', '--max-line-bytes', '1024', '--limit', '10', '--format', 'json'],
      { scan: { input: '-', endpoint: '/v1/embeddings', maxLineBytes: 1024, limit: 10 }, format: 'json' },
    ],
  ])('%j', (argv, expected) => {
    expect(optionsOf(validateCommand, argv)).toEqual(expected);
  });

  it.each([
    [['validate', 'in.jsonl', '--endpoint', '/v1/images'], 'Expected `endpoint` to be one of'],
    [['validate', 'in.jsonl', '--limit', '0'], 'Expected `limit` to be an integer ≥ 1, got `0`'],
    [['validate', 'in.jsonl', '--format', 'xml'], 'Invalid values'],
  ])('rejects %j', (argv, message) => {
    expect(() => optionsOf(validateCommand, argv)).toThrow(message);
  });
});
