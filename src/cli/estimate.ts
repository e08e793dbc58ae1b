// `oai-batch estimate <input>`: cost and time of an input before sending it.
//
// Flags → EstimateOptions; one streaming pass (core/estimate.ts); a table or
// JSON on stdout. Sends nothing. Exit 0 (input problems are counted, not
// fatal: `validate` lists them). Also home of the plain column renderer and
// number formats the validate, estimate and compare tables share.

import { readFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { OaiBatchError } from '../core/errors.js';
import type { Argv } from 'yargs';
import type { Estimate, ModelEstimate, Range, RateLimits } from '../core/estimate.js';
import type { InputScanOptions } from '../core/validate.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { choiceFlag, optionalInteger, optionalNumber, optionalString } from './flags.js';
import { fmtDuration, fmtInt } from './progress.js';
import { defaultOutputName } from './run.js';
import { inputScanBuilder, inputScanFromArgs } from './validate.js';

export interface EstimateCliOptions {
  scan: InputScanOptions;
  format: 'table' | 'json';
  expectedOutputTokens: number | undefined;
  limits: RateLimits;
  pricesPath: string | undefined;
  /** Summary of an earlier run whose learned limits time the estimate (default: the input's own summary, if any). */
  summaryPath: string | undefined;
}

export function estimateBuilder(yargs: Argv): Argv {
  return inputScanBuilder(yargs)
    .option('format', { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'table for people, json for scripts' })
    .option('expected-output-tokens', { type: 'number', describe: 'output tokens to expect per request (default: half its output limit)' })
    .option('rpm', { type: 'number', describe: 'requests per minute per model, for the time estimate' })
    .option('tpm', { type: 'number', describe: 'tokens per minute per model, for the time estimate' })
    .option('prices', { type: 'string', describe: 'price table overrides (JSON, see samples/prices.json)' })
    .option('summary', { type: 'string', describe: "an earlier run's summary whose learned limits time the estimate (default: <input>.summary.json)" })
    .example('$0 estimate requests.jsonl', 'cost min / expected / max per model, online and at Batch API prices')
    .example('$0 estimate requests.jsonl --rpm 5000 --tpm 4000000 --format json', 'with the time at your limits, for a script');
}

export function estimateOptionsFromArgs(args: Args): EstimateCliOptions {
  const scan = inputScanFromArgs(args);
  const rpm = optionalNumber(args, 'rpm', 1);
  const tpm = optionalNumber(args, 'tpm', 1);
  return {
    scan,
    format: choiceFlag(args, 'format', ['table', 'json'] as const, 'table'),
    expectedOutputTokens: optionalInteger(args, 'expected-output-tokens', 0),
    limits: { rpm, tpm },
    pricesPath: optionalString(args, 'prices'),
    summaryPath: optionalString(args, 'summary') ?? (scan.input === '-' ? undefined : defaultOutputName(scan.input, 'summary')),
  };
}

export async function executeEstimate(options: EstimateCliOptions, io: CliIO): Promise<number> {
  const [{ estimateInput }, { loadPriceTable }] = await Promise.all([import('../core/estimate.js'), import('../pricing/prices.js')]);
  const prices = loadPriceTable(options.pricesPath);
  const { estimate } = await estimateInput(
    { ...options.scan, stdin: io.stdin },
    {
      prices,
      expectedOutputTokens: options.expectedOutputTokens,
      limits: options.limits,
      learnedLimits: await readLearnedLimits(options.summaryPath),
    },
  );
  await writeText(io.stdout, options.format === 'json' ? JSON.stringify(estimate, null, 2) + '\n' : estimateTable(estimate));
  return 0;
}

/** Learned limits from an earlier run's summary; none when it is absent or unreadable (the estimate then asks for --rpm/--tpm). */
export async function readLearnedLimits(path: string | undefined): Promise<Record<string, RateLimits>> {
  if (path === undefined) return {};
  const { learnedLimitsOf } = await import('../core/estimate.js');
  try {
    return learnedLimitsOf(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return {};
  }
}

/** The estimate as a table: one row per model, a total row, then what the figures assume. */
export function estimateTable(estimate: Estimate): string {
  const head = [
    'model',
    'requests',
    'prompt tokens',
    'output tokens min / expected / max',
    'cost USD min / expected / max',
    'Batch API USD min / expected / max',
    'time',
  ];
  const row = (name: string, m: Pick<ModelEstimate, 'requests' | 'prompt_tokens' | 'output_tokens' | 'cost_usd' | 'batch_cost_usd' | 'time_seconds'>): string[] => [
    name,
    fmtInt(m.requests),
    fmtInt(m.prompt_tokens),
    fmtRange(m.output_tokens, fmtInt),
    m.cost_usd ? fmtRange(m.cost_usd, fmtUsd) : 'unpriced',
    m.batch_cost_usd ? fmtRange(m.batch_cost_usd, fmtUsd) : 'unpriced',
    m.time_seconds === null ? '–' : fmtSeconds(m.time_seconds),
  ];
  const rows = Object.entries(estimate.by_model).map(([model, m]) => row(model, m));
  if (rows.length > 1) {
    rows.push(
      row(estimate.unpriced_models.length > 0 ? 'total (priced models)' : 'total', {
        requests: estimate.requests,
        prompt_tokens: estimate.totals.prompt_tokens,
        output_tokens: estimate.totals.output_tokens,
        cost_usd: estimate.totals.cost_usd,
        batch_cost_usd: estimate.totals.batch_cost_usd,
        time_seconds: estimate.totals.time_seconds,
      }),
    );
  }
  const lines = [
    `${estimate.input}: ${fmtInt(estimate.requests)} requests in ${fmtInt(estimate.lines)} lines` +
      (estimate.problems > 0 ? ` (${fmtInt(estimate.problems)} with problems, not counted: see oai-batch validate)` : '') +
      ` · prices as of ${estimate.pricing.as_of}`,
    '',
    renderColumns(head, rows, [false, true, true, true, true, true, true]),
  ];
  if (estimate.unpriced_models.length > 0) {
    lines.push('', `unpriced (no price in the table; add them with --prices FILE): ${estimate.unpriced_models.join(', ')}`);
  }
  lines.push('', ...estimate.notes.map((note) => `- ${note}`));
  return lines.join('\n') + '\n';
}

function fmtRange(range: Range, format: (n: number) => string): string {
  return `${format(range.min)} / ${format(range.expected)} / ${range.max === null ? 'unbounded' : format(range.max)}`;
}

/** USD with enough digits to be useful at any size, never in exponent form: 12.34, 0.0123, 0.000000600. */
export function fmtUsd(usd: number): string {
  if (usd === 0) return '0';
  if (Math.abs(usd) >= 1) return usd.toFixed(2);
  if (Math.abs(usd) >= 0.01) return usd.toFixed(4);
  // Three significant digits.
  const digits = Math.min(12, 2 - Math.floor(Math.log10(Math.abs(usd))));
  return usd.toFixed(digits);
}

/** A duration from seconds; under a second shows as `<1s`. */
export function fmtSeconds(seconds: number): string {
  return seconds < 1 ? '<1s' : fmtDuration(seconds);
}

/** Plain aligned columns (two spaces apart), a header row and a rule; `rightAlign[i]` right-aligns column i. */
export function renderColumns(head: string[], rows: string[][], rightAlign: boolean[] = []): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (rightAlign[i] ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Streams writeText has seen fail (a closed pipe: `… | head`), with the error. */
const failedStreams = new WeakMap<Writable, Error>();
const watchedStreams = new WeakSet<Writable>();

/**
 * Writes to a stream, waiting for it to drain when its buffer is full. A
 * stream that fails (the reader of a pipe went away) makes this and every
 * later write reject with one clear error instead of crashing the process.
 */
export async function writeText(stream: Writable, text: string): Promise<void> {
  if (!watchedStreams.has(stream)) {
    watchedStreams.add(stream);
    stream.on('error', (error: Error) => failedStreams.set(stream, error));
  }
  const failed = (): OaiBatchError | null => {
    const error = failedStreams.get(stream);
    return error || stream.destroyed ? new OaiBatchError(`output closed before it was complete${error ? ` (${error.message})` : ''}`, 'output_closed') : null;
  };
  const before = failed();
  if (before) throw before;
  if (stream.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
  const after = failed();
  if (after) throw after;
}

export const estimateCommand = defineCommand<EstimateCliOptions>({
  command: 'estimate <input>',
  describe: 'what an input will cost (min / expected / max, online and Batch API) and how long it takes; sends nothing',
  builder: estimateBuilder,
  toOptions: estimateOptionsFromArgs,
  execute: executeEstimate,
});
