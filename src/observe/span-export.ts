// The OpenTelemetry SDK's side of a run's traces (DESIGN.md §8): span records
// (span-record.ts) become SDK spans — the run span, and request spans under it
// — batched by the SDK's BatchSpanProcessor to the official OTLP/HTTP
// exporter (protobuf or JSON). The only module that imports the SDK. It runs
// on the export thread (span-worker.ts), or on the run's own thread when a
// test hands it an exporter.
//
// In:  span records, in order.  Out: spans at the OTLP endpoint; close()
// flushes, shuts down and says how many the endpoint accepted.

import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { VERSION } from '../shared/version.js';
import type { ExportReport, RunSpanEnd, SpanAttributes, SpanRecord, SpanWriter } from './span-record.js';
import type { OtlpProtocol } from './trace-settings.js';

/**
 * A run's span queue: 8× the SDK's default of 2,048, so a fast run (several
 * thousand answers a second at zero latency) does not outrun the exporter
 * between two batches. OTEL_BSP_MAX_QUEUE_SIZE still overrides it.
 */
const DEFAULT_MAX_QUEUE_SIZE = 16_384;

/** Spans made by the SDK and exported over OTLP/HTTP (or to `exporter`, in tests). */
export async function createSdkSpanWriter(protocol: OtlpProtocol, exporter?: SpanExporter): Promise<SpanWriter> {
  const counting = new CountingExporter(exporter ?? (await otlpExporter(protocol)));
  const resource = resourceFromAttributes({ 'service.name': 'oai-batch', 'service.version': VERSION }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(counting, process.env.OTEL_BSP_MAX_QUEUE_SIZE ? {} : { maxQueueSize: DEFAULT_MAX_QUEUE_SIZE })],
  });
  return new SdkSpanWriter(provider.getTracer('oai-batch', VERSION), provider, counting);
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

class SdkSpanWriter implements SpanWriter {
  #run: Span | null = null;
  /** The run span's context, kept after it ends: requests a stopped run leaves open still end under it. */
  #runContext: Context = ROOT_CONTEXT;

  constructor(
    private readonly tracer: Tracer,
    private readonly provider: BasicTracerProvider,
    private readonly exporter: CountingExporter,
  ) {}

  startRun(startTime: number, attributes: SpanAttributes): void {
    const span = this.tracer.startSpan('oai-batch run', { kind: SpanKind.INTERNAL, startTime, attributes }, context.active());
    this.#run = span;
    this.#runContext = trace.setSpan(context.active(), span);
  }

  write(record: SpanRecord): void {
    const span = this.tracer.startSpan(record.name, { kind: SpanKind.CLIENT, startTime: record.startTime, attributes: record.attributes }, this.#runContext);
    if (record.events !== null) for (const event of record.events) span.addEvent(event.name, event.attributes, event.time);
    if (record.error !== null) span.setStatus({ code: SpanStatusCode.ERROR, message: record.error });
    span.end(record.endTime);
  }

  endRun(end: RunSpanEnd): void {
    const run = this.#run;
    if (run === null) return;
    run.setAttributes(end.attributes);
    if (end.error !== null) run.setStatus({ code: SpanStatusCode.ERROR, message: end.error });
    run.end(end.endTime);
    this.#run = null;
  }

  async close(): Promise<ExportReport> {
    // shutdown() flushes the processor's queue first: every ended span is exported (or counted as failed).
    let shutdownError: string | null = null;
    try {
      await this.provider.shutdown();
    } catch (error) {
      // An unreachable collector must not fail the run: its spans are reported as lost.
      shutdownError = error instanceof Error ? error.message : String(error);
    }
    return { exported: this.exporter.exported, lastError: this.exporter.lastError ?? shutdownError };
  }
}
