// An output file that refuses writes (a full disk): the run stops with exit 1
// and one clear line naming the file, counts only what the file accepted, and
// --resume completes the work. Over real HTTP, the CLI as a child process,
// with bash's `ulimit -f` standing in for a full disk (writes fail with EFBIG).

import { readFile, symlink } from 'node:fs/promises';
import { openJsonlWriter } from '../src/pipeline/record/writer.js';
import { describe, expect, it } from 'vitest';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import { runCli } from './support/cli.js';
import { chatLine, readJson, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-test-key-123456';
const { dir, simulator } = perTestFixture(KEY);

/** Success records on complete lines of a results file (a torn last line is not one). */
async function completeSuccesses(path: string): Promise<ResultRecord[]> {
  const text = await readFile(path, 'utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ResultRecord);
}

describe('an output file that refuses writes', () => {
  it('stops with exit 1 and one line naming the file, never overstates what succeeded, and --resume completes the work', async () => {
    const s = await simulator();
    const input = dir.file('full.jsonl');
    await writeJsonl(input, Array.from({ length: 2000 }, (_, i) => chatLine(i)));
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url };

    const first = await runCli(['run', input, '-q'], { env, fileSizeLimitKiB: 64 });
    expect(first.code).toBe(1);
    const results = dir.file('full.results.jsonl');
    expect(first.stderr).toContain(`cannot write ${results}: the file is larger than this process may write (ulimit -f) (EFBIG)`);
    expect(first.stderr.trim().split('\n')).toHaveLength(1);
    expect(first.stderr).not.toMatch(/\n\s+at /);
    const summary = await readJson<Summary>(dir.file('full.summary.json'));
    expect(summary.stopped_reason).toBe('write_failed');
    const onDisk = await completeSuccesses(results);
    expect(onDisk.length).toBeGreaterThan(0);
    expect(summary.requests.succeeded).toBeGreaterThan(0);
    expect(summary.requests.succeeded).toBeLessThanOrEqual(onDisk.length);
    expect(summary.requests.pending).toBeGreaterThan(0);

    const second = await runCli(['run', input, '--resume', '-q'], { env });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    const all = await completeSuccesses(results);
    const ids = all.map((r) => r.custom_id);
    expect(new Set(ids).size).toBe(2000);
    expect(ids).toHaveLength(2000);
  }, 120_000);
});

describe('the JSONL writers on a full device', () => {
  it.each(['plain', 'gzip'])('%s: a write and the close reject with a WriteError naming the file, never resolve as written', async (kind) => {
    // /dev/full takes the open and refuses every write with ENOSPC.
    const path = dir.file(kind === 'gzip' ? 'out.jsonl.gz' : 'out.jsonl');
    await symlink('/dev/full', path);
    const writer = await openJsonlWriter(path, { append: false });
    await expect(writer.writeRaw('{"a":1}')).rejects.toMatchObject({ code: 'write_failed', path, message: expect.stringContaining('no space left on the device (ENOSPC)') });
    await expect(writer.write({ b: 2 })).rejects.toMatchObject({ code: 'write_failed' });
    await expect(writer.close()).rejects.toMatchObject({ code: 'write_failed' });
  });
});
