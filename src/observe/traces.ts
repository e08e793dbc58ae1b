// OpenTelemetry traces of a run (DESIGN.md §8): one span for the run and one
// per request, its attempts, retries and 429 pauses as span events, exported
// over OTLP/HTTP (protobuf or JSON) by the official SDK.
//
// In:  run events (src/shared/events.ts).  Out: span records (span-record.ts)
// to the SDK on an export thread (span-thread.ts); close() ends what is still
// open, flushes and reports counts. Owns the span names and attributes:
// OpenTelemetry's GenAI semantic conventions (gen_ai.*, error.type,
// http.response.status_code, server.*) plus oai_batch.*. Never a prompt or an
// answer: of a response body only its id and model are read. Imported only
// when tracing is on (src/cli/observe.ts); the SDK itself (span-export.ts)
// loads on the export thread, never on the run's.

import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { RunEvent } from '../shared/events.js';
import type { Endpoint, Summary } from '../shared/types.js';
import { spanClock, type SpanAttributes, type SpanEventRecord, type SpanRecord, type SpanWriter } from './span-record.js';
import type { OtlpProtocol } from './trace-settings.js';

export interface RunTracerOptions {
  protocol: OtlpProtocol;
  /** The API base URL, for server.address and server.port. */
  serverUrl?: string | undefined;
  /** Spans go here, on this thread, instead of an OTLP exporter on the export thread (tests). */
  exporter?: SpanExporter;
}

export interface TraceReport {
  /** Spans ended (run + requests). */
  spans: number;
  /** Spans the endpoint accepted. */
  exported: number;
  /** Spans ended but not accepted: refused, never answered, or dropped from a full queue. */
  failed: number;
  /** The last export error, if any. */
  lastError: string | null;
}

export interface RunTracer {
  onEvent(event: RunEvent): void;
  /** Ends the run span and any request still open (a stopped run), flushes every span, shuts the exporter down. */
  close(): Promise<TraceReport>;
}

/** gen_ai.operation.name per endpoint (GenAI semantic conventions; moderations has no well-known value). */
const OPERATION: Readonly<Record<Endpoint, string>> = {
  '/v1/chat/completions': 'chat',
  '/v1/responses': 'chat',
  '/v1/embeddings': 'embeddings',
  '/v1/completions': 'text_completion',
  '/v1/moderations': 'moderations',
};

/**
 * A run's tracer. The SDK makes and exports the spans on an export thread
 * (span-thread.ts), or on this thread when a test passes `exporter`.
 */
export async function createRunTracer(options: RunTracerOptions): Promise<RunTracer> {
  let writer: SpanWriter;
  if (options.exporter) {
    const { createSdkSpanWriter } = await import('./span-export.js');
    writer = await createSdkSpanWriter(options.protocol, options.exporter);
  } else {
    const { ThreadSpanWriter } = await import('./span-thread.js');
    writer = new ThreadSpanWriter(options.protocol);
  }
  return new RunTraceRecorder(writer, serverAttributes(options.serverUrl));
}

/** The attributes a request span starts with: the GenAI conventions' request side, and its custom_id. */
function requestAttributes(event: { customId: string; model: string; endpoint: Endpoint }): SpanAttributes {
  return {
    'gen_ai.operation.name': OPERATION[event.endpoint] ?? event.endpoint,
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': event.model,
    'oai_batch.custom_id': event.customId,
  };
}

function serverAttributes(url: string | undefined): SpanAttributes {
  if (url === undefined) return {};
  try {
    const parsed = new URL(url);
    const port = parsed.port !== '' ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
    return { 'server.address': parsed.hostname.replace(/^\[|\]$/g, ''), 'server.port': port };
  } catch {
    return {};
  }
}

/**
 * A request in flight: when it started, its current attempt and what
 * happened so far. Its span is made only when it ends (a record to the
 * writer), so nothing of it lives in the SDK while the request is open.
 */
interface OpenRequest {
  started: Extract<RunEvent, { type: 'request_started' }>;
  startTime: number;
  attempt: number;
  history: HistoryEntry[] | null;
}

type HistoryEntry =
  | { kind: 'attempt'; attempt: number; event: Extract<RunEvent, { type: 'attempt' }>; time: number }
  | { kind: 'retry'; event: Extract<RunEvent, { type: 'retry' }>; time: number }
  | { kind: 'rate_limited'; event: Extract<RunEvent, { type: 'rate_limited' }>; time: number };

class RunTraceRecorder implements RunTracer {
  #run: 'not_started' | 'open' | 'ended' = 'not_started';
  readonly #requests = new Map<string, OpenRequest>();
  #ended = 0;

  constructor(
    private readonly writer: SpanWriter,
    private readonly server: SpanAttributes,
  ) {}

  onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case 'started':
        this.#startRun({ 'oai_batch.input': event.input, 'oai_batch.resumed': event.resumed, 'oai_batch.skipped_already': event.skippedAlready });
        break;
      case 'request_started': {
        const open = this.#requests.get(event.customId);
        if (open) open.attempt = event.attempt;
        else this.#requests.set(event.customId, { started: event, startTime: spanClock(), attempt: event.attempt, history: null });
        break;
      }
      case 'attempt': {
        // Kept raw: most requests answer at their first attempt and never need it as an event.
        const open = this.#requests.get(event.customId);
        if (open) (open.history ??= []).push({ kind: 'attempt', attempt: open.attempt, event, time: spanClock() });
        break;
      }
      case 'retry': {
        const open = this.#requests.get(event.customId);
        if (open) (open.history ??= []).push({ kind: 'retry', event, time: spanClock() });
        break;
      }
      case 'rate_limited': {
        const open = this.#requests.get(event.customId);
        if (open) (open.history ??= []).push({ kind: 'rate_limited', event, time: spanClock() });
        break;
      }
      case 'request_finished': {
        // Never started: nothing was sent (an answer from --cache or --dedup, or a failure before any attempt).
        const open = this.#requests.get(event.customId);
        this.#requests.delete(event.customId);
        const attributes = requestAttributes(event);
        attributes['oai_batch.attempts'] = event.attempts;
        if (event.cache !== undefined) {
          // Not bought: its usage is what was saved, so it is not reported as gen_ai.usage.
          attributes['oai_batch.cache'] = event.cache;
          if (event.savedUsd !== undefined && event.savedUsd !== null) attributes['oai_batch.saved_usd'] = event.savedUsd;
        }
        if (event.httpStatus !== null) attributes['http.response.status_code'] = event.httpStatus;
        const body = event.body as { id?: unknown; model?: unknown } | null | undefined;
        // Of the body, its id and model only: never its content.
        if (typeof body?.id === 'string') attributes['gen_ai.response.id'] = body.id;
        if (typeof body?.model === 'string') attributes['gen_ai.response.model'] = body.model;
        if (event.usage && event.cache === undefined) {
          attributes['gen_ai.usage.input_tokens'] = event.usage.input_tokens;
          attributes['gen_ai.usage.output_tokens'] = event.usage.output_tokens;
        }
        if (event.costUsd !== null) attributes['oai_batch.cost_usd'] = event.costUsd;
        let error: string | null = null;
        if (event.status === 'failed') {
          attributes['error.type'] = event.code ?? (event.httpStatus !== null ? `http_${event.httpStatus}` : '_OTHER');
          error = event.code ?? 'failed';
        }
        this.#endRequest(event.model, open, attributes, error);
        break;
      }
      case 'finished':
        this.#finishRun(event.summary);
        break;
      default:
        break;
    }
  };

  async close(): Promise<TraceReport> {
    // A run that stopped early leaves requests unfinished: they end here, marked as such.
    for (const open of this.#requests.values()) {
      const attributes = requestAttributes(open.started);
      attributes['error.type'] = 'unfinished';
      this.#endRequest(open.started.model, open, attributes, 'the run stopped before this request finished', true);
    }
    this.#requests.clear();
    if (this.#run === 'open') this.#endRun({}, 'the run ended without a summary');
    const { exported, lastError } = await this.writer.close();
    return { spans: this.#ended, exported, failed: this.#ended - exported, lastError };
  }

  /** A request's client span, from its start (or now, if it never started) until now, under the run span. */
  #endRequest(model: string, open: OpenRequest | undefined, attributes: SpanAttributes, error: string | null, allHistory = false): void {
    this.#startRun();
    const endTime = spanClock();
    const record: SpanRecord = {
      name: `${attributes['gen_ai.operation.name']} ${model}`,
      startTime: open?.startTime ?? endTime,
      endTime,
      attributes,
      error,
      events: open ? historyEvents(open, allHistory) : null,
    };
    this.writer.write(record);
    this.#ended += 1;
  }

  /** Starts the run span, unless it has started (a request event can come before `started`). */
  #startRun(attributes: SpanAttributes = {}): void {
    if (this.#run !== 'not_started') return;
    this.writer.startRun(spanClock(), { ...attributes, ...this.server });
    this.#run = 'open';
  }

  #finishRun(summary: Summary): void {
    this.#startRun();
    if (this.#run !== 'open') return; // one summary per run
    // run_cost_usd (this run alone) where the summary has it; else the file's total.
    const cost = (summary as Summary & { run_cost_usd?: number }).run_cost_usd ?? summary.cost_usd.total;
    const attributes: SpanAttributes = {
      'oai_batch.requests.total': summary.requests.total,
      'oai_batch.requests.succeeded': summary.requests.succeeded,
      'oai_batch.requests.failed': summary.requests.failed,
      'oai_batch.requests.pending': summary.requests.pending,
      'oai_batch.attempts': summary.attempts.total,
      'oai_batch.rate_limited': summary.attempts.rate_limited,
      'gen_ai.usage.input_tokens': summary.usage.input_tokens,
      'gen_ai.usage.output_tokens': summary.usage.output_tokens,
      'oai_batch.cost_usd': cost,
    };
    if (summary.stopped_reason !== null) attributes['oai_batch.stopped_reason'] = summary.stopped_reason;
    this.#endRun(attributes, summary.stopped_reason !== null ? `stopped: ${summary.stopped_reason}` : null);
  }

  #endRun(attributes: SpanAttributes, error: string | null): void {
    this.writer.endRun({ endTime: spanClock(), attributes, error });
    this.#run = 'ended';
    this.#ended += 1;
  }
}

/**
 * The attempts, retries and 429 pauses as span events, when there was more
 * than the one attempt that answered: a request answered at its first
 * attempt is that attempt (the span carries its status and duration), and
 * skipping its event keeps tracing cheap at thousands of requests a second.
 */
function historyEvents(open: OpenRequest, always: boolean): SpanEventRecord[] | null {
  const history = open.history;
  if (history === null || (!always && history.length <= 1)) return null;
  return history.map((entry): SpanEventRecord => {
    if (entry.kind === 'attempt') {
      const { event } = entry;
      const status = /^\d{3}$/.test(event.code) ? Number(event.code) : null;
      const attributes: SpanAttributes = { 'oai_batch.attempt': entry.attempt, 'oai_batch.latency_ms': Math.round(event.latencyMs) };
      if (status !== null) attributes['http.response.status_code'] = status;
      if (status === null || status >= 400) attributes['error.type'] = event.code;
      if (event.requestId !== null) attributes['oai_batch.request_id'] = event.requestId;
      return { name: 'oai_batch.attempt', attributes, time: entry.time };
    }
    if (entry.kind === 'retry') {
      const { event } = entry;
      return {
        name: 'oai_batch.retry',
        attributes: { 'oai_batch.reason': event.reason, 'error.type': event.code, 'oai_batch.wait_ms': Math.round(event.waitMs), 'oai_batch.attempt': event.attempt },
        time: entry.time,
      };
    }
    return { name: 'oai_batch.rate_limited', attributes: { 'oai_batch.wait_ms': Math.round(entry.event.waitMs) }, time: entry.time };
  });
}
