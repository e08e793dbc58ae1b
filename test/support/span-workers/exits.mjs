// A stand-in export thread that takes the records, then exits at `close` without a report (test/span-thread.test.ts).
import { parentPort } from 'node:worker_threads';

parentPort.on('message', (message) => {
  if (message.type === 'close') process.exit(7);
});
