// `oai-batch merge <input> --shards N | <results...>`: the shards of a fleet
// (or any results files of one input) as one run's results, errors and
// summary, named as a single run names them, so `export` reads them as they are.
//
// Flags → MergeOptions (commands/merge.ts does the work). Exit 0 when every
// line succeeded, 2 when some failed and none is pending, 3 when some line
// is pending (in no part, or its shard stopped early: run that shard with --resume).

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import type { MergeOptions, MergePart, MergeResult } from '../commands/merge.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { defaultOutputName, endpointFlag, inputFlag, integerFlag, optionalInteger, optionalString } from './flags.js';
import { fmtInt } from '../shared/figures.js';
import { fmtUsd, writeText } from './render.js';
import { MAX_SHARDS } from '../shared/shard.js';

export interface MergeCliOptions {
  merge: Omit<MergeOptions, 'prices'>;
  pricesPath: string | undefined;
}

export function mergeBuilder(yargs: Argv): Argv {
  return yargs
    .positional('input', { type: 'string', describe: 'the JSONL file of requests the parts ran' })
    .positional('results', { type: 'string', array: true, describe: 'results files to merge (their .errors.jsonl and .summary.json beside them are read too)' })
    .option('shards', { type: 'number', describe: 'merge <input>.shard-I-of-N.* for I = 0 … N-1' })
    .option('output', { alias: 'o', type: 'string', describe: 'merged results (default: <input>.results.jsonl)' })
    .option('errors', { type: 'string', describe: 'merged errors (default: <input>.errors.jsonl)' })
    .option('summary', { type: 'string', describe: 'merged summary (default: <input>.summary.json)' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'replace merged files that exist' })
    .option('prices', { type: 'string', describe: 'price table overrides (JSON, see samples/prices.json)' })
    .option('endpoint', { type: 'string', default: '/v1/chat/completions', describe: 'endpoint for bare-form lines (as given to run)' })
    .option('max-line-bytes', { type: 'number', default: 8 * 1024 * 1024, describe: 'longest accepted input line, bytes (as given to run)' })
    .example('$0 merge requests.jsonl --shards 8', 'one results, errors and summary for the 8 shards of a fleet')
    .example('$0 merge requests.jsonl a.results.jsonl b.results.jsonl -o all.results.jsonl', 'any results files of one input');
}

export function mergeOptionsFromArgs(args: Args): MergeCliOptions {
  const input = inputFlag(args);
  if (input === '-') throw new ConfigError('merge needs the input file (not stdin): it counts the lines no part finished');
  const shards = optionalInteger(args, 'shards', 1);
  if (shards !== undefined && shards > MAX_SHARDS) throw new ConfigError(`Expected \`shards\` to be an integer between 1 and ${MAX_SHARDS}, got \`${shards}\``);
  const files = (Array.isArray(args.results) ? args.results : args.results === undefined ? [] : [args.results]).map(String).filter((f) => f !== '');
  if (shards !== undefined && files.length > 0) throw new ConfigError('give either --shards N or results files, not both');
  if (shards === undefined && files.length === 0) throw new ConfigError('name what to merge: --shards N (the files run --shard I/N wrote) or results files');
  const parts: MergePart[] =
    shards !== undefined
      ? Array.from({ length: shards }, (_, index) => {
          const shard = { index, count: shards };
          return { results: defaultOutputName(input, 'results', shard), errors: defaultOutputName(input, 'errors', shard), summary: defaultOutputName(input, 'summary', shard) };
        })
      : files.map(partOfResultsFile);
  return {
    merge: {
      input,
      endpoint: endpointFlag(args),
      maxLineBytes: integerFlag(args, 'max-line-bytes', 1, 8 * 1024 * 1024),
      parts,
      output: optionalString(args, 'output') ?? defaultOutputName(input, 'results'),
      errors: optionalString(args, 'errors') ?? defaultOutputName(input, 'errors'),
      summary: optionalString(args, 'summary') ?? defaultOutputName(input, 'summary'),
      overwrite: args.overwrite === true,
    },
    pricesPath: optionalString(args, 'prices'),
  };
}

/** `x.results.jsonl[.gz]` comes with `x.errors.jsonl` and `x.summary.json`, as run names them; other names come alone. */
export function partOfResultsFile(results: string): MergePart {
  const match = /^(.*)\.results\.jsonl(\.gz)?$/i.exec(results);
  if (!match) return { results, errors: null, summary: null };
  return { results, errors: `${match[1]}.errors.jsonl`, summary: `${match[1]}.summary.json` };
}

export async function executeMerge(options: MergeCliOptions, io: CliIO): Promise<number> {
  const [{ mergeResults }, { loadPriceTable }] = await Promise.all([import('../commands/merge.js'), import('../shared/price-file.js')]);
  const result = await mergeResults({ ...options.merge, prices: loadPriceTable(options.pricesPath) });
  await writeText(io.stdout, mergeReport(result, options.merge));
  return result.exitCode;
}

export function mergeReport(result: MergeResult, options: Pick<MergeOptions, 'output' | 'errors' | 'summary' | 'parts'>): string {
  const r = result.summary.requests;
  const lines = [
    `merged ${fmtInt(options.parts.length)} parts: ${fmtInt(r.total)} lines, ${fmtInt(r.succeeded)} succeeded, ${fmtInt(r.failed)} failed, ${fmtInt(r.pending)} pending; ` +
      `cost $${fmtUsd(result.summary.cost_usd.total)}`,
  ];
  if (result.duplicates.count > 0) {
    lines.push(`${fmtInt(result.duplicates.count)} repeated successes counted once (e.g. ${result.duplicates.examples.slice(0, 3).join(', ')})`);
  }
  if (result.foreign > 0) lines.push(`${fmtInt(result.foreign)} successes for custom_ids not in the input left out`);
  for (const path of result.missing) lines.push(`missing: ${path} (its lines are pending)`);
  if (r.pending > 0) lines.push('pending lines: run their shards again with --resume, then merge again with --overwrite');
  lines.push(`wrote ${options.output}, ${options.errors}, ${options.summary}`);
  return lines.join('\n') + '\n';
}

export const mergeCommand = defineCommand<MergeCliOptions>({
  command: 'merge <input> [results..]',
  describe: "one results, errors and summary from a fleet's shards (--shards N) or from results files of one input",
  builder: mergeBuilder,
  toOptions: mergeOptionsFromArgs,
  execute: executeMerge,
});
