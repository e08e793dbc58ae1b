import { mkdir, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/shared/errors.js';
import { openInput, readRecords, type RawRecord } from '../src/pipeline/read.js';
import { tempDir } from './support/files.js';

/** The bytes of `data` as a stream of `size`-byte chunks (splitting lines and UTF-8 characters anywhere). */
async function* inChunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(records: AsyncIterable<RawRecord>): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const record of records) out.push(record);
  return out;
}

const read = (data: Buffer | string, chunkBytes: number, maxLineBytes?: number): Promise<RawRecord[]> =>
  collect(readRecords(inChunks(Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), chunkBytes), maxLineBytes));

const CHUNK_SIZES = [1, 7, 64, 1 << 20];
const BOM = '\uFEFF';

describe('readRecords on JSONL', () => {
  // One file with every edge at once: multi-byte characters, blank and blank-looking lines,
  // CRLF, and a last line without a newline.
  const lines = [
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"héllo wörld"}]}',
    '',
    '   \t ',
    '{"custom_id":"emoji","x":"😀🎉 ünïcödé 日本語 ∑"}',
    '{"crlf":true}\r',
    '\r',
    '{"last":"no newline ✓"}',
  ];
  const expected: RawRecord[] = [
    { kind: 'text', line: 1, text: lines[0] as string },
    { kind: 'text', line: 4, text: lines[3] as string },
    { kind: 'text', line: 5, text: '{"crlf":true}' },
    { kind: 'text', line: 7, text: lines[6] as string },
  ];

  it.each(CHUNK_SIZES)('gives the same records in %d-byte chunks', async (size) => {
    expect(await read(lines.join('\n'), size)).toEqual(expected);
  });

  it.each(CHUNK_SIZES)('drops a UTF-8 BOM, also when it arrives split (%d-byte chunks)', async (size) => {
    expect(await read(BOM + lines.join('\n'), size)).toEqual(expected);
  });

  it.each(CHUNK_SIZES)('reads a file whose lines all end in CRLF (%d-byte chunks)', async (size) => {
    const records = await read('{"a":1}\r\n\r\n{"b":"ß"}\r\n', size);
    expect(records).toEqual([
      { kind: 'text', line: 1, text: '{"a":1}' },
      { kind: 'text', line: 3, text: '{"b":"ß"}' },
    ]);
  });

  it.each<[string, string]>([
    ['an empty input', ''],
    ['only a BOM', BOM],
    ['only blank lines', '\n\n  \n\t\n'],
    ['only a newline', '\n'],
  ])('gives no records for %s', async (_name, text) => {
    for (const size of CHUNK_SIZES) expect(await read(text, size)).toEqual([]);
  });

  it('keeps a single line without any newline', async () => {
    for (const size of CHUNK_SIZES) expect(await read('{"only":1}', size)).toEqual([{ kind: 'text', line: 1, text: '{"only":1}' }]);
  });

  it('passes a line that is not JSON through as text (plan reports it)', async () => {
    expect(await read('not json\n{"a":1}\n', 3)).toEqual([
      { kind: 'text', line: 1, text: 'not json' },
      { kind: 'text', line: 2, text: '{"a":1}' },
    ]);
  });

  describe('--max-line-bytes', () => {
    const long = `{"x":"${'é'.repeat(100)}"}`; // 208 bytes
    const input = ['{"a":1}', long, '{"b":2}', long].join('\n');

    it.each(CHUNK_SIZES)('reports a line over the limit as too_long with its number and size (%d-byte chunks)', async (size) => {
      expect(await read(input, size, 100)).toEqual([
        { kind: 'text', line: 1, text: '{"a":1}' },
        { kind: 'too_long', line: 2, bytes: Buffer.byteLength(long) },
        { kind: 'text', line: 3, text: '{"b":2}' },
        { kind: 'too_long', line: 4, bytes: Buffer.byteLength(long) },
      ]);
    });

    it.each(CHUNK_SIZES)('accepts a line of exactly the limit (%d-byte chunks)', async (size) => {
      const exact = `{"x":"${'a'.repeat(92)}"}`;
      expect(Buffer.byteLength(exact)).toBe(100);
      expect(await read(`${exact}\n${exact}x\n`, size, 100)).toEqual([
        { kind: 'text', line: 1, text: exact },
        { kind: 'too_long', line: 2, bytes: 101 },
      ]);
    });

    it('never holds much more than the limit while skipping a 50 MB line', async () => {
      const maxLineBytes = 1 << 20;
      const chunk = Buffer.alloc(64 * 1024, 0x61); // one buffer yielded again and again: only the splitter allocates
      const lineBytes = 50 * 1024 * 1024;
      let peakArrayBuffers = 0;
      const baseline = process.memoryUsage().arrayBuffers;
      async function* source(): AsyncGenerator<Buffer> {
        yield Buffer.from('{"first":1}\n');
        for (let sent = 0; sent < lineBytes; sent += chunk.length) {
          peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
          yield chunk;
        }
        yield Buffer.from('\n{"after":2}\n');
      }
      const records = await collect(readRecords(source(), maxLineBytes));
      expect(records).toEqual([
        { kind: 'text', line: 1, text: '{"first":1}' },
        { kind: 'too_long', line: 2, bytes: lineBytes },
        { kind: 'text', line: 3, text: '{"after":2}' },
      ]);
      // Buffering the line would need 50 MB; the splitter keeps at most the limit before giving up.
      expect(peakArrayBuffers - baseline).toBeLessThan(8 * 1024 * 1024);
    });

    it('reports a too-long last line without a newline', async () => {
      expect(await read(`{"a":1}\n${'x'.repeat(500)}`, 64, 100)).toEqual([
        { kind: 'text', line: 1, text: '{"a":1}' },
        { kind: 'too_long', line: 2, bytes: 500 },
      ]);
    });
  });
});

describe('readRecords on a JSON array', () => {
  const elements = [{ custom_id: 'a', body: { x: 'ü' } }, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: '😀' }] }, 42, null];
  const pretty = JSON.stringify(elements, null, 2);

  it.each(CHUNK_SIZES)('streams elements with 1-based indices (%d-byte chunks)', async (size) => {
    expect(await read(pretty, size)).toEqual(elements.map((value, i) => ({ kind: 'value', line: i + 1, value })));
  });

  it.each(CHUNK_SIZES)('recognises the array after a BOM and leading blank lines (%d-byte chunks)', async (size) => {
    expect(await read(`${BOM}\n  \r\n\t${pretty}\n`, size)).toHaveLength(elements.length);
  });

  it('gives no records for an empty array', async () => {
    expect(await read('[ ]', 1)).toEqual([]);
  });

  it.each([1, 7, 64])('reports where a broken array stops parsing and keeps what came before (%d-byte chunks)', async (size) => {
    const records = await read('[{"a":1},{"b":2},{"c":', size);
    expect(records.slice(0, 2)).toEqual([
      { kind: 'value', line: 1, value: { a: 1 } },
      { kind: 'value', line: 2, value: { b: 2 } },
    ]);
    expect(records).toHaveLength(3);
    expect(records[2]).toMatchObject({ kind: 'broken', line: 3 });
  });

  it('reports a syntax error inside an element', async () => {
    const records = await read('[{"a":1}, {"b": nope}]', 64);
    expect(records.at(-1)).toMatchObject({ kind: 'broken', line: 2 });
  });
});

describe('openInput', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const content = `${BOM}{"a":"é"}\n\n{"b":2}\r\n{"c":3}`;
  const expected: RawRecord[] = [
    { kind: 'text', line: 1, text: '{"a":"é"}' },
    { kind: 'text', line: 3, text: '{"b":2}' },
    { kind: 'text', line: 4, text: '{"c":3}' },
  ];

  beforeAll(async () => {
    dir = await tempDir('oai-batch-read-');
  });
  afterAll(async () => {
    await dir.remove();
  });

  async function readInput(path: string, stdin?: Readable): Promise<{ records: RawRecord[]; bytes: number; size: number | null }> {
    const input = await openInput(path, stdin);
    try {
      const records = await collect(readRecords(input.stream));
      return { records, bytes: input.bytesRead(), size: input.sizeBytes };
    } finally {
      input.close();
    }
  }

  it('reads a plain file and counts its bytes', async () => {
    const path = dir.file('plain.jsonl');
    await writeFile(path, content);
    const { records, bytes, size } = await readInput(path);
    expect(records).toEqual(expected);
    expect(size).toBe(Buffer.byteLength(content));
    expect(bytes).toBe(size);
  });

  it('decompresses a .gz file and counts compressed bytes', async () => {
    const path = dir.file('requests.jsonl.gz');
    const compressed = gzipSync(Buffer.from(content));
    await writeFile(path, compressed);
    const { records, bytes, size } = await readInput(path);
    expect(records).toEqual(expected);
    expect(size).toBe(compressed.length);
    expect(bytes).toBe(compressed.length);
  });

  it.each<[string, () => Buffer]>([
    ['cut short', () => gzipSync(Buffer.from(content.repeat(50))).subarray(0, 60)],
    ['not gzip at all', () => Buffer.from(content)],
  ])('reports a .gz input that is %s as an InputError naming the file', async (_name, bytes) => {
    const path = dir.file('broken.jsonl.gz');
    await writeFile(path, bytes());
    const input = await openInput(path);
    const error = await collect(readRecords(input.stream)).then(
      () => null,
      (e: unknown) => e,
    );
    input.close();
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ exitCode: 1, message: expect.stringContaining(`cannot read input ${path}:`) });
  });

  it('reads stdin when the path is -', async () => {
    const stdin = Readable.from([Buffer.from(content.slice(0, 5)), Buffer.from(content.slice(5))]);
    const { records, size } = await readInput('-', stdin);
    expect(records).toEqual(expected);
    expect(size).toBeNull();
  });

  it.each<[string, () => Promise<unknown>, RegExp]>([
    ['a missing file', () => openInput(dir.file('missing.jsonl')), /cannot read input .*missing\.jsonl: no such file/],
    ['a directory', () => openInput(dir.path), /it is a directory/],
    ['- without a stdin stream', () => openInput('-'), /stdin/],
  ])('refuses %s with an InputError (exit 1)', async (_name, open, message) => {
    const error = await open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ exitCode: 1 });
    expect((error as Error).message).toMatch(message);
  });

  it('refuses an unreadable file with an InputError', async () => {
    if (process.getuid?.() === 0) return; // root reads anything
    const path = dir.file('secret.jsonl');
    await writeFile(path, content, { mode: 0o000 });
    await expect(openInput(path)).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/permission denied/) });
  });

  it('refuses a directory whose name looks like a file', async () => {
    const path = dir.file('looks-like.jsonl');
    await mkdir(path);
    await expect(openInput(path)).rejects.toBeInstanceOf(InputError);
  });
});
