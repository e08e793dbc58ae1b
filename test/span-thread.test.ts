// The run's side of the trace export thread (src/observe/span-thread.ts):
// records reach the thread in order and in batches, a slow run's spans do
// not wait for a full batch, and a thread that fails never hangs the run.
// The real thread (span-worker.ts + the SDK) is tested end to end through
// the CLI in test/traces.test.ts.

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { SpanRecord } from '../src/observe/span-record.js';
import { ThreadSpanWriter } from '../src/observe/span-thread.js';

const worker = (name: string): URL => new URL(`./support/span-workers/${name}`, import.meta.url);

const record = (id: number): SpanRecord => ({
  name: 'chat gpt-4o-mini',
  startTime: 1_700_000_000_000 + id,
  endTime: 1_700_000_000_010 + id,
  attributes: { 'oai_batch.custom_id': `r${id}` },
  error: null,
  events: null,
});

type Seen = Array<{ type: string; ids?: string[] }>;

describe('ThreadSpanWriter', () => {
  it('sends every record, in order, in batches of 128, after the run starts and before it ends', async () => {
    const writer = new ThreadSpanWriter('http/protobuf', worker('echo.mjs'));
    writer.startRun(1_700_000_000_000, { 'oai_batch.input': 'in.jsonl' });
    for (let i = 0; i < 300; i++) writer.write(record(i));
    writer.endRun({ endTime: 1_700_000_001_000, attributes: {}, error: null });
    const report = await writer.close();
    expect(report.exported).toBe(300);
    const seen = JSON.parse(report.lastError!) as Seen;
    expect(seen.map((m) => m.type)).toEqual(['start_run', 'spans', 'spans', 'spans', 'end_run', 'close']);
    expect(seen.filter((m) => m.type === 'spans').map((m) => m.ids!.length)).toEqual([128, 128, 44]);
    expect(seen.flatMap((m) => m.ids ?? [])).toEqual(Array.from({ length: 300 }, (_, i) => `r${i}`));
  });

  it('sends a batch that is not full after 200 ms: a slow run’s spans do not wait for the next ones', async () => {
    const writer = new ThreadSpanWriter('http/protobuf', worker('echo.mjs'));
    writer.startRun(1_700_000_000_000, {});
    writer.write(record(1));
    await sleep(400);
    writer.write(record(2));
    const seen = JSON.parse((await writer.close()).lastError!) as Seen;
    expect(seen.filter((m) => m.type === 'spans').map((m) => m.ids)).toEqual([['r1'], ['r2']]);
  });

  it('a thread that fails as it starts: close() says so and loses the spans, it does not hang', async () => {
    const writer = new ThreadSpanWriter('http/protobuf', worker('throws.mjs'));
    writer.startRun(1_700_000_000_000, {});
    writer.write(record(1));
    expect(await writer.close()).toEqual({ exported: 0, lastError: 'the trace export thread stopped: no exporter here' });
  });

  it('a thread that exits without its report: close() does not hang', async () => {
    const writer = new ThreadSpanWriter('http/protobuf', worker('exits.mjs'));
    writer.write(record(1));
    expect(await writer.close()).toEqual({ exported: 0, lastError: 'the trace export thread stopped: it exited with code 7 before its report' });
  });
});
