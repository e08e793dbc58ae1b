// `oai-batch monitor`: a Prometheus exporter of the organisation's usage and
// cost (DESIGN.md §8). Runs until SIGINT/SIGTERM, then exits 0.
//
// flags → MonitorCliOptions (pure, table tested) → open the connection (admin
// key, or the in-process simulator with --simulate) → serve /metrics → poll
// every --interval (src/org/monitor.ts) → gauges (src/observe/org-metrics.ts).
// A refused admin key on the first poll exits 1; any later failure is
// counted in oai_org_poll_errors_total and the last values stay.

import type { Argv } from 'yargs';
import { AuthError, ConfigError } from '../shared/errors.js';
import { formatDuration, parseDurationMs } from '../shared/duration.js';
import { redact } from '../shared/redact.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { connectionBuilder, connectionOptions, integerFlag, numberFlag, optionalString, type ConnectionOptions } from './flags.js';

export interface MonitorCliOptions {
  /** `--interval`: time between polls, ms (30s, 5m, 1h or seconds; default 5m, at least 1s). */
  intervalMs: number;
  /** `--metrics-port`: port of /metrics (default 9465; 0 = any free port, printed at start). */
  metricsPort: number;
  /** `--metrics-host`: address /metrics listens on (default 127.0.0.1, loopback only). */
  metricsHost: string;
  /** `--top`: label values kept per label (models, projects, line items); the rest are `other`. Default 10. */
  top: number;
  /** `--max-attempts` per API page, 429 waits not counted (default 6, as `run`). */
  maxAttempts: number;
  /** `--timeout` per attempt, ms (flag in seconds, default 60). */
  timeoutMs: number;
  /** `--quiet`: no line per good poll on stderr (failures are always reported). */
  quiet: boolean;
  /** `--base-url`/`--simulate` and OPENAI_ADMIN_KEY. */
  connection: ConnectionOptions;
}

export const DEFAULT_MONITOR_PORT = 9465;
const MIN_INTERVAL_MS = 1_000;

export function monitorBuilder(yargs: Argv): Argv {
  return connectionBuilder(
    yargs
      .option('interval', { type: 'string', default: '5m', describe: 'time between polls: 30s, 5m, 1h (or seconds)' })
      .option('metrics-port', { type: 'number', default: DEFAULT_MONITOR_PORT, describe: 'serve Prometheus metrics on this port (/metrics; 0 = any free port)' })
      .option('metrics-host', { type: 'string', default: '127.0.0.1', describe: 'address the metrics endpoint listens on' })
      .option('top', { type: 'number', default: 10, describe: 'label values kept per label (models, projects, line items); the rest become `other`' })
      .option('max-attempts', { type: 'number', default: 6, describe: 'attempts per API page; 429 waits not counted' })
      .option('timeout', { type: 'number', default: 60, describe: 'seconds per attempt' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no line per good poll (failures are still reported)' }),
  )
    .example('OPENAI_ADMIN_KEY=sk-admin-... $0 monitor', 'gauges at http://127.0.0.1:9465/metrics, refreshed every 5 minutes')
    .example('$0 monitor --simulate --interval 30s', 'try it against the built-in simulator');
}

export function monitorOptionsFromArgs(args: Args, io: Pick<CliIO, 'env' | 'cwd'>): MonitorCliOptions {
  const rawInterval = args.interval ?? '5m';
  const intervalMs = parseDurationMs(rawInterval as string | number);
  if (intervalMs === null || intervalMs < MIN_INTERVAL_MS) {
    throw new ConfigError(`Expected \`interval\` to be a duration of at least 1s such as 30s, 5m or 1h, got \`${String(rawInterval)}\``);
  }
  const metricsPort = integerFlag(args, 'metrics-port', 0, DEFAULT_MONITOR_PORT);
  if (metricsPort > 65_535) throw new ConfigError(`Expected \`metrics-port\` to be a port from 0 to 65535, got \`${metricsPort}\``);
  return {
    intervalMs,
    metricsPort,
    metricsHost: optionalString(args, 'metrics-host') ?? '127.0.0.1',
    top: integerFlag(args, 'top', 1, 10),
    maxAttempts: integerFlag(args, 'max-attempts', 1, 6),
    timeoutMs: numberFlag(args, 'timeout', 0.001, Infinity, 60) * 1000,
    quiet: args.quiet === true,
    connection: connectionOptions(args, io.env),
  };
}

export async function executeMonitor(options: MonitorCliOptions, io: CliIO): Promise<number> {
  const [{ openConnection }, { createTransport }, { pollOrganisation, runMonitorLoop }, { createOrgMetrics }, { serveMetrics }] = await Promise.all([
    import('./connection.js'),
    import('../pipeline/send/transport.js'),
    import('../org/monitor.js'),
    import('../observe/org-metrics.js'),
    import('../observe/metrics.js'),
  ]);
  const secrets = [io.env.OPENAI_API_KEY, io.env.OPENAI_ADMIN_KEY];
  const say = (text: string): void => void io.stderr.write(`oai-batch: ${redact(text, secrets)}\n`);

  const connection = await openConnection(options.connection, { adminKey: true });
  const transport = createTransport(connection.transport);
  const metrics = createOrgMetrics();
  let server: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  // Stops the loop on SIGINT/SIGTERM, or on a first poll that shows the key cannot work.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  io.signal.addEventListener('abort', onSignal, { once: true });
  if (io.signal.aborted) stop.abort();
  let fatal: unknown = null;
  try {
    try {
      server = await serveMetrics(metrics.registry, { host: options.metricsHost, port: options.metricsPort });
    } catch (error) {
      throw new ConfigError(`cannot serve metrics on ${options.metricsHost}:${options.metricsPort}: ${(error as Error).message}`);
    }
    say(`monitor: metrics at ${server.url}; polling the Usage and Costs APIs every ${formatDuration(options.intervalMs)} (Ctrl-C stops)`);

    let goodPolls = 0;
    await runMonitorLoop({
      intervalMs: options.intervalMs,
      signal: stop.signal,
      poll: (signal) =>
        pollOrganisation(transport, {
          top: options.top,
          timeoutMs: options.timeoutMs,
          maxAttempts: options.maxAttempts,
          signal,
          onRetry: ({ reason, waitMs, attempt }) => say(`monitor: ${reason}; attempt ${attempt} in ${(waitMs / 1000).toFixed(1)} s`),
        }),
      onSnapshot: (snapshot, tookMs) => {
        metrics.update(snapshot);
        goodPolls += 1;
        if (!options.quiet) say(pollLine(snapshot, tookMs));
      },
      onError: (error) => {
        metrics.pollFailed();
        if (goodPolls === 0 && (error instanceof AuthError || error instanceof ConfigError)) {
          fatal = error;
          stop.abort();
          return;
        }
        say(`monitor: poll failed, keeping the last values: ${(error as Error).message ?? String(error)}`);
      },
    });
  } finally {
    io.signal.removeEventListener('abort', onSignal);
    await server?.close();
    await transport.close();
    await connection.close();
  }
  if (fatal !== null) throw fatal;
  say('monitor: stopped');
  return 0;
}

function pollLine(snapshot: import('../org/snapshot.js').OrgSnapshot, tookMs: number): string {
  const sum = (period: 'today' | 'month'): number => snapshot.cost.filter((c) => c.period === period).reduce((a, c) => a + c.usd, 0);
  const f = snapshot.forecast;
  const usd = (x: number): string => `$${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  const asOf = new Date(snapshot.asOfSec * 1000).toISOString().replace('.000Z', 'Z');
  return `monitor: as of ${asOf}: today ${usd(sum('today'))}, month ${usd(sum('month'))}, forecast ${usd(f.expected)} (${usd(f.low)}–${usd(f.high)}) · ${(tookMs / 1000).toFixed(1)} s`;
}

export const monitorCommand = defineCommand<MonitorCliOptions>({
  command: 'monitor',
  describe: "serve the organisation's usage, cost, forecast and anomaly scores as Prometheus gauges (admin key), until stopped",
  builder: monitorBuilder,
  toOptions: monitorOptionsFromArgs,
  execute: executeMonitor,
});
