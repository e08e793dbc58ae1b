// `oai-batch simulate`: the built-in OpenAI-compatible simulator on loopback,
// until interrupted. Point any client at the URL it prints.

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import type { SimulatorOptions } from '../sim/server.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { integerFlag, numberFlag, optionalInteger, optionalNumber, optionalString, choiceFlag } from './flags.js';

export interface SimulateCliOptions {
  simulator: SimulatorOptions;
}

export function simulateBuilder(yargs: Argv): Argv {
  return yargs
    .option('port', { type: 'number', default: 8787, describe: 'port to listen on (0 = any free port)' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
    .option('rpm', { type: 'number', default: 10_000, describe: 'requests per minute allowed per model' })
    .option('tpm', { type: 'number', default: 10_000_000, describe: 'tokens per minute allowed per model' })
    .option('quantize', { type: 'boolean', default: true, describe: 'also enforce limits per second (limit/60 each second); --no-quantize turns it off' })
    .option('latency-ms', { type: 'number', default: 0, describe: 'added latency per answer, ms (±20%, deterministic)' })
    .option('faults', { type: 'string', describe: 'fault rates, e.g. 500=0.1,503=0.02,reset=0.02,hang=0.01,malformed=0.02' })
    .option('faults-every-attempt', { type: 'boolean', default: false, describe: 'faults may hit retries too (default: first attempts only)' })
    .option('seed', { type: 'number', default: 1, describe: 'seed for faults and generated answers' })
    .option('hang-ms', { type: 'number', describe: 'how long a hang holds the connection, ms (default 600000)' })
    .option('rate-limit-headers', {
      type: 'string',
      default: 'reset',
      choices: ['reset', 'none', 'retry-after', 'retry-after-ms'],
      describe: 'what a 429 carries: x-ratelimit-* headers, nothing, retry-after, or retry-after-ms',
    })
    .option('api-key', { type: 'string', describe: 'accept only this bearer key (default: any non-empty key)' })
    .option('quota-after', { type: 'number', describe: 'after this many answers, every request gets 429 insufficient_quota' })
    .option('omit-usage', { type: 'boolean', default: false, describe: 'answer without usage, as some OpenAI-compatible servers do' })
    .option('batch-seconds', {
      type: 'number',
      default: 1,
      describe: 'length of one step of a simulated batch, seconds (validating 1 step, in_progress 3, finalizing 1, cancelling 1)',
    })
    .example('$0 simulate --port 8787 --faults 500=0.1,reset=0.02', 'then: OPENAI_BASE_URL=http://127.0.0.1:8787/v1 OPENAI_API_KEY=sk-any oai-batch run file.jsonl')
    .example('$0 simulate --batch-seconds 60', 'batches take about 6 minutes: time to try `batch status`, `wait` and `cancel` by hand');
}

export function simulateOptionsFromArgs(args: Args): SimulateCliOptions {
  const simulator: SimulatorOptions = {
    port: integerFlag(args, 'port', 0, 8787),
    host: optionalString(args, 'host') ?? '127.0.0.1',
    rpm: numberFlag(args, 'rpm', 1, Infinity, 10_000),
    tpm: numberFlag(args, 'tpm', 1, Infinity, 10_000_000),
    quantize: args.quantize !== false,
    latencyMs: numberFlag(args, 'latency-ms', 0, Infinity, 0),
    faultsEveryAttempt: args['faults-every-attempt'] === true,
    seed: integerFlag(args, 'seed', 0, 1),
    rateLimit429Headers: choiceFlag(args, 'rate-limit-headers', ['reset', 'none', 'retry-after', 'retry-after-ms'] as const, 'reset'),
    batch: { stepMs: numberFlag(args, 'batch-seconds', 0.001, 86_400, 1) * 1000 },
  };
  const faults = optionalString(args, 'faults');
  if (faults !== undefined) simulator.faults = parseFaultsFlag(faults);
  const hangMs = optionalNumber(args, 'hang-ms', 0);
  if (hangMs !== undefined) simulator.hangMs = hangMs;
  const apiKey = optionalString(args, 'api-key');
  if (apiKey !== undefined) simulator.apiKey = apiKey;
  const quota = optionalInteger(args, 'quota-after', 0);
  if (quota !== undefined) simulator.quotaAfterRequests = quota;
  if (args['omit-usage'] === true) simulator.omitUsage = true;
  return { simulator };
}

/** The fault spec grammar, checked without loading the simulator. */
function parseFaultsFlag(spec: string): NonNullable<SimulatorOptions['faults']> {
  const out: Record<string, number> = {};
  for (const part of spec.split(',')) {
    const [kind, rate] = part.split('=').map((s) => s.trim());
    const value = Number(rate);
    if (!kind || rate === undefined || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new ConfigError(`Expected \`faults\` like 500=0.1,reset=0.02 (rates 0..1), got \`${spec}\``);
    }
    out[kind] = value;
  }
  return out as NonNullable<SimulatorOptions['faults']>;
}

export async function executeSimulate(options: SimulateCliOptions, io: CliIO): Promise<number> {
  const { startSimulator, parseFaults } = await import('../sim/server.js');
  if (options.simulator.faults) {
    // The simulator's own parser knows the fault kinds; it rejects unknown ones.
    const spec = Object.entries(options.simulator.faults).map(([k, v]) => `${k}=${v}`).join(',');
    try {
      options.simulator.faults = parseFaults(spec);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
  }
  const sim = await startSimulator(options.simulator).catch((error: unknown) => {
    throw listenError(error, options.simulator);
  });
  io.stdout.write(`oai-batch simulator listening on ${sim.url}\n`);
  io.stdout.write(`  export OPENAI_BASE_URL=${sim.url} OPENAI_API_KEY=${options.simulator.apiKey ? '<the key you set>' : 'sk-anything'}\n`);
  io.stdout.write('  stats: GET ' + sim.url.replace(/\/v1$/, '') + '/sim/stats · stop with Ctrl-C\n');
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await sim.close();
  return 0;
}

/** A port that cannot be had is the user's to change: one line naming the way out, not a stack trace. */
function listenError(error: unknown, simulator: SimulatorOptions): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const where = `${simulator.host ?? '127.0.0.1'}:${simulator.port ?? 8787}`;
  if (code === 'EADDRINUSE') return new ConfigError(`cannot listen on ${where}: the port is in use; pick another with --port N, or --port 0 for any free port`);
  if (code === 'EACCES') return new ConfigError(`cannot listen on ${where}: permission denied; pick a port above 1023 with --port N, or --port 0 for any free port`);
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`cannot listen on ${where}: no such local address; check --host`);
  return error;
}

export const simulateCommand = defineCommand<SimulateCliOptions>({
  command: 'simulate',
  describe: 'run the built-in OpenAI-compatible simulator on loopback (no key, no network)',
  builder: simulateBuilder,
  toOptions: simulateOptionsFromArgs,
  execute: executeSimulate,
});
