// OpenTelemetry traces of a run (DESIGN.md §8): one span for the run and one
// per request, its attempts, retries and 429 pauses as span events, exported
// over OTLP/HTTP (protobuf or JSON) by the official SDK.
//
// In:  run events (src/shared/events.ts).  Out: spans, batched to the OTLP
// endpoint; close() ends what is still open, flushes and reports counts.
// Owns the span names and attributes: OpenTelemetry's GenAI semantic
// conventions (gen_ai.*, error.type, http.response.status_code, server.*)
// plus oai_batch.*. Never a prompt or an answer: of a response body only its
// id and model are read. Imported only when tracing is on
// (src/cli/observe.ts), so runs without it never load the SDK.

import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { RunEvent } from '../shared/events.js';
import type { Endpoint, Summary } from '../shared/types.js';
import { VERSION } from '../shared/version.js';
import type { OtlpProtocol } from './trace-settings.js';

export interface RunTracerOptions {
  protocol: OtlpProtocol;
  /** The API base URL, for server.address and server.port. */
  serverUrl?: string | undefined;
  /** Spans go here instead of an OTLP exporter (tests). */
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
 * A run's span queue: 8× the SDK's default of 2,048, so a fast run (several
 * thousand answers a second at zero latency) does not outrun the exporter
 * between two batches. OTEL_BSP_MAX_QUEUE_SIZE still overrides it.
 */
const DEFAULT_MAX_QUEUE_SIZE = 16_384;

export async function createRunTracer(options: RunTracerOptions): Promise<RunTracer> {
  const counting = new CountingExporter(options.exporter ?? (await otlpExporter(options.protocol)));
  const resource = resourceFromAttributes({ 'service.name': 'oai-batch', 'service.version': VERSION }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(counting, process.env.OTEL_BSP_MAX_QUEUE_SIZE ? {} : { maxQueueSize: DEFAULT_MAX_QUEUE_SIZE })],
  });
  const tracer = provider.getTracer('oai-batch', VERSION);
  const server = serverAttributes(options.serverUrl);
  return new RunTraceRecorder(tracer, server, counting, provider);
}

/**
 * The official OTLP/HTTP exporter of the encoding asked for (only that one is
 * loaded), configured by the standard OTEL_EXPORTER_OTLP_* variables alone.
 * Compression too: none unless OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION=gzip,
 * the standard's default. Measured at zero latency against a collector on
 * loopback (`node bench/otel.js --also OTEL_EXPORTER_OTLP_COMPRESSION=gzip`),
 * gzip cost the client ~15 µs of CPU a request on average over four paired
 * runs (zlib's threads) to save ~350 bytes a span: worth it over a slow link,
 * not to a local collector.
 */
async function otlpExporter(protocol: OtlpProtocol): Promise<SpanExporter> {
  if (protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter();
}

function serverAttributes(url: string | undefined): Attributes {
  if (url === undefined) return {};
  try {
    const parsed = new URL(url);
    const port = parsed.port !== '' ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
    return { 'server.address': parsed.hostname.replace(/^\[|\]$/g, ''), 'server.port': port };
  } catch {
    return {};
  }
}

/** Counts what the exporter accepted, and its last error, so a run can say when its traces did not arrive. */
class CountingExporter implements SpanExporter {
  exported = 0;
  lastError: string | null = null;
  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS is 0 (@opentelemetry/core).
      if (result.code === 0) this.exported += spans.length;
      else this.lastError = result.error?.message ?? 'export failed';
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** A request in flight: its span, its current attempt number and what happened so far (span events, maybe). */
interface OpenRequest {
  span: Span;
  attempt: number;
  history: HistoryEntry[] | null;
}

type HistoryEntry =
  | { kind: 'attempt'; attempt: number; event: Extract<RunEvent, { type: 'attempt' }>; timeMs: number }
  | { kind: 'retry'; event: Extract<RunEvent, { type: 'retry' }>; timeMs: number }
  | { kind: 'rate_limited'; event: Extract<RunEvent, { type: 'rate_limited' }>; timeMs: number };

class RunTraceRecorder implements RunTracer {
  #run: { span: Span; context: Context } | null = null;
  readonly #requests = new Map<string, OpenRequest>();
  #ended = 0;

  constructor(
    private readonly tracer: Tracer,
    private readonly server: Attributes,
    private readonly exporter: CountingExporter,
    private readonly provider: BasicTracerProvider,
  ) {}

  onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case 'started':
        this.#runSpan({ 'oai_batch.input': event.input, 'oai_batch.resumed': event.resumed, 'oai_batch.skipped_already': event.skippedAlready });
        break;
      case 'request_started': {
        const open = this.#requests.get(event.customId);
        if (open) open.attempt = event.attempt;
        else this.#requests.set(event.customId, { span: this.#requestSpan(event), attempt: event.attempt, history: null });
        break;
      }
      case 'attempt': {
        // Kept raw: most requests answer at their first attempt and never need it as an event.
        const open = this.#requests.get(event.customId);
        if (open) (open.history ??= []).push({ kind: 'attempt', attempt: open.attempt, event, timeMs: Date.now() });
        break;
      }
      case 'retry': {
        const open = this.#requests.get(event.customId);
        if (open) (open.history ??= []).push({ kind: 'retry', event, timeMs: Date.now() });
        break;
      }
      case 'rate_limited': {
        const open = this.#requests.get(event.customId);
        if (open) (open.history ??= []).push({ kind: 'rate_limited', event, timeMs: Date.now() });
        break;
      }
      case 'request_finished': {
        // No span yet: nothing was sent (an answer from --cache or --dedup, or a failure before any attempt).
        const open = this.#requests.get(event.customId) ?? { span: this.#requestSpan(event), attempt: 0, history: null };
        this.#requests.delete(event.customId);
        const { span } = open;
        const attributes: Attributes = { 'oai_batch.attempts': event.attempts };
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
        if (event.status === 'failed') {
          attributes['error.type'] = event.code ?? (event.httpStatus !== null ? `http_${event.httpStatus}` : '_OTHER');
          span.setStatus({ code: SpanStatusCode.ERROR, message: event.code ?? 'failed' });
        }
        span.setAttributes(attributes);
        this.#addHistory(open);
        this.#end(span);
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
      open.span.setAttribute('error.type', 'unfinished');
      open.span.setStatus({ code: SpanStatusCode.ERROR, message: 'the run stopped before this request finished' });
      this.#addHistory(open, true);
      this.#end(open.span);
    }
    this.#requests.clear();
    if (this.#run) {
      this.#run.span.setStatus({ code: SpanStatusCode.ERROR, message: 'the run ended without a summary' });
      this.#end(this.#run.span);
      this.#run = null;
    }
    // shutdown() flushes the processor's queue first: every ended span is exported (or counted as failed).
    let shutdownError: string | null = null;
    try {
      await this.provider.shutdown();
    } catch (error) {
      // An unreachable collector must not fail the run: its spans are reported as lost.
      shutdownError = error instanceof Error ? error.message : String(error);
    }
    const { exported } = this.exporter;
    return { spans: this.#ended, exported, failed: this.#ended - exported, lastError: this.exporter.lastError ?? shutdownError };
  }

  /** A request's client span, named and attributed by the GenAI conventions, under the run span. */
  #requestSpan(event: { customId: string; model: string; endpoint: Endpoint }): Span {
    const operation = OPERATION[event.endpoint] ?? event.endpoint;
    return this.tracer.startSpan(
      `${operation} ${event.model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'gen_ai.operation.name': operation,
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': event.model,
          'oai_batch.custom_id': event.customId,
        },
      },
      this.#runSpan().context,
    );
  }

  #runSpan(attributes: Attributes = {}): { span: Span; context: Context } {
    if (!this.#run) {
      const span = this.tracer.startSpan('oai-batch run', { kind: SpanKind.INTERNAL, attributes: { ...attributes, ...this.server } }, context.active());
      this.#run = { span, context: trace.setSpan(context.active(), span) };
    }
    return this.#run;
  }

  #finishRun(summary: Summary): void {
    const run = this.#runSpan();
    // run_cost_usd (this run alone) where the summary has it; else the file's total.
    const cost = (summary as Summary & { run_cost_usd?: number }).run_cost_usd ?? summary.cost_usd.total;
    run.span.setAttributes({
      'oai_batch.requests.total': summary.requests.total,
      'oai_batch.requests.succeeded': summary.requests.succeeded,
      'oai_batch.requests.failed': summary.requests.failed,
      'oai_batch.requests.pending': summary.requests.pending,
      'oai_batch.attempts': summary.attempts.total,
      'oai_batch.rate_limited': summary.attempts.rate_limited,
      'gen_ai.usage.input_tokens': summary.usage.input_tokens,
      'gen_ai.usage.output_tokens': summary.usage.output_tokens,
      'oai_batch.cost_usd': cost,
    });
    if (summary.stopped_reason !== null) {
      run.span.setAttribute('oai_batch.stopped_reason', summary.stopped_reason);
      run.span.setStatus({ code: SpanStatusCode.ERROR, message: `stopped: ${summary.stopped_reason}` });
    }
    this.#end(run.span);
    this.#run = null;
  }

  /**
   * The attempts, retries and 429 pauses as span events, when there was more
   * than the one attempt that answered: a request answered at its first
   * attempt is that attempt (the span carries its status and duration), and
   * skipping its event keeps tracing cheap at thousands of requests a second.
   */
  #addHistory(open: OpenRequest, always = false): void {
    const history = open.history;
    if (history === null || (!always && history.length <= 1)) return;
    for (const entry of history) {
      if (entry.kind === 'attempt') {
        const { event } = entry;
        const status = /^\d{3}$/.test(event.code) ? Number(event.code) : null;
        const attributes: Attributes = { 'oai_batch.attempt': entry.attempt, 'oai_batch.latency_ms': Math.round(event.latencyMs) };
        if (status !== null) attributes['http.response.status_code'] = status;
        if (status === null || status >= 400) attributes['error.type'] = event.code;
        if (event.requestId !== null) attributes['oai_batch.request_id'] = event.requestId;
        open.span.addEvent('oai_batch.attempt', attributes, entry.timeMs);
      } else if (entry.kind === 'retry') {
        const { event } = entry;
        open.span.addEvent(
          'oai_batch.retry',
          { 'oai_batch.reason': event.reason, 'error.type': event.code, 'oai_batch.wait_ms': Math.round(event.waitMs), 'oai_batch.attempt': event.attempt },
          entry.timeMs,
        );
      } else {
        open.span.addEvent('oai_batch.rate_limited', { 'oai_batch.wait_ms': Math.round(entry.event.waitMs) }, entry.timeMs);
      }
    }
  }

  #end(span: Span): void {
    span.end();
    this.#ended += 1;
  }
}
