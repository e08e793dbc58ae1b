// The shapes a run's spans take between the recorder (traces.ts, on the run's
// thread) and the OpenTelemetry SDK (span-export.ts, on the export thread):
// plain data, cheap to copy between threads, nothing of the SDK in them.
// Times are Unix epoch milliseconds with a fraction (performance.timeOrigin +
// performance.now()), so a span's duration keeps the monotonic clock's precision.

import type { OtlpProtocol } from './trace-settings.js';

/** Attribute values a span here carries (OpenTelemetry allows arrays too; we use none). */
export type SpanAttributes = Record<string, string | number | boolean>;

export interface SpanEventRecord {
  name: string;
  attributes: SpanAttributes;
  time: number;
}

/** A request's finished client span, a child of the run span. */
export interface SpanRecord {
  name: string;
  startTime: number;
  endTime: number;
  attributes: SpanAttributes;
  /** The status message of a failed request (status ERROR); null when it did not fail. */
  error: string | null;
  /** Attempts, retries and 429 pauses, when there was more than the one attempt that answered. */
  events: SpanEventRecord[] | null;
}

/** How the run span ends. */
export interface RunSpanEnd {
  endTime: number;
  attributes: SpanAttributes;
  error: string | null;
}

/** What the exporter accepted: spans, and the last export error if any. */
export interface ExportReport {
  exported: number;
  lastError: string | null;
}

/** Where the recorder's spans go: the SDK itself (span-export.ts), or a thread running it (span-thread.ts). */
export interface SpanWriter {
  startRun(startTime: number, attributes: SpanAttributes): void;
  /** A request span, under the run span (started first). */
  write(record: SpanRecord): void;
  endRun(end: RunSpanEnd): void;
  /** Exports every span written, shuts the exporter down. Never rejects: a collector that is not there is an error in the report. */
  close(): Promise<ExportReport>;
}

/** Messages to the export thread, in the order the recorder wrote them. */
export type SpanThreadMessage =
  | { type: 'start_run'; startTime: number; attributes: SpanAttributes }
  | { type: 'spans'; records: SpanRecord[] }
  | { type: 'end_run'; end: RunSpanEnd }
  | { type: 'close' };

/** The export thread's answer to `close`. */
export type SpanThreadReply = { type: 'closed'; report: ExportReport };

/** The export thread's start-up data. */
export interface SpanThreadData {
  protocol: OtlpProtocol;
}

/** The current time on the clock of SpanRecord. */
export function spanClock(): number {
  return performance.timeOrigin + performance.now();
}
