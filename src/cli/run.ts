// `oai-batch run <input|->`: flags → RunOptions, progress on stderr, exit code.

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import type { EventListener } from '../shared/events.js';
import { traceSettings, type TraceSettings } from '../observe/trace-settings.js';
import type { RunOptions } from '../pipeline/options.js';
import { DEFAULT_MAX_LINE_BYTES, type Endpoint, type Summary } from '../shared/types.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import {
  choiceFlag,
  cacheFlags,
  defaultOutputName,
  endpointFlag,
  inputFlag,
  integerFlag,
  numberFlag,
  optionalInteger,
  optionalNumber,
  optionalString,
  sendingBuilder,
  sendingOptions,
  sendingRunOptions,
  shardFlag,
  type SendingOptions,
} from './flags.js';
import { openBudgetStore, type BudgetNotices, type OpenBudget } from './budget.js';
import type { Shard } from '../shared/shard.js';

/** What the run command needs beyond the core's options. */
export interface RunCliOptions extends SendingOptions {
  input: string;
  output: string;
  errors: string;
  summary: string;
  endpoint: Endpoint;
  maxCostUsd: number | undefined;
  maxTotalCostUsd: number | undefined;
  /** --cache: the response cache's path (the default one when the flag has no value); undefined without the flag. */
  cachePath: string | undefined;
  cacheTtlMs: number | undefined;
  dedup: boolean;
  resume: boolean;
  overwrite: boolean;
  force: boolean;
  limit: number | undefined;
  maxLineBytes: number;
  drainTimeoutMs: number;
  dryRun: boolean;
  quiet: boolean;
  logFormat: 'text' | 'json';
  logBodies: boolean;
  metricsPort: number | undefined;
  metricsHost: string;
  metricsLingerSeconds: number;
  reportPath: string | undefined;
  failOnErrorRate: number | undefined;
  failOnRateLimitRate: number | undefined;
  /** --shard I/N: only the lines whose custom_id hashes to I mod N. */
  shard: Shard | undefined;
  /** `--otel`, or the standard OTEL_* variables: export OpenTelemetry traces over OTLP/HTTP (DESIGN.md §8). */
  tracing: TraceSettings;
}

export function runBuilder(yargs: Argv): Argv {
  return sendingBuilder(
    yargs
      .positional('input', { type: 'string', describe: 'JSONL file of requests (either line form; .gz read compressed), or - for stdin' })
      .option('output', { alias: 'o', type: 'string', describe: 'results file (default: <input>.results.jsonl; .gz = compressed)' })
      .option('errors', { type: 'string', describe: 'final failures of this run (default: <input>.errors.jsonl)' })
      .option('summary', { type: 'string', describe: 'summary JSON (default: <input>.summary.json)' })
      .option('endpoint', { type: 'string', default: '/v1/chat/completions', describe: 'endpoint for bare-form lines' })
      .option('max-cost', { type: 'number', describe: "stop before this run's spend could pass this many USD" })
      .option('max-total-cost', { type: 'number', describe: "stop before the whole file's spend (earlier runs included) could pass this many USD" })
      .option('cache', { type: 'string', describe: 'answer from and store in the response cache [PATH] (default $XDG_CACHE_HOME/oai-batch/responses.lmdb); implies --dedup' })
      .option('cache-ttl', { type: 'string', describe: 'with --cache: ignore cached answers older than this (30d, 12h, 45m)' })
      .option('dedup', { type: 'boolean', default: false, describe: 'send identical requests of this run once; the others share its answer' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue an existing results file, skipping what succeeded' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'replace an existing results file' })
      .option('force', { type: 'boolean', default: false, describe: 'resume even though a line-N keyed input changed' })
      .option('limit', { type: 'number', describe: 'only the first N lines' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'validate and estimate; send nothing' })
      .option('max-line-bytes', { type: 'number', default: DEFAULT_MAX_LINE_BYTES, describe: 'longest accepted input line, bytes' })
      .option('drain-timeout', { type: 'number', default: 30, describe: 'seconds in-flight requests may take after an interrupt' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress display and no end table (a stop nobody asked for still prints its reason)' })
      .option('log-format', { type: 'string', default: 'text', choices: ['text', 'json'], describe: 'json: one JSON event per line on stderr, nothing else' })
      .option('log-bodies', { type: 'boolean', default: false, describe: 'with --log-format json: add response bodies to request_finished events (request bodies are never logged)' })
      .option('metrics-port', { type: 'number', describe: 'serve Prometheus metrics on this port (/metrics)' })
      .option('metrics-host', { type: 'string', default: '127.0.0.1', describe: 'address the metrics endpoint listens on' })
      .option('metrics-linger', { type: 'number', default: 0, describe: 'keep serving metrics this many seconds after the run' })
      .option('report', { type: 'string', describe: 'write a self-contained HTML report of the run' })
      .option('fail-on-error-rate', { type: 'number', describe: 'exit 5 when failed ÷ (sent + bad lines) is above this' })
      .option('fail-on-429-rate', { type: 'number', describe: 'exit 5 when 429s ÷ attempts is above this' })
      .option('shard', { type: 'string', describe: 'only the lines whose custom_id hashes to I mod N, e.g. 0/4 (outputs <input>.shard-I-of-N.*); with --redis for a fleet on one key' })
      .option('otel', {
        type: 'boolean',
        default: false,
        describe: 'export OpenTelemetry traces over OTLP/HTTP (also on with OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=otlp)',
      })
      .example('$0 run requests.jsonl', 'run every line at the rate limit')
      .example('$0 run requests.jsonl --resume', 'after a crash: send only what is missing')
      .example('$0 run samples/chat.jsonl --simulate --overwrite', 'try it without a key')
      .example('$0 run requests.jsonl --shard 2/8 --redis redis://redis:6379 --resume', 'worker 2 of 8 sharing one budget (then: oai-batch merge requests.jsonl --shards 8)'),
  );
}

export function runOptionsFromArgs(args: Args, io: Pick<CliIO, 'env' | 'cwd'>): RunCliOptions {
  const input = inputFlag(args);
  const endpoint = endpointFlag(args);
  const stdin = input === '-';
  const shard = shardFlag(args);
  const named = (flag: string, kind: 'results' | 'errors' | 'summary'): string => {
    const value = optionalString(args, flag);
    if (value !== undefined) return value;
    if (stdin) throw new ConfigError('reading stdin (-) needs -o, --errors and --summary: there is no input name to derive them from');
    return defaultOutputName(input, kind, shard);
  };
  const resume = args.resume === true;
  const overwrite = args.overwrite === true;
  if (resume && overwrite) throw new ConfigError('--resume and --overwrite cannot be used together');
  return {
    input,
    output: named('output', 'results'),
    errors: named('errors', 'errors'),
    summary: named('summary', 'summary'),
    endpoint,
    ...sendingOptions(args, io.env),
    maxCostUsd: optionalNumber(args, 'max-cost', 0),
    maxTotalCostUsd: optionalNumber(args, 'max-total-cost', 0),
    ...cacheFlags(args, io.env),
    resume,
    overwrite,
    force: args.force === true,
    limit: optionalInteger(args, 'limit', 1),
    maxLineBytes: integerFlag(args, 'max-line-bytes', 1, DEFAULT_MAX_LINE_BYTES),
    drainTimeoutMs: numberFlag(args, 'drain-timeout', 0, Infinity, 30) * 1000,
    dryRun: args['dry-run'] === true,
    quiet: args.quiet === true,
    logFormat: choiceFlag(args, 'log-format', ['text', 'json'] as const, 'text'),
    logBodies: args['log-bodies'] === true,
    metricsPort: optionalInteger(args, 'metrics-port', 0),
    metricsHost: optionalString(args, 'metrics-host') ?? '127.0.0.1',
    metricsLingerSeconds: numberFlag(args, 'metrics-linger', 0, Infinity, 0),
    reportPath: optionalString(args, 'report'),
    failOnErrorRate: optionalNumber(args, 'fail-on-error-rate', 0, 1),
    failOnRateLimitRate: optionalNumber(args, 'fail-on-429-rate', 0, 1),
    shard,
    tracing: traceSettings(args.otel === true, io.env),
  };
}

export async function executeRun(options: RunCliOptions, io: CliIO): Promise<number> {
  const [{ runBatch }, { loadPriceTable }, { openConnection }, { createProgressView }] = await Promise.all([
    import('../pipeline/run.js'),
    import('../shared/price-file.js'),
    import('./connection.js'),
    import('./progress.js'),
  ]);
  const prices = loadPriceTable(options.pricesPath);
  if (options.dryRun) {
    const { executeDryRun } = await import('./dry-run.js');
    return executeDryRun(options, prices, io);
  }
  const connection = await openConnection(options.connection, { apiKey: true }, { latencyMs: 40 });
  const notices = { quiet: options.quiet, json: options.logFormat === 'json' };
  let budget: OpenBudget;
  try {
    budget = await openBudgetStore(options, connection.transport, io, notices);
  } catch (error) {
    await connection.close();
    throw error;
  }
  if (options.shard && !budget.store && !options.connection.simulate) warnShardWithoutRedis(options.shard, io, notices);
  const listeners: EventListener[] = [];
  const view = createProgressView(io.stderr, { quiet: options.quiet, silent: options.logFormat === 'json', input: options.input });
  listeners.push(view.onEvent);
  let extras: Awaited<ReturnType<typeof attachObservers>>;
  try {
    extras = await attachObservers({ ...options, serverUrl: connection.transport.baseUrl }, io, listeners);
  } catch (error) {
    // A refused observer flag must not leave an in-process simulator (or a Redis connection) holding the process open.
    view.stop();
    await budget.close();
    await connection.close();
    throw error;
  }
  const runOptions: RunOptions = {
    input: options.input,
    stdin: io.stdin,
    output: options.output,
    errors: options.errors,
    summary: options.summary,
    endpoint: options.endpoint,
    ...sendingRunOptions(options, connection.transport, budget.store),
    shard: options.shard,
    maxCostUsd: options.maxCostUsd,
    maxTotalCostUsd: options.maxTotalCostUsd,
    cachePath: options.cachePath,
    cacheTtlMs: options.cacheTtlMs,
    dedup: options.dedup,
    resume: options.resume,
    overwrite: options.overwrite,
    force: options.force,
    limit: options.limit,
    maxLineBytes: options.maxLineBytes,
    drainTimeoutMs: options.drainTimeoutMs,
    prices,
    failOnErrorRate: options.failOnErrorRate,
    failOnRateLimitRate: options.failOnRateLimitRate,
    signal: io.signal,
    forceSignal: io.force,
    onEvent: (event) => {
      for (const listener of listeners) listener(event);
    },
  };
  try {
    const { summary, exitCode } = await runBatch(runOptions);
    view.finish(summary, { results: options.output, errors: options.errors, summary: options.summary });
    await extras.finish(summary);
    return exitCode;
  } finally {
    view.stop();
    await extras.close();
    await budget.close();
    await connection.close();
  }
}

/** Shards on one key without a shared budget each learn the limits alone, and together overshoot them. */
function warnShardWithoutRedis(shard: Shard, io: Pick<CliIO, 'stderr'>, notices: BudgetNotices): void {
  if (notices.quiet) return;
  const message =
    `warning: --shard ${shard.index}/${shard.count} without --redis: each shard keeps its own budget, so shards running at once on one key ` +
    'will contend for its rate limit (429s, slow-downs); give every shard the same --redis URL';
  if (notices.json) io.stderr.write(JSON.stringify({ level: 'warn', time: new Date().toISOString(), event: 'shard_without_redis', msg: message }) + '\n');
  else io.stderr.write(`oai-batch: ${message}\n`);
}

/** Metrics, JSON logs and the HTML report subscribe to run events (observability, DESIGN.md §3). */
async function attachObservers(
  options: RunCliOptions & { serverUrl: string },
  io: CliIO,
  listeners: EventListener[],
): Promise<{ finish(summary: Summary): Promise<void>; close(): Promise<void> }> {
  const { attachRunObservers } = await import('./observe.js');
  return attachRunObservers(options, io, listeners);
}

export const runCommand = defineCommand<RunCliOptions>({
  command: 'run <input>',
  describe: 'send every request in a JSONL file at the rate limit; results, errors, summary',
  builder: runBuilder,
  toOptions: runOptionsFromArgs,
  execute: executeRun,
});
