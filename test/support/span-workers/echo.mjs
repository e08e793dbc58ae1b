// A stand-in export thread for test/span-thread.test.ts: keeps every message
// it gets and answers `close` with all of them as the report's lastError
// (JSON), and their span count as `exported`.
import { parentPort } from 'node:worker_threads';

const seen = [];
parentPort.on('message', (message) => {
  seen.push(message.type === 'spans' ? { type: 'spans', ids: message.records.map((r) => r.attributes['oai_batch.custom_id']) } : message);
  if (message.type === 'close') {
    const exported = seen.reduce((n, m) => n + (m.type === 'spans' ? m.ids.length : 0), 0);
    parentPort.postMessage({ type: 'closed', report: { exported, lastError: JSON.stringify(seen) } });
    parentPort.close();
  }
});
