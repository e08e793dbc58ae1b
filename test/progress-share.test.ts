// The share done and the ETA: lines finished ÷ lines to do, and the lines
// left at the recent finish rate (issue: bytes read ran far ahead of answers).

import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { RunOptions } from '../src/pipeline/options.js';
import { countRecords } from '../src/pipeline/read.js';
import { runBatch } from '../src/pipeline/run.js';
import { RunStats } from '../src/pipeline/summarise.js';
import { progressOf } from '../src/pipeline/summarise/progress.js';
import type { ProgressSnapshot, RunEvent } from '../src/shared/events.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import { chatLine, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const T0 = 1_000_000;

/** Stats of a run that started at T0 and finished `perSecond` lines a second for `seconds`, after `skipped` earlier ones. */
function statsOf(finished: number, seconds: number, skipped = 0): RunStats {
  const stats = new RunStats(T0, () => T0);
  stats.skipped = skipped;
  stats.succeeded = skipped + finished;
  for (let i = 0; i < finished; i++) stats.requestsWindow.add(T0 + Math.floor((i * seconds * 1000) / Math.max(1, finished)), 1);
  return stats;
}

function progress(stats: RunStats, linesToDo: number | null, seconds: number): ProgressSnapshot {
  return progressOf({
    now: T0 + seconds * 1000,
    stats,
    linesToDo,
    bytesRead: 0,
    bytesTotal: null,
    inFlight: 0,
    queued: 0,
    costUsd: 0,
    concurrencyLimit: 64,
    concurrencyBound: false,
    limits: {},
  });
}

describe('progressOf', () => {
  it.each<[string, number, number, number | null, number, number | null, number | null]>([
    // name, finished this run, seconds, lines to do, skipped, fraction, eta seconds
    ['a quarter done at 10 a second: 30 s left', 100, 10, 400, 0, 0.25, 30],
    ['unknown total (stdin): no share, no ETA', 100, 10, null, 0, null, null],
    ['--limit 600: the share counts the limit', 300, 10, 600, 0, 0.5, 10],
    ['resumed: earlier successes are done but not part of the rate', 100, 10, 1000, 500, 0.6, 40],
    ['nothing finished yet: no ETA', 0, 10, 1000, 0, 0, null],
    ['all done', 50, 5, 50, 0, 1, 0],
  ])('%s', (_name, finished, seconds, linesToDo, skipped, fraction, eta) => {
    const p = progress(statsOf(finished, seconds, skipped), linesToDo, seconds);
    if (fraction === null) expect(p.fraction).toBeNull();
    else expect(p.fraction).toBeCloseTo(fraction, 9);
    if (eta === null) expect(p.etaSeconds).toBeNull();
    else expect(p.etaSeconds).toBeCloseTo(eta, 6);
    expect(p.linesTotal).toBe(linesToDo);
    expect(p.linesDone).toBe(finished + skipped);
  });
});

const { dir, simulator } = perTestFixture('sk-test-key-123456');

describe('countRecords', () => {
  it.each<[string, string, number | null]>([
    ['plain lines', '{"a":1}\n{"a":2}\n{"a":3}\n', 3],
    ['a last line without newline', '{"a":1}\n{"a":2}', 2],
    ['blank lines and CRLF', '{"a":1}\r\n\r\n\n{"a":2}\r\n\n', 2],
    ['an empty file', '', 0],
    ['a JSON array: unknown', '  [{"a":1},{"a":2}]', null],
  ])('%s', async (_name, text, expected) => {
    const path = dir.file('count.jsonl');
    await writeFile(path, text);
    expect(await countRecords(path)).toBe(expected);
  });

  it('counts a .gz input and lines split across chunks', async () => {
    const path = dir.file('count.jsonl.gz');
    const lines = Array.from({ length: 50_000 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(i % 97) }));
    await writeFile(path, gzipSync(lines.join('\n') + '\n'));
    expect(await countRecords(path)).toBe(50_000);
  });
});

describe('progress of a real run', () => {
  it('with --limit 600 of 4,000 lines, reports the share of the 600 and ends at 100 %', async () => {
    const s = await simulator({ latencyMs: 20 });
    const input = dir.file('limited.jsonl');
    await writeJsonl(input, Array.from({ length: 4000 }, (_, i) => chatLine(i)));
    const events: ProgressSnapshot[] = [];
    const options: RunOptions = {
      input,
      output: dir.file('limited.results.jsonl'),
      errors: dir.file('limited.errors.jsonl'),
      summary: dir.file('limited.summary.json'),
      transport: { baseUrl: s.url, apiKey: 'sk-test-key-123456' },
      prices: loadPriceTable(),
      limit: 600,
      rpm: 30_000,
      progressIntervalMs: 100,
      onEvent: (e: RunEvent) => {
        if (e.type === 'progress') events.push(e.progress);
      },
    };
    await runBatch(options);
    const known = events.filter((p) => p.linesTotal !== null);
    expect(known.length).toBeGreaterThan(1);
    for (const p of known) {
      expect(p.linesTotal).toBe(600);
      expect(p.fraction).toBeCloseTo(p.linesDone / 600, 9);
    }
    expect(events.at(-1)).toMatchObject({ linesTotal: 600, linesDone: 600, fraction: 1, etaSeconds: 0 });
  });
});
