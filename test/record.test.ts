import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openJsonlWriter, writeFileAtomic } from '../src/pipeline/record/writer.js';
import { tempDir } from './support/files.js';

let dir: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  dir = await tempDir('oai-batch-record-');
});
afterEach(async () => {
  await dir.remove();
});

const lines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

/** Reads a gzip file as another process would mid-run: every complete block so far, no end-of-stream needed. */
async function gunzipSoFar(path: string): Promise<string> {
  return gunzipSync(await readFile(path), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('utf8');
}

describe('openJsonlWriter (plain)', () => {
  it('writes one JSON line per record, in order', async () => {
    const path = dir.file('results.jsonl');
    const writer = await openJsonlWriter(path, { append: false });
    await writer.write({ custom_id: 'a', n: 1 });
    await writer.writeRaw('{"custom_id":"b","n":2}');
    await writer.write({ custom_id: 'c', text: 'ünïcödé 😀\nsecond line' });
    await writer.close();
    const text = await readFile(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(lines(text)).toEqual([
      { custom_id: 'a', n: 1 },
      { custom_id: 'b', n: 2 },
      { custom_id: 'c', text: 'ünïcödé 😀\nsecond line' },
    ]);
  });

  it('starts an existing file afresh without append', async () => {
    const path = dir.file('results.jsonl');
    await writeFile(path, '{"old":1}\n');
    const writer = await openJsonlWriter(path, { append: false });
    await writer.write({ new: 1 });
    await writer.close();
    expect(lines(await readFile(path, 'utf8'))).toEqual([{ new: 1 }]);
  });

  it('appends to an existing file with append (resume)', async () => {
    const path = dir.file('results.jsonl');
    await writeFile(path, '{"old":1}\n');
    const writer = await openJsonlWriter(path, { append: true });
    await writer.write({ new: 1 });
    await writer.close();
    expect(lines(await readFile(path, 'utf8'))).toEqual([{ old: 1 }, { new: 1 }]);
  });

  it('creates the file with append when it does not exist', async () => {
    const path = dir.file('fresh.jsonl');
    const writer = await openJsonlWriter(path, { append: true });
    await writer.write({ a: 1 });
    await writer.close();
    expect(lines(await readFile(path, 'utf8'))).toEqual([{ a: 1 }]);
  });

  it('makes everything written so far readable by another reader after sync()', async () => {
    const path = dir.file('results.jsonl');
    const writer = await openJsonlWriter(path, { append: false });
    for (let i = 0; i < 10; i++) await writer.write({ i });
    await writer.sync();
    expect(lines(await readFile(path, 'utf8'))).toHaveLength(10);
    await writer.write({ i: 10 });
    await writer.sync();
    expect(lines(await readFile(path, 'utf8'))).toHaveLength(11);
    await writer.close();
  });

  it('keeps order and loses nothing across many buffer flushes', async () => {
    const path = dir.file('big.jsonl');
    const writer = await openJsonlWriter(path, { append: false });
    const padding = 'x'.repeat(1000);
    for (let i = 0; i < 3000; i++) await writer.write({ i, padding });
    await writer.close();
    const read = lines(await readFile(path, 'utf8')) as Array<{ i: number }>;
    expect(read.map((r) => r.i)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  it('syncs nothing twice and survives sync() with nothing written', async () => {
    const path = dir.file('empty.jsonl');
    const writer = await openJsonlWriter(path, { append: false });
    await writer.sync();
    await writer.sync();
    await writer.close();
    expect(await readFile(path, 'utf8')).toBe('');
  });
});

describe('openJsonlWriter (.gz)', () => {
  it('writes a gzip file of JSON lines', async () => {
    const path = dir.file('results.jsonl.gz');
    const writer = await openJsonlWriter(path, { append: false });
    await writer.write({ a: 1 });
    await writer.write({ b: 'é' });
    await writer.close();
    expect(lines(gunzipSync(await readFile(path)).toString('utf8'))).toEqual([{ a: 1 }, { b: 'é' }]);
  });

  it('makes what was written readable after sync(), before the writer is closed', async () => {
    const path = dir.file('results.jsonl.gz');
    const writer = await openJsonlWriter(path, { append: false });
    for (let i = 0; i < 5; i++) await writer.write({ i });
    await writer.sync();
    expect(lines(await gunzipSoFar(path))).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
    await writer.write({ i: 5 });
    await writer.sync();
    expect(lines(await gunzipSoFar(path))).toHaveLength(6);
    await writer.close();
  });

  it('appends a new gzip member per session; the members read back as one stream', async () => {
    const path = dir.file('results.jsonl.gz');
    let writer = await openJsonlWriter(path, { append: false });
    await writer.write({ session: 1, n: 1 });
    await writer.write({ session: 1, n: 2 });
    await writer.close();
    writer = await openJsonlWriter(path, { append: true });
    await writer.write({ session: 2, n: 3 });
    await writer.close();
    expect(lines(gunzipSync(await readFile(path)).toString('utf8'))).toEqual([
      { session: 1, n: 1 },
      { session: 1, n: 2 },
      { session: 2, n: 3 },
    ]);
  });

  it('starts an existing .gz file afresh without append', async () => {
    const path = dir.file('results.jsonl.gz');
    await writeFile(path, gzipSync('{"old":1}\n'));
    const writer = await openJsonlWriter(path, { append: false });
    await writer.write({ new: 1 });
    await writer.close();
    expect(lines(gunzipSync(await readFile(path)).toString('utf8'))).toEqual([{ new: 1 }]);
  });

  it('keeps order across backpressure on many records', async () => {
    const path = dir.file('big.jsonl.gz');
    const writer = await openJsonlWriter(path, { append: false });
    // Incompressible padding so the gzip stream really fills its buffers.
    const padding = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919) % 251)).toString('base64');
    for (let i = 0; i < 2000; i++) await writer.write({ i, padding });
    await writer.close();
    const read = lines(gunzipSync(await readFile(path)).toString('utf8')) as Array<{ i: number }>;
    expect(read.map((r) => r.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});

describe('writeFileAtomic', () => {
  it('writes the whole text and leaves no temporary file', async () => {
    const path = dir.file('summary.json');
    await writeFileAtomic(path, '{"a":1}\n');
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n');
    expect(await readdir(dir.path)).toEqual(['summary.json']);
  });

  it('replaces an existing file', async () => {
    const path = dir.file('summary.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(dir.path)).toEqual(['summary.json']);
  });

  it('never shows a reader a partial file while it rewrites one', async () => {
    const path = dir.file('summary.json');
    const versions = ['a', 'b', 'c', 'd'].map((c) => c.repeat(4 * 1024 * 1024));
    await writeFileAtomic(path, versions[0] as string);
    let writing = true;
    const seen = new Set<number>();
    const reader = (async () => {
      while (writing) {
        const text = await readFile(path, 'utf8');
        const index = versions.indexOf(text);
        expect(index, `a reader saw ${text.length} bytes starting ${JSON.stringify(text.slice(0, 1))}`).toBeGreaterThanOrEqual(0);
        seen.add(index);
      }
    })();
    for (const version of versions.slice(1)) await writeFileAtomic(path, version);
    writing = false;
    await reader;
    expect(await readFile(path, 'utf8')).toBe(versions[3]);
    expect(seen.size).toBeGreaterThanOrEqual(1);
  });

  it('keeps concurrent writes of one path whole: the file ends as one of them, never a mix', async () => {
    const path = dir.file('summary.json');
    const versions = ['x', 'y', 'z'].map((c) => c.repeat(2 * 1024 * 1024));
    const outcomes = await Promise.allSettled(versions.map((v) => writeFileAtomic(path, v)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(versions).toContain(await readFile(path, 'utf8'));
    expect(await readdir(dir.path)).toEqual(['summary.json']);
  });

  it('fails without leaving a temporary file when the target cannot be replaced', async () => {
    const path = dir.file('taken');
    await mkdir(path);
    await writeFile(`${path}/inside`, 'x');
    await expect(writeFileAtomic(path, 'text')).rejects.toThrow();
    expect((await readdir(dir.path)).sort()).toEqual(['taken']);
  });
});
