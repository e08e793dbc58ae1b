// Observers of a run (DESIGN.md §3, §8): Prometheus metrics (--metrics-port),
// JSON logs on stderr (--log-format json), the HTML report (--report) and
// OpenTelemetry traces (--otel or the OTEL_* variables).
//
// In:  the run command's options, its IO, and the list of event listeners to
//      join.  Out: finish(summary) once the run returned, close() always.
// Owns the order: the metrics endpoint is up before the first request and
// stays up --metrics-linger seconds after the run; every span is flushed
// before the process exits; the modules that do the work (src/observe/*) are
// imported only when their flag is given.

import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../shared/errors.js';
import type { EventListener } from '../shared/events.js';
import type { Summary } from '../shared/types.js';
import type { LogEventName } from '../observe/logs.js';
import type { TraceSettings } from '../observe/trace-settings.js';
import type { CliIO } from './command.js';

/** The run flags the observers read (the run command's options satisfy it). */
export interface ObserverOptions {
  logFormat: 'text' | 'json';
  logBodies: boolean;
  metricsPort: number | undefined;
  metricsHost: string;
  metricsLingerSeconds: number;
  reportPath: string | undefined;
  /** Whether and how to export traces: `--otel` and the OTEL_* variables (src/observe/trace-settings.ts). */
  tracing: TraceSettings;
  /** The API base URL requests go to (span attributes server.address/port). */
  serverUrl?: string | undefined;
}

export interface RunObservers {
  /** The run returned its summary: write the report. */
  finish(summary: Summary): Promise<void>;
  /** Always called last: lingers for a last scrape, then stops the metrics endpoint. */
  close(): Promise<void>;
}

export async function attachRunObservers(options: ObserverOptions, io: CliIO, listeners: EventListener[]): Promise<RunObservers> {
  if (options.logBodies && options.logFormat !== 'json') {
    throw new ConfigError('--log-bodies needs --log-format json (text logs never show bodies)');
  }
  const finishers: Array<(summary: Summary) => Promise<void>> = [];
  const closers: Array<() => Promise<void>> = [];

  let say = (_event: LogEventName, _fields: Record<string, unknown>, text: string): void => {
    io.stderr.write(`oai-batch: ${text}\n`);
  };
  if (options.logFormat === 'json') {
    const { createJsonLog } = await import('../observe/logs.js');
    const log = createJsonLog(io.stderr, { logBodies: options.logBodies, secrets: [io.env.OPENAI_API_KEY, io.env.OPENAI_ADMIN_KEY] });
    listeners.push(log.onEvent);
    say = (event, fields, text) => log.note(event, fields, text);
  }

  if (options.metricsPort !== undefined) {
    const { createRunMetrics, serveMetrics } = await import('../observe/metrics.js');
    const metrics = createRunMetrics();
    listeners.push(metrics.onEvent);
    const { metricsHost: host, metricsPort: port } = options;
    let server: Awaited<ReturnType<typeof serveMetrics>>;
    try {
      server = await serveMetrics(metrics.registry, { host, port });
    } catch (error) {
      throw new ConfigError(`cannot serve metrics on ${host}:${port}: ${(error as Error).message}`);
    }
    say('metrics_listening', { url: server.url, host: server.host, port: server.port }, `metrics at ${server.url}`);
    closers.push(async () => {
      const lingerMs = options.metricsLingerSeconds * 1000;
      if (lingerMs > 0) {
        say('metrics_lingering', { url: server.url, seconds: options.metricsLingerSeconds }, `metrics stay up ${options.metricsLingerSeconds} s for a last scrape (Ctrl-C ends it)`);
        await lingerFor(lingerMs, io);
      }
      await server.close();
    });
  }

  const { tracing } = options;
  if (tracing.enabled) {
    const { createRunTracer } = await import('../observe/traces.js');
    const tracer = await createRunTracer({ protocol: tracing.protocol, serverUrl: options.serverUrl });
    listeners.push(tracer.onEvent);
    const where = { endpoint: tracing.endpoint, protocol: tracing.protocol };
    say('traces_exporting', { ...where, because: tracing.because }, `traces to ${tracing.endpoint} (OTLP ${tracing.protocol})`);
    closers.push(async () => {
      const report = await tracer.close();
      const lost = report.spans - report.exported;
      if (lost > 0) {
        say('traces_exported', { ...where, ...report }, `traces: ${lost} of ${report.spans} spans did not reach ${tracing.endpoint}${report.lastError ? `: ${report.lastError}` : ''}`);
      } else {
        say('traces_exported', { ...where, ...report }, `traces: ${report.exported} spans exported`);
      }
    });
  }

  if (options.reportPath !== undefined) {
    const reportPath = options.reportPath;
    // Found out now, not after a long run: the report is written at the end.
    const folder = dirname(resolvePath(io.cwd, reportPath));
    try {
      await access(folder, fsConstants.W_OK);
    } catch {
      throw new ConfigError(`cannot write the report ${reportPath}: the folder ${folder} does not exist or is not writable`);
    }
    const [{ RunTimeline }, { renderRunReport }, { writeFileAtomic }] = await Promise.all([
      import('../observe/timeline.js'),
      import('../observe/report.js'),
      import('../pipeline/record/writer.js'),
    ]);
    const timeline = new RunTimeline();
    listeners.push(timeline.onEvent);
    finishers.push(async (summary) => {
      await writeFileAtomic(reportPath, renderRunReport({ summary, series: timeline.series(), latency: timeline.latency() }));
      say('report_written', { path: reportPath }, `report written to ${reportPath}`);
    });
  }

  return {
    finish: async (summary) => {
      for (const finish of finishers) await finish(summary);
    },
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

/** Waits `ms`, cut short by a signal that arrives meanwhile (one that stopped the run already does not count). */
async function lingerFor(ms: number, io: CliIO): Promise<void> {
  const signals = [io.force, ...(io.signal.aborted ? [] : [io.signal])];
  try {
    await sleep(ms, undefined, { signal: AbortSignal.any(signals) });
  } catch {
    // a signal: stop lingering
  }
}
