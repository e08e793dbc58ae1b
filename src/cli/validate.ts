// `oai-batch validate <input>` and `run --dry-run`: check an input, send nothing.
//
// validate: every input problem, one line each (line number, code, message,
// in line order, as found), then the lines per endpoint and model. Exit 0
// when every line is valid, 2 when some line has a problem, 1 when the input
// cannot be read. `run --dry-run` is the same pass plus the estimate, with
// run's flags. Also the input flags (--endpoint, --max-line-bytes, --limit)
// that estimate, compare and export share.

import type { Argv } from 'yargs';
import type { InputProblem } from '../core/types.js';
import type { InputScanOptions, ValidationReport } from '../core/validate.js';
import type { PriceTable } from '../pricing/prices.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { choiceFlag, endpointFlag, inputFlag, integerFlag, optionalInteger } from './flags.js';
import { estimateTable, fmtUsd, readLearnedLimits, renderColumns, writeText } from './estimate.js';
import { fmtInt } from './progress.js';
import type { RunCliOptions } from './run.js';

/** The flags that say how to read an input, as `run` reads it. */
export function inputScanBuilder(yargs: Argv): Argv {
  return yargs
    .positional('input', { type: 'string', describe: 'JSONL file of requests (either line form; .gz read compressed), or - for stdin' })
    .option('endpoint', { type: 'string', default: '/v1/chat/completions', describe: 'endpoint for bare-form lines' })
    .option('max-line-bytes', { type: 'number', default: 8 * 1024 * 1024, describe: 'longest accepted input line, bytes' })
    .option('limit', { type: 'number', describe: 'only the first N lines' });
}

export function inputScanFromArgs(args: Args): InputScanOptions {
  const input = inputFlag(args);
  const endpoint = endpointFlag(args);
  const scan: InputScanOptions = { input, endpoint, maxLineBytes: integerFlag(args, 'max-line-bytes', 1, 8 * 1024 * 1024) };
  const limit = optionalInteger(args, 'limit', 1);
  if (limit !== undefined) scan.limit = limit;
  return scan;
}

export interface ValidateCliOptions {
  scan: InputScanOptions;
  format: 'table' | 'json';
}

export function validateBuilder(yargs: Argv): Argv {
  return inputScanBuilder(yargs)
    .option('format', { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'table for people, json for scripts' })
    .example('$0 validate requests.jsonl', 'every bad line by number; exit 2 if there is one')
    .epilogue('Exit codes: 0 every line is valid; 2 some line has a problem (listed); 1 the input cannot be read or a flag is wrong.');
}

export function validateOptionsFromArgs(args: Args): ValidateCliOptions {
  return { scan: inputScanFromArgs(args), format: choiceFlag(args, 'format', ['table', 'json'] as const, 'table') };
}

export async function executeValidate(options: ValidateCliOptions, io: CliIO): Promise<number> {
  const { validateInput, validateExitCode } = await import('../core/validate.js');
  const scan = { ...options.scan, stdin: io.stdin };
  if (options.format === 'json') {
    // Problems are streamed into the array as they are found: memory stays flat however many there are.
    await writeText(io.stdout, `{"input":${JSON.stringify(scan.input)},"problems":[`);
    let first = true;
    const report = await validateInput(scan, {
      onProblem: async (problem) => {
        await writeText(io.stdout, (first ? '\n' : ',\n') + JSON.stringify(problemJson(problem)));
        first = false;
      },
    });
    const { input: _input, ...counts } = reportJson(report);
    await writeText(io.stdout, `${first ? '' : '\n'}],${JSON.stringify(counts).slice(1)}\n`);
    return validateExitCode(report);
  }
  const report = await validateInput(scan, { onProblem: (problem) => writeText(io.stdout, problemLine(problem) + '\n') });
  await writeText(io.stdout, (report.problems > 0 ? '\n' : '') + validationTable(report));
  return validateExitCode(report);
}

/** `line 3: invalid_json: not valid JSON (…)`: the message without its own `line N: ` prefix. */
export function problemLine(problem: InputProblem): string {
  return `line ${problem.line}: ${problem.code}: ${problem.message.replace(/^line \d+: /, '')}`;
}

function problemJson(problem: InputProblem): Record<string, unknown> {
  return { line: problem.line, code: problem.code, message: problem.message, custom_id: problem.customId };
}

/** The report in the snake_case form scripts read (`validate --format json`). */
export function reportJson(report: ValidationReport): Record<string, unknown> {
  return {
    input: report.input,
    lines: report.lines,
    valid: report.valid,
    problem_count: report.problems,
    problem_counts: report.problemCounts,
    by_endpoint: report.byEndpoint,
  };
}

/** Lines per endpoint and model, and the one-line verdict. */
export function validationTable(report: ValidationReport): string {
  const rows: string[][] = [];
  for (const [endpoint, models] of Object.entries(report.byEndpoint)) {
    for (const [model, lines] of Object.entries(models ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) rows.push([endpoint, model, fmtInt(lines)]);
  }
  const out: string[] = [];
  if (rows.length > 0) out.push(renderColumns(['endpoint', 'model', 'lines'], rows, [false, false, true]), '');
  const codes = Object.entries(report.problemCounts).map(([code, n]) => `${code} ${fmtInt(n)}`);
  out.push(
    `${report.input}: ${fmtInt(report.lines)} lines, ${fmtInt(report.valid)} valid` +
      (report.problems > 0 ? `, ${fmtInt(report.problems)} with problems (${codes.join(', ')})` : ', no problems'),
  );
  return out.join('\n') + '\n';
}

/**
 * `run --dry-run`: validate and estimate in one pass with run's flags, send
 * nothing. Exit as validate does (0 clean, 2 problems), or 1 when the run
 * would be refused before sending (--max-cost with an unpriced model).
 */
export async function executeDryRun(options: RunCliOptions, prices: PriceTable, io: CliIO): Promise<number> {
  const [{ validateInput, validateExitCode }, { EstimateBuilder }] = await Promise.all([
    import('../core/validate.js'),
    import('../core/estimate.js'),
  ]);
  const builder = new EstimateBuilder({
    prices,
    limits: { rpm: options.rpm, tpm: options.tpm },
    learnedLimits: await readLearnedLimits(options.input === '-' ? undefined : options.summary),
  });
  const scan: InputScanOptions = { input: options.input, endpoint: options.endpoint, maxLineBytes: options.maxLineBytes };
  if (options.limit !== undefined) scan.limit = options.limit;
  const report = await validateInput(
    { ...scan, stdin: io.stdin },
    {
      onProblem: (problem) => writeText(io.stdout, problemLine(problem) + '\n'),
      onItem: (item) => builder.add(item),
    },
  );
  const estimate = builder.finish(report);
  const out = [
    (report.problems > 0 ? '\n' : '') + validationTable(report),
    estimateTable(estimate),
  ];
  let exitCode = validateExitCode(report);
  if (options.maxCostUsd !== undefined) {
    const cap = options.maxCostUsd;
    if (estimate.unpriced_models.length > 0) {
      out.push(`--max-cost needs a price for every model, and ${estimate.unpriced_models.join(', ')} has none: the run would stop before sending (exit 1); add it with --prices FILE\n`);
      exitCode = 1;
    } else if (estimate.totals.cost_usd.max === null || estimate.totals.cost_usd.max > cap) {
      out.push(`--max-cost ${cap}: the worst case is ${estimate.totals.cost_usd.max === null ? 'unbounded' : '$' + fmtUsd(estimate.totals.cost_usd.max)}, so the run may stop at the cap (exit 3; --resume continues)\n`);
    } else {
      out.push(`--max-cost ${cap}: the worst case $${fmtUsd(estimate.totals.cost_usd.max)} fits under the cap\n`);
    }
  }
  out.push('dry run: nothing was sent\n');
  await writeText(io.stdout, out.join('\n'));
  return exitCode;
}

export const validateCommand = defineCommand<ValidateCliOptions>({
  command: 'validate <input>',
  describe: 'list every input problem and count lines per endpoint and model; sends nothing (exit 2 on problems)',
  builder: validateBuilder,
  toOptions: validateOptionsFromArgs,
  execute: executeValidate,
});
