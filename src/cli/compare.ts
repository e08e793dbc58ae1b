// `oai-batch compare <input> --models a,b,c`: the same sample through each
// model at once, under one limiter; a side-by-side table on stdout, saved as
// compare.md and compare.json beside the input (or in --out-dir).
//
// Flags → CompareOptions (commands/compare.ts does the work). Takes run's
// connection and rate flags. Exit code: the most severe of the model runs'
// (1 > 3 > 5 > 2 > 0), so a model that failed some requests exits 2.

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { renderColumns, writeText } from './render.js';
import {
  choiceFlag,
  integerFlag,
  listFlag,
  optionalInteger,
  optionalString,
  sendingBuilder,
  sendingOptions,
  sendingRunOptions,
  type SendingOptions,
} from './flags.js';
import { cacheFlags, inputScanBuilder, inputScanFromArgs } from './flags.js';
import type { InputScanOptions } from '../commands/validate.js';

export interface CompareCliOptions extends SendingOptions {
  scan: InputScanOptions;
  models: string[];
  sampleSize: number;
  seed: number | undefined;
  outDir: string | undefined;
  format: 'table' | 'json';
  quiet: boolean;
  cachePath: string | undefined;
  cacheTtlMs: number | undefined;
  dedup: boolean;
}

export function compareBuilder(yargs: Argv): Argv {
  return sendingBuilder(
    inputScanBuilder(yargs)
      .option('models', { type: 'string', demandOption: true, describe: 'models to compare, comma-separated; the first is the reference for agreement' })
      .option('sample', { type: 'number', default: 100, describe: 'requests in the sample' })
      .option('seed', { type: 'number', describe: 'draw the sample at random with this seed (default: the first requests)' })
      .option('out-dir', { type: 'string', describe: "folder for each model's results and compare.md / compare.json (default: the input's folder)" })
      .option('format', { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'what stdout shows: the table, or compare.json' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no per-model progress lines on stderr' })
      .option('cache', { type: 'string', describe: 'answer from and store in the response cache [PATH] (each model has keys of its own); implies --dedup' })
      .option('cache-ttl', { type: 'string', describe: 'with --cache: ignore cached answers older than this (30d, 12h)' })
      .option('dedup', { type: 'boolean', default: false, describe: 'send identical sampled requests once per model' })
      .example('$0 compare requests.jsonl --models gpt-4o-mini,gpt-4.1-mini --sample 50 --seed 7', 'the same 50 random requests through both')
      .example('$0 compare samples/chat.jsonl --models gpt-4o-mini,gpt-4.1-mini --simulate', 'try it without a key'),
  );
}

export function compareOptionsFromArgs(args: Args, io: Pick<CliIO, 'env' | 'cwd'>): CompareCliOptions {
  const scan = inputScanFromArgs(args);
  if (scan.input === '-') throw new ConfigError('compare needs an input file (not stdin): the sample is drawn and the outputs are named from it');
  const models = listFlag(args, 'models');
  if (!models) throw new ConfigError('Expected `models` to name at least one model, e.g. --models gpt-4o-mini,gpt-4.1-mini');
  const repeated = models.find((m, i) => models.indexOf(m) !== i);
  if (repeated !== undefined) throw new ConfigError(`Expected \`models\` to name each model once, got \`${repeated}\` twice`);
  return {
    scan,
    models,
    sampleSize: integerFlag(args, 'sample', 1, 100),
    seed: optionalInteger(args, 'seed', 0),
    outDir: optionalString(args, 'out-dir'),
    ...sendingOptions(args, io.env),
    format: choiceFlag(args, 'format', ['table', 'json'] as const, 'table'),
    quiet: args.quiet === true,
    ...cacheFlags(args, io.env),
  };
}

export async function executeCompare(options: CompareCliOptions, io: CliIO): Promise<number> {
  const [{ compareModels, comparisonTable }, { loadPriceTable }, { openConnection }] = await Promise.all([
    import('../commands/compare.js'),
    import('../shared/price-file.js'),
    import('./connection.js'),
  ]);
  const prices = loadPriceTable(options.pricesPath);
  const connection = await openConnection(options.connection, { apiKey: true }, { latencyMs: 40 });
  try {
    if (!options.quiet) io.stderr.write(`oai-batch: comparing ${options.models.join(', ')} on up to ${options.sampleSize} requests of ${options.scan.input}…\n`);
    const { comparison, exitCode } = await compareModels({
      ...options.scan,
      models: options.models,
      sampleSize: options.sampleSize,
      seed: options.seed,
      outDir: options.outDir,
      prices,
      ...sendingRunOptions(options, connection.transport),
      cachePath: options.cachePath,
      cacheTtlMs: options.cacheTtlMs,
      dedup: options.dedup,
      signal: io.signal,
      forceSignal: io.force,
      onEvent: options.quiet
        ? undefined
        : (model, event) => {
            if (event.type === 'finished') {
              const r = event.summary.requests;
              io.stderr.write(`oai-batch: ${model}: ${r.succeeded} succeeded, ${r.failed} failed, ${r.pending} pending\n`);
            }
          },
    });
    if (options.format === 'json') {
      await writeText(io.stdout, JSON.stringify(comparison, null, 2) + '\n');
    } else {
      const { head, rows, numeric } = comparisonTable(comparison);
      const s = comparison.sample;
      await writeText(
        io.stdout,
        `sample: ${s.size} of ${s.file_requests.toLocaleString('en-US')} requests (${s.method === 'seeded' ? `seeded draw, seed ${s.seed}` : `the first ${s.size}`}) · prices as of ${comparison.pricing.as_of}\n\n` +
          renderColumns(head, rows, numeric) +
          `\n\nsaved ${comparison.files.markdown} and ${comparison.files.json}\n`,
      );
    }
    return exitCode;
  } finally {
    await connection.close();
  }
}

export const compareCommand = defineCommand<CompareCliOptions>({
  command: 'compare <input>',
  describe: 'the same sample through several models under one limiter: cost, tokens, latency, agreement side by side',
  builder: compareBuilder,
  toOptions: compareOptionsFromArgs,
  execute: executeCompare,
});
