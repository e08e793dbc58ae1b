// export: results joined back to the input in input order, JSONL and CSV,
// after real runs against the simulator; the CLI as a child process.

import { exportCommand } from '../src/cli/export.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { exportResults, outputOf, csvLine, type ExportRow, type ExportReport } from '../src/commands/export.js';
import { runBatch } from '../src/pipeline/run.js';
import type { RunOptions } from '../src/pipeline/options.js';
import type { ResultRecord } from '../src/shared/types.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';
import { runCli } from './support/cli.js';
import { readJsonl, tempDir, writeJsonl } from './support/files.js';
import { optionsOf } from './support/argv.js';

const prices = loadPriceTable();
const KEY = 'sk-export-test-key';
let dir: Awaited<ReturnType<typeof tempDir>>;
let sim: Simulator;

beforeEach(async () => {
  dir = await tempDir();
  sim = await startSimulator({ apiKey: KEY });
});
afterEach(async () => {
  await sim.close();
  await dir.remove();
});

function run(input: string, extra: Partial<RunOptions> = {}): ReturnType<typeof runBatch> {
  const stem = input.replace(/\.jsonl$/, '');
  return runBatch({
    input,
    output: `${stem}.results.jsonl`,
    errors: `${stem}.errors.jsonl`,
    summary: `${stem}.summary.json`,
    transport: { baseUrl: sim.url, apiKey: KEY },
    prices,
    timeoutMs: 10_000,
    ...extra,
  });
}

async function exportRows(input: string, format: 'jsonl' | 'csv' = 'jsonl', files: { results?: string; errors?: string | null } = {}): Promise<{ text: string; report: ExportReport }> {
  const stem = input.replace(/\.jsonl$/, '');
  let text = '';
  const report = await exportResults(
    { input, results: files.results ?? `${stem}.results.jsonl`, errors: files.errors === undefined ? `${stem}.errors.jsonl` : files.errors, format },
    async (chunk) => {
      text += chunk;
    },
  );
  return { text, report };
}

const rowsOf = (text: string): ExportRow[] => text.trim().split('\n').map((line) => JSON.parse(line) as ExportRow);

/** Every kind of line: chat (with metadata), responses, embeddings, completions, a bad line, an API failure. */
const MIXED: unknown[] = [
  { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Capital of France?' }], max_tokens: 30, metadata: { row: 1 } },
  { custom_id: 'r-2', method: 'POST', url: '/v1/responses', body: { model: 'gpt-5-mini', input: 'Say hi, "politely", please.', max_output_tokens: 40 } },
  { custom_id: 'e-3', method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'vector me', dimensions: 256 } },
  '{"broken": ',
  { custom_id: 'c-5', method: 'POST', url: '/v1/completions', body: { model: 'gpt-3.5-turbo-instruct', prompt: 'Roses are red,\nviolets', max_tokens: 10 } },
  { model: 'nonexistent-model', messages: [{ role: 'user', content: 'anyone?' }], max_tokens: 5 },
  { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'last one' }], max_tokens: 5 },
];

describe('exportResults', () => {
  it('joins each input line to its result in input order, with the answer text, tokens and cost pulled out', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);
    await run(input, { concurrency: 8 });
    const results = new Map((await readJsonl<ResultRecord>(dir.file('mixed.results.jsonl'))).map((r) => [r.line, r]));

    const { text, report } = await exportRows(input);
    const rows = rowsOf(text);

    expect(rows.map((r) => [r.line, r.custom_id, r.status])).toEqual([
      [1, 'line-1', 'succeeded'],
      [2, 'r-2', 'succeeded'],
      [3, 'e-3', 'succeeded'],
      [4, 'line-4', 'failed'],
      [5, 'c-5', 'succeeded'],
      [6, 'line-6', 'failed'],
      [7, 'line-7', 'succeeded'],
    ]);
    expect(report).toEqual({ lines: 7, succeeded: 5, failed: 2, pending: 0, mismatched: 0, unplaced: 0, unreadable: 0 });

    const chat = rows[0]!;
    const chatBody = results.get(1)!.response.body as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number; completion_tokens: number } };
    expect(chat).toMatchObject({
      endpoint: '/v1/chat/completions',
      model: 'gpt-4o-mini-2024-07-18',
      input: 'Capital of France?',
      output: chatBody.choices[0]!.message.content,
      input_tokens: chatBody.usage.prompt_tokens,
      output_tokens: chatBody.usage.completion_tokens,
      cost_usd: results.get(1)!.cost_usd,
      metadata: { row: 1 },
      error_code: null,
    });
    // The responses API's text is every output_text part of every output item.
    const responseBody = results.get(2)!.response.body as { output: Array<{ content?: Array<{ type: string; text: string }> }> };
    const responseText = responseBody.output.flatMap((o) => o.content ?? []).filter((c) => c.type === 'output_text').map((c) => c.text).join('');
    expect(rows[1]).toMatchObject({ output: responseText, input: 'Say hi, "politely", please.', model: 'gpt-5-mini-2025-08-07' });
    expect(rows[1]!.reasoning_tokens).toBeGreaterThan(0);
    expect(rows[2]).toMatchObject({ output: null, embedding_dimensions: 256, output_tokens: 0 });
    expect(rows[3]).toMatchObject({ error_code: 'invalid_json', input: null, output: null, cost_usd: null });
    expect(rows[4]!.output).toMatch(/^\[sim:[0-9a-f]+\]/);
    expect(rows[5]).toMatchObject({ status: 'failed', error_code: 'model_not_found', attempts: 1 });
  });

  it('keeps input order however the results file is ordered, and marks lines not yet run as pending', async () => {
    const input = dir.file('twenty.jsonl');
    const lines = Array.from({ length: 20 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `q${i + 1}` }], max_tokens: 8 }));
    await writeJsonl(input, lines);
    await run(input, { limit: 15, concurrency: 8 });
    // Reverse the results file: completion order must not matter.
    const path = dir.file('twenty.results.jsonl');
    const resultLines = (await readFile(path, 'utf8')).trim().split('\n');
    await writeFile(path, resultLines.reverse().join('\n') + '\n');

    const { text, report } = await exportRows(input);
    const rows = rowsOf(text);

    expect(rows.map((r) => r.line)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(rows.map((r) => r.input)).toEqual(lines.map((l) => l.messages[0]!.content));
    expect(rows.filter((r) => r.status === 'succeeded').map((r) => r.line)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(rows.slice(15).every((r) => r.status === 'pending' && r.output === null && r.model === 'gpt-4o-mini')).toBe(true);
    expect(report).toMatchObject({ succeeded: 15, pending: 5 });
  });

  it('joins every record of a results file larger than one read block, whether read in runs or one by one', async () => {
    const input = dir.file('long.jsonl');
    await writeJsonl(input, Array.from({ length: 400 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `long ${i}` }], max_tokens: 30, metadata: { note: 'x'.repeat(1500) } })));
    await run(input, { concurrency: 32 });
    const path = dir.file('long.results.jsonl');
    const records = await readJsonl<ResultRecord>(path);
    expect((await readFile(path)).length).toBeGreaterThan(2 * 256 * 1024);
    const textOf = new Map(records.map((r) => [r.line, (r.response.body as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content]));

    const inOrder = rowsOf((await exportRows(input)).text);
    // Every other record swapped with its neighbour: half the reads are backwards.
    const lines = (await readFile(path, 'utf8')).trim().split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
    await writeFile(path, lines.join('\n') + '\n');
    const swapped = rowsOf((await exportRows(input)).text);

    for (const rows of [inOrder, swapped]) {
      expect(rows.map((r) => r.line)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
      expect(rows.every((r) => r.status === 'succeeded' && r.output === textOf.get(r.line))).toBe(true);
    }
  });

  it('reads a .gz results file and skips a torn last line', async () => {
    const input = dir.file('zipped.jsonl');
    await writeJsonl(input, Array.from({ length: 5 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `z${i}` }], max_tokens: 8 })));
    await run(input, { output: dir.file('zipped.results.jsonl.gz') });

    const zipped = await exportRows(input, 'jsonl', { results: dir.file('zipped.results.jsonl.gz') });
    expect(zipped.report).toMatchObject({ succeeded: 5, pending: 0 });
    // A crash can cut the gzip stream short: what decompresses is still exported.
    const gz = await readFile(dir.file('zipped.results.jsonl.gz'));
    await writeFile(dir.file('cut.results.jsonl.gz'), gz.subarray(0, gz.length - 40));
    const cut = await exportRows(input, 'jsonl', { results: dir.file('cut.results.jsonl.gz') });
    expect(cut.report.lines).toBe(5);
    expect(cut.report.succeeded + cut.report.pending).toBe(5);
    expect(cut.report.succeeded).toBeGreaterThan(0);

    // A crash mid-write leaves half a line: it is not a record.
    await run(input, { overwrite: true });
    await writeFile(dir.file('zipped.results.jsonl'), (await readFile(dir.file('zipped.results.jsonl'), 'utf8')) + '{"id":"oaib_req_torn","custom_id":"line-');
    const torn = await exportRows(input);
    expect(torn.report).toMatchObject({ succeeded: 5, unreadable: 1 });
  });

  it('does not join records to lines whose custom_id changed since the run', async () => {
    const input = dir.file('moved.jsonl');
    const line = (i: number): Record<string, unknown> => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `m${i}` }], max_tokens: 8 });
    await writeJsonl(input, [line(1), line(2), line(3)]);
    await run(input);
    // Batch-form lines with their own custom_ids now sit where line-1..3 were.
    await writeJsonl(input, [1, 2, 3].map((i) => ({ custom_id: `own-${i}`, method: 'POST', url: '/v1/chat/completions', body: line(i) })));

    const { text, report } = await exportRows(input);

    expect(rowsOf(text).map((r) => r.status)).toEqual(['pending', 'pending', 'pending']);
    expect(report.mismatched).toBe(3);
  });

  it('writes RFC 4180 CSV: a header, CRLF line ends, fields with commas, quotes and line breaks quoted', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);
    await run(input, { concurrency: 8 });

    const csv = (await exportRows(input, 'csv')).text;
    const json = rowsOf((await exportRows(input, 'jsonl')).text);
    const table = parseCsv(csv);

    expect(csv.endsWith('\r\n')).toBe(true);
    expect(table[0]).toEqual(Object.keys(json[0]!));
    expect(table).toHaveLength(1 + MIXED.length);
    for (const [index, row] of json.entries()) {
      const cells = table[index + 1]!;
      const byColumn = Object.fromEntries(table[0]!.map((name, i) => [name, cells[i]]));
      expect(byColumn.custom_id).toBe(row.custom_id);
      expect(byColumn.input).toBe(row.input ?? '');
      expect(byColumn.output).toBe(row.output ?? '');
      expect(byColumn.error_message).toBe(row.error_message ?? '');
      expect(byColumn.metadata).toBe(row.metadata === null ? '' : JSON.stringify(row.metadata));
      expect(byColumn.cost_usd === '' ? null : Number(byColumn.cost_usd)).toBe(row.cost_usd);
      expect(byColumn.cost_usd).not.toMatch(/e/i);
    }
    // The completions prompt holds a line break, the responses input quotes and commas.
    expect(table[5]![5]).toBe('Roses are red,\nviolets');
    expect(csv).toContain('"Say hi, ""politely"", please."');
  });
});

describe('outputOf', () => {
  it.each([
    ['chat content parts, choices joined', { object: 'chat.completion', choices: [{ message: { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] } }, { message: { content: 'c' } }] }, 'ab\n\nc', null],
    ['a chat refusal', { object: 'chat.completion', choices: [{ message: { content: null, refusal: 'no' } }] }, 'no', null],
    ['chat tool calls as JSON', { object: 'chat.completion', choices: [{ message: { content: null, tool_calls: [{ id: 't' }] } }] }, '[{"id":"t"}]', null],
    ['responses output_text parts only', { object: 'response', output: [{ type: 'reasoning', summary: [] }, { type: 'message', content: [{ type: 'output_text', text: 'x' }, { type: 'refusal', refusal: 'r' }, { type: 'output_text', text: 'y' }] }] }, 'xy', null],
    ['completions text', { object: 'text_completion', choices: [{ text: 'once' }] }, 'once', null],
    ['embedding dimensions', { object: 'list', data: [{ embedding: [0.1, 0.2, 0.3] }] }, null, 3],
    ['base64 embedding dimensions', { object: 'list', data: [{ embedding: Buffer.from(new Float32Array(8).buffer).toString('base64') }] }, null, 8],
    ['moderation verdicts', { results: [{ flagged: true }, { flagged: false }] }, 'flagged\nnot flagged', null],
  ])('pulls out %s', (_name, body, text, dimensions) => {
    expect(outputOf(body)).toEqual({ text, embeddingDimensions: dimensions });
  });
});

describe('csvLine', () => {
  it.each([
    [['plain', '1'], 'plain,1\r\n'],
    [['a,b', 'say "hi"', 'two\nlines', 'cr\r'], '"a,b","say ""hi""","two\nlines","cr\r"\r\n'],
    [['', ' spaced '], ', spaced \r\n'],
  ])('quotes %j as RFC 4180 asks', (fields, line) => {
    expect(csvLine(fields)).toBe(line);
  });
});

describe('oai-batch export (CLI)', () => {
  it('writes the CSV file given with -o and reports the counts on stderr', async () => {
    const input = dir.file('mixed.jsonl');
    await writeJsonl(input, MIXED);
    await run(input, { concurrency: 8 });

    const cli = await runCli(['export', input, '--format', 'csv', '-o', dir.file('out.csv')]);

    expect(cli.code).toBe(0);
    expect(cli.stdout).toBe('');
    expect(cli.stderr).toContain('exported 7 lines: 5 succeeded, 2 failed, 0 pending');
    expect(parseCsv(await readFile(dir.file('out.csv'), 'utf8'))).toHaveLength(8);
  });

  it('exits 1 when there are no results to export', async () => {
    const input = dir.file('never-run.jsonl');
    await writeJsonl(input, [MIXED[0]]);

    const cli = await runCli(['export', input]);

    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('no results to export');
  });
});

/** A strict RFC 4180 reader: CRLF records, quoted fields with doubled quotes and embedded line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"' && text[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (text[i] === '"') {
          i += 1;
          break;
        } else {
          field += text[i];
          i += 1;
        }
      }
    }
    if (text.startsWith('\r\n', i)) {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else if (text[i] === ',') {
      record.push(field);
      field = '';
      i += 1;
    } else if (i < text.length) {
      if (text[i] === '"' || text[i] === '\n' || text[i] === '\r') throw new Error(`bare ${JSON.stringify(text[i])} at ${i}`);
      field += text[i];
      i += 1;
    }
  }
  if (field !== '' || record.length > 0) throw new Error('last record without CRLF');
  return records;
}

describe('export: argv → options', () => {
  it.each([
    [
      ['export', 'runs/in.jsonl'],
      { export: { input: 'runs/in.jsonl', endpoint: '/v1/chat/completions', maxLineBytes: 8 * 1024 * 1024, results: 'runs/in.results.jsonl', errors: 'runs/in.errors.jsonl', format: 'jsonl' }, output: undefined },
    ],
    [
      ['export', '-', '--results', 'r.jsonl.gz', '--errors', 'e.jsonl', '--format', 'csv', '-o', 'out.csv'],
      { export: { input: '-', endpoint: '/v1/chat/completions', maxLineBytes: 8 * 1024 * 1024, results: 'r.jsonl.gz', errors: 'e.jsonl', format: 'csv' }, output: 'out.csv' },
    ],
  ])('%j', (argv, expected) => {
    expect(optionsOf(exportCommand, argv)).toEqual(expected);
  });

  it('needs --results and --errors to export stdin', () => {
    expect(() => optionsOf(exportCommand, ['export', '-'])).toThrow('exporting stdin (-) needs --results and --errors');
  });
});
