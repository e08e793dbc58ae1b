// JSON logs of a run (`--log-format json`): one JSON object per line, via pino.
//
// In:  run events (src/shared/events.ts) and a few notices from the CLI's
//      observers (metrics address, report written).
// Out: lines on the given stream, each {level, time, event, msg, ...fields}.
// Owns the log event names and shapes (listed in LOG_EVENTS), the
// throttling of progress lines, and keeping keys and bodies out of the log.
//
// pino writes each line with one synchronous stream.write (no worker thread,
// no buffer of its own), so nothing is held back when the process exits.

import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { ProgressSnapshot, RunEvent } from '../shared/events.js';
import { redact } from '../shared/redact.js';
import { exitCodeOf } from '../pipeline/summarise.js';

/** Every `event` value a line can carry. */
export const LOG_EVENTS = [
  'run_started',
  'input_problem',
  'request_started',
  'request_retried',
  'rate_limited',
  'request_finished',
  'progress',
  'stopping',
  'run_finished',
  'metrics_listening',
  'metrics_lingering',
  'report_written',
  'traces_exporting',
  'traces_exported',
  'error',
] as const;
export type LogEventName = (typeof LOG_EVENTS)[number];

export interface JsonLogOptions {
  /** Add the response body to request_finished lines (--log-bodies). Default false: bodies are never logged. */
  logBodies?: boolean;
  /** Strings scrubbed from every line (the API and admin keys), as a last line of defence. */
  secrets?: ReadonlyArray<string | undefined>;
  /** Least time between two progress lines, ms (progress events arrive every second). Default 10,000. */
  progressIntervalMs?: number;
  /** Clock for the progress throttle (tests). Default Date.now. */
  now?: () => number;
}

export interface JsonLog {
  /** Subscribe this to the run's events. */
  onEvent(event: RunEvent): void;
  /** A line of the CLI's own (not a run event), e.g. metrics_listening. */
  note(event: LogEventName, fields: Record<string, unknown>, message: string, level?: 'info' | 'warn' | 'error'): void;
}

export function createJsonLog(stream: Pick<Writable, 'write'>, options: JsonLogOptions = {}): JsonLog {
  const secrets = options.secrets ?? [];
  const logger: Logger = pino(
    {
      base: null,
      level: 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: (line) => redact(line, secrets) },
    },
    { write: (line: string) => void stream.write(line) },
  );
  const logBodies = options.logBodies ?? false;
  const progressIntervalMs = options.progressIntervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  let lastProgressAt = -Infinity;

  const line = (level: 'info' | 'warn' | 'error', event: LogEventName, fields: Record<string, unknown>, message: string): void => {
    logger[level]({ event, ...fields }, message);
  };

  const onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case 'started':
        line('info', 'run_started', { input: event.input, resumed: event.resumed, skipped_already: event.skippedAlready, started_at: event.at }, `run started: ${event.input}`);
        break;
      case 'input_problem':
        line(
          'warn',
          'input_problem',
          { custom_id: event.customId, request_id: null, line: event.line, code: event.code, message: event.message },
          `line ${event.line}: ${event.code}`,
        );
        break;
      case 'request_started':
        line(
          'info',
          'request_started',
          { custom_id: event.customId, request_id: null, line: event.line, model: event.model, endpoint: event.endpoint, attempt: event.attempt },
          `${event.customId}: attempt ${event.attempt}`,
        );
        break;
      case 'retry':
        line(
          'warn',
          'request_retried',
          {
            custom_id: event.customId,
            request_id: event.requestId,
            line: event.line,
            model: event.model,
            reason: event.reason,
            code: event.code,
            wait_ms: Math.round(event.waitMs),
            next_attempt: event.attempt,
          },
          `${event.customId}: ${event.code}, retrying in ${Math.round(event.waitMs)} ms`,
        );
        break;
      case 'rate_limited':
        line(
          'warn',
          'rate_limited',
          { custom_id: event.customId, request_id: event.requestId, model: event.model, wait_ms: Math.round(event.waitMs), paused_until: event.pausedUntil },
          `${event.model}: 429, paused for ${Math.round(event.waitMs)} ms`,
        );
        break;
      case 'request_finished': {
        const fields: Record<string, unknown> = {
          custom_id: event.customId,
          request_id: event.requestId,
          line: event.line,
          model: event.model,
          endpoint: event.endpoint,
          status: event.status,
          http_status: event.httpStatus,
          code: event.code,
          attempts: event.attempts,
          latency_ms: Math.round(event.latencyMs),
          usage: event.usage,
          cost_usd: event.costUsd,
        };
        if (event.cache) {
          fields.cache = event.cache;
          fields.saved_usd = event.savedUsd ?? null;
        }
        if (logBodies && event.body !== undefined) fields.body = event.body;
        const how =
          event.status !== 'succeeded'
            ? `failed: ${event.code ?? 'error'}`
            : event.cache
              ? `answered by the ${event.cache === 'hit' ? 'cache' : 'same request in this run'}, not bought`
              : `succeeded in ${Math.round(event.latencyMs)} ms`;
        line(event.status === 'succeeded' ? 'info' : 'warn', 'request_finished', fields, `${event.customId}: ${how}`);
        break;
      }
      case 'progress': {
        const at = now();
        if (at - lastProgressAt < progressIntervalMs) break;
        lastProgressAt = at;
        line('info', 'progress', progressFields(event.progress), progressMessage(event.progress));
        break;
      }
      case 'stopping':
        line('warn', 'stopping', { reason: event.reason, message: event.message }, event.message);
        break;
      case 'finished': {
        const s = event.summary;
        line(
          'info',
          'run_finished',
          { exit_code: exitCodeOf(s), summary: s },
          `${s.requests.succeeded} succeeded, ${s.requests.failed} failed, ${s.requests.pending} pending, $${s.cost_usd.total}`,
        );
        break;
      }
      case 'attempt':
        break; // every attempt ends in a retry, a 429 pause or a finish line: those say it.
    }
  };

  return { onEvent, note: (event, fields, message, level = 'info') => line(level, event, fields, message) };
}

function progressFields(p: ProgressSnapshot): Record<string, unknown> {
  const limits: Record<string, unknown> = {};
  for (const [model, state] of Object.entries(p.limits)) {
    limits[model] = {
      rpm: state.rpm === null ? null : Math.round(state.rpm),
      tpm: state.tpm === null ? null : Math.round(state.tpm),
      source: state.source,
      paused_until: state.pausedUntil === null ? null : new Date(state.pausedUntil).toISOString(),
    };
  }
  return {
    elapsed_seconds: round(p.elapsedSeconds, 1),
    lines_total: p.linesTotal,
    lines_done: p.linesDone,
    fraction: p.fraction === null ? null : round(p.fraction, 4),
    eta_seconds: p.etaSeconds === null ? null : Math.round(p.etaSeconds),
    lines_read: p.linesRead,
    succeeded: p.succeeded,
    failed: p.failed,
    skipped: p.skipped,
    reused: p.reused,
    in_flight: p.inFlight,
    queued: p.queued,
    retries: p.retries,
    rate_limited: p.rateLimited,
    cost_usd: p.costUsd,
    requests_per_minute: Math.round(p.requestsPerMinute),
    tokens_per_minute: Math.round(p.tokensPerMinute),
    concurrency_limit: p.concurrencyLimit,
    limits,
  };
}

function progressMessage(p: ProgressSnapshot): string {
  return `${p.succeeded} succeeded, ${p.failed} failed, ${p.inFlight} in flight, ${Math.round(p.requestsPerMinute)} req/min`;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
