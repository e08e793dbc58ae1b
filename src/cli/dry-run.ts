// `oai-batch run --dry-run`: the validate pass and the estimate in one, with
// run's flags; nothing is sent.

import type { PriceTable } from '../pricing/prices.js';
import type { InputScanOptions } from '../commands/validate.js';
import type { Endpoint } from '../shared/types.js';
import type { CliIO } from './command.js';
import { estimateTable, fmtUsd, problemLine, validationTable, writeText } from './render.js';

/** The run flags a dry run reads (the run command's options satisfy it). */
export interface DryRunOptions {
  input: string;
  output: string;
  summary: string;
  resume: boolean;
  overwrite: boolean;
  endpoint: Endpoint;
  maxLineBytes: number;
  limit: number | undefined;
  rpm: number | undefined;
  tpm: number | undefined;
  maxCostUsd: number | undefined;
}

/**
 * `run --dry-run`: validate and estimate in one pass with run's flags, send
 * nothing. Exit as validate does (0 clean, 2 problems), or 1 when the run
 * would be refused before sending (--max-cost with an unpriced model, or an
 * existing results file without --resume or --overwrite).
 */
export async function executeDryRun(options: DryRunOptions, prices: PriceTable, io: CliIO): Promise<number> {
  const [{ validateInput, validateExitCode }, { EstimateBuilder, readLearnedLimits }, { exists }] = await Promise.all([
    import('../commands/validate.js'),
    import('../commands/estimate.js'),
    import('../pipeline/record/outputs.js'),
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
  const results = resultsFileLine(options, await exists(options.output));
  if (results !== null) {
    out.push(results.line);
    if (results.isRefused) exitCode = 1;
  }
  out.push('dry run: nothing was sent\n');
  await writeText(io.stdout, out.join('\n'));
  return exitCode;
}


/** What the real run will do with an existing results file: refused unless --resume or --overwrite says what to do. */
function resultsFileLine(options: DryRunOptions, isExisting: boolean): { line: string; isRefused: boolean } | null {
  if (!isExisting) return null;
  if (options.resume) return { line: `${options.output} exists: --resume continues it, skipping the requests that already succeeded there\n`, isRefused: false };
  if (options.overwrite) return { line: `${options.output} exists: --overwrite starts it afresh (its results are discarded)\n`, isRefused: false };
  return {
    line: `${options.output} exists: the real run needs --resume (continue it, skipping what succeeded) or --overwrite (start over); without either it stops before sending (exit 1)\n`,
    isRefused: true,
  };
}
