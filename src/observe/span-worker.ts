// The export thread of a run's traces (started by span-thread.ts): span
// records in, the OpenTelemetry SDK (span-export.ts) makes, batches and
// exports the spans, and `close` answers with what the endpoint accepted.
// Its environment is the run's, so the SDK reads the same OTEL_* variables.

import { parentPort, workerData } from 'node:worker_threads';
import type { SpanThreadData, SpanThreadMessage, SpanThreadReply, SpanWriter } from './span-record.js';

const port = parentPort;
if (port === null) throw new Error('span-worker.js runs as a worker thread (span-thread.ts starts it)');

const { protocol } = workerData as SpanThreadData;
const { createSdkSpanWriter } = await import('./span-export.js');
const writer: SpanWriter = await createSdkSpanWriter(protocol);

port.on('message', (message: SpanThreadMessage) => {
  switch (message.type) {
    case 'start_run':
      writer.startRun(message.startTime, message.attributes);
      break;
    case 'spans':
      for (const record of message.records) writer.write(record);
      break;
    case 'end_run':
      writer.endRun(message.end);
      break;
    case 'close':
      void writer.close().then((report) => {
        port.postMessage({ type: 'closed', report } satisfies SpanThreadReply);
        port.close();
      });
      break;
  }
});
