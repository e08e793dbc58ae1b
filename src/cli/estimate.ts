// `oai-batch estimate <input>`: cost and time of an input before sending it.
//
// Flags → EstimateOptions; one streaming pass (commands/estimate.ts); a table or
// JSON on stdout. Sends nothing. Exit 0 (input problems are counted, not
// fatal: `validate` lists them).

import type { Argv } from 'yargs';
import type { RateLimits } from '../commands/estimate.js';
import type { InputScanOptions } from '../commands/validate.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import type { RequestItem } from '../shared/types.js';
import { cacheFlags, choiceFlag, defaultOutputName, inputScanBuilder, inputScanFromArgs, optionalInteger, optionalNumber, optionalString } from './flags.js';
import { estimateTable, writeText } from './render.js';

export interface EstimateCliOptions {
  scan: InputScanOptions;
  format: 'table' | 'json';
  expectedOutputTokens: number | undefined;
  limits: RateLimits;
  pricesPath: string | undefined;
  /** Summary of an earlier run whose learned limits time the estimate (default: the input's own summary, if any). */
  summaryPath: string | undefined;
  /** --cache [PATH]: price only what the response cache cannot answer. */
  cachePath: string | undefined;
  cacheTtlMs: number | undefined;
}

export function estimateBuilder(yargs: Argv): Argv {
  return inputScanBuilder(yargs)
    .option('format', { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'table for people, json for scripts' })
    .option('expected-output-tokens', { type: 'number', describe: 'output tokens to expect per request (default: half its output limit)' })
    .option('rpm', { type: 'number', describe: 'requests per minute per model, for the time estimate' })
    .option('tpm', { type: 'number', describe: 'tokens per minute per model, for the time estimate' })
    .option('prices', { type: 'string', describe: 'price table overrides (JSON, see samples/prices.json)' })
    .option('summary', { type: 'string', describe: "an earlier run's summary whose learned limits time the estimate (default: <input>.summary.json)" })
    .option('cache', { type: 'string', describe: 'price only what the response cache [PATH] (default under $XDG_CACHE_HOME/oai-batch/) cannot answer' })
    .option('cache-ttl', { type: 'string', describe: 'with --cache: count cached answers younger than this only (30d, 12h)' })
    .example('$0 estimate requests.jsonl', 'cost min / expected / max per model, online and at Batch API prices')
    .example('$0 estimate requests.jsonl --rpm 5000 --tpm 4000000 --format json', 'with the time at your limits, for a script');
}

export function estimateOptionsFromArgs(args: Args, io: Pick<CliIO, 'env'>): EstimateCliOptions {
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
    ...pickCache(cacheFlags(args, io.env)),
  };
}

function pickCache({ cachePath, cacheTtlMs }: ReturnType<typeof cacheFlags>): Pick<EstimateCliOptions, 'cachePath' | 'cacheTtlMs'> {
  return { cachePath, cacheTtlMs };
}

export async function executeEstimate(options: EstimateCliOptions, io: CliIO): Promise<number> {
  const [{ estimateInput, readLearnedLimits }, { loadPriceTable }] = await Promise.all([import('../commands/estimate.js'), import('../shared/price-file.js')]);
  const prices = loadPriceTable(options.pricesPath);
  const reuse = options.cachePath === undefined ? null : await openReusePredicate(options.cachePath, options.cacheTtlMs, io);
  try {
    const { estimate } = await estimateInput(
      { ...options.scan, stdin: io.stdin },
      {
        prices,
        expectedOutputTokens: options.expectedOutputTokens,
        limits: options.limits,
        learnedLimits: await readLearnedLimits(options.summaryPath),
        isReused: reuse?.isReused,
      },
    );
    await writeText(io.stdout, options.format === 'json' ? JSON.stringify(estimate, null, 2) + '\n' : estimateTable(estimate));
  } finally {
    await reuse?.close();
  }
  return 0;
}

/** What a run with --cache would not buy: answers in the cache, and lines identical to an earlier one (dedup). */
async function openReusePredicate(
  path: string,
  ttlMs: number | undefined,
  io: CliIO,
): Promise<{ isReused: (item: RequestItem) => boolean; close(): Promise<void> } | null> {
  const [{ openResponseCache, cacheKey }, { KeySet }] = await Promise.all([import('../stores/response-cache.js'), import('../shared/keyset.js')]);
  let cache: Awaited<ReturnType<typeof openResponseCache>> | null = null;
  try {
    cache = await openResponseCache(path, { ttlMs });
  } catch (error) {
    io.stderr.write(`oai-batch: the response cache ${path} cannot be used (${(error as Error).message}): estimating without it\n`);
    return null;
  }
  const seen = new KeySet();
  return {
    isReused: (item) => {
      const key = cacheKey(item.url, item.body);
      return cache?.get(key) !== undefined || !seen.add(key);
    },
    close: async () => cache?.close(),
  };
}

export const estimateCommand = defineCommand<EstimateCliOptions>({
  command: 'estimate <input>',
  describe: 'what an input will cost (min / expected / max, online and Batch API) and how long it takes; sends nothing',
  builder: estimateBuilder,
  toOptions: estimateOptionsFromArgs,
  execute: executeEstimate,
});
