// A run's spans, sent to an export thread (span-worker.ts) that runs the
// OpenTelemetry SDK, so the run's own thread — the one that sends requests
// and writes answers — pays for a plain record per request and a copy of
// each batch of them, not for the SDK's span objects, their protobuf
// encoding and the garbage both leave behind. Measured by bench/otel.js: see
// the README's tracing-overhead table.
//
// In:  span records from the recorder (traces.ts).  Out: the same records,
// in order, on the export thread; close() waits for its report.

import { Worker } from 'node:worker_threads';
import type { ExportReport, RunSpanEnd, SpanAttributes, SpanRecord, SpanThreadData, SpanThreadMessage, SpanThreadReply, SpanWriter } from './span-record.js';
import type { OtlpProtocol } from './trace-settings.js';

/** Records sent in one message: one copy between threads per batch, not per request. */
const BATCH = 128;
/** A batch not yet full goes after this long, so a slow run's spans do not wait for the next ones. */
const BATCH_DELAY_MS = 200;

export class ThreadSpanWriter implements SpanWriter {
  readonly #worker: Worker;
  #pending: SpanRecord[] = [];
  #timer: NodeJS.Timeout | null = null;
  /** Why the export thread stopped early, if it did. */
  #failure: string | null = null;
  #reply: Promise<ExportReport>;

  /** `workerUrl`: the export thread's script (span-worker.js next to this module; tests pass their own). */
  constructor(protocol: OtlpProtocol, workerUrl: URL = new URL('./span-worker.js', import.meta.url)) {
    this.#worker = new Worker(workerUrl, { workerData: { protocol } satisfies SpanThreadData });
    // Until close() waits for it, the thread must not keep a finished process alive.
    this.#worker.unref();
    this.#reply = new Promise<ExportReport>((resolve) => {
      this.#worker.on('message', (reply: SpanThreadReply) => {
        if (reply.type === 'closed') resolve(reply.report);
      });
      this.#worker.on('error', (error) => {
        this.#failure = error.message;
      });
      this.#worker.on('exit', (code) => {
        // Without a report (it failed): what it exported before is not known, so none is counted.
        resolve({ exported: 0, lastError: `the trace export thread stopped: ${this.#failure ?? `it exited with code ${code} before its report`}` });
      });
    });
  }

  startRun(startTime: number, attributes: SpanAttributes): void {
    this.#post({ type: 'start_run', startTime, attributes });
  }

  write(record: SpanRecord): void {
    this.#pending.push(record);
    if (this.#pending.length >= BATCH) this.#flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => this.#flush(), BATCH_DELAY_MS);
      this.#timer.unref();
    }
  }

  endRun(end: RunSpanEnd): void {
    this.#post({ type: 'end_run', end });
  }

  async close(): Promise<ExportReport> {
    this.#post({ type: 'close' });
    this.#worker.ref();
    return this.#reply;
  }

  /** Sends a message after the records written before it. */
  #post(message: SpanThreadMessage): void {
    this.#flush();
    this.#worker.postMessage(message);
  }

  #flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pending.length === 0) return;
    const records = this.#pending;
    this.#pending = [];
    this.#worker.postMessage({ type: 'spans', records } satisfies SpanThreadMessage);
  }
}
