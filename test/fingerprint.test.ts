// The input fingerprint: the whole file up to 256 MiB, sampled above; an
// earlier sampled fingerprint compared in its own form. Over real HTTP: a
// resume of a `line-N` input whose two equal-length lines were swapped is
// refused, and a summary an earlier version wrote (sampled fingerprint) of an
// unchanged file still resumes.

import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runBatch } from '../src/pipeline/run.js';
import { InputError } from '../src/shared/errors.js';
import { FULL_HASH_MAX_BYTES, fingerprintFile, formOf, isSameInput } from '../src/shared/fingerprint.js';
import { loadPriceTable } from '../src/shared/price-file.js';
import type { Summary } from '../src/shared/types.js';
import { readJson } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-fingerprint-test';
const { dir, simulator } = perTestFixture(KEY);

/** Lines of exactly the same length (about 1 KiB): any two can be swapped without changing the size. */
function sameLengthLines(n: number): string[] {
  return Array.from({ length: n }, (_, k) =>
    JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `Question ${String(k + 1).padStart(6, '0')}` }],
      max_tokens: 16,
      metadata: { pad: 'x'.repeat(900) },
    }),
  );
}

/** Two 1-based line numbers whose bytes lie wholly between the blocks the sampled form reads. */
function linesBetweenSampledBlocks(lines: string[]): [number, number] {
  const lineBytes = Buffer.byteLength(lines[0] as string) + 1;
  const size = lineBytes * lines.length;
  const step = Math.floor((size - 4096) / 63);
  const isSampled = (start: number, end: number): boolean =>
    Array.from({ length: 64 }, (_, i) => i * step).some((block) => start < block + 4096 && block < end);
  const unseen: number[] = [];
  for (let n = 1; n <= lines.length && unseen.length < 2; n++) {
    const start = (n - 1) * lineBytes;
    if (!isSampled(start, start + lineBytes)) unseen.push(n);
  }
  return unseen as [number, number];
}

function swap(lines: string[], a: number, b: number): string[] {
  const out = [...lines];
  [out[a - 1], out[b - 1]] = [lines[b - 1] as string, lines[a - 1] as string];
  return out;
}

const text = (lines: string[]): string => lines.join('\n') + '\n';

describe('fingerprintFile', () => {
  it('hashes a file under 256 MiB whole, so two swapped equal-length lines change it; the sampled form cannot see that', async () => {
    const lines = sameLengthLines(4000); // ~3.7 MiB: sampled blocks 4 KiB every ~60 KiB
    const [a, b] = linesBetweenSampledBlocks(lines);
    const path = dir.file('in.jsonl');
    await writeFile(path, text(lines));
    const before = { full: await fingerprintFile(path), sampled: await fingerprintFile(path, 'sha256-sampled') };

    await writeFile(path, text(swap(lines, a, b)));

    expect(formOf(before.full)).toBe('sha256');
    expect(await fingerprintFile(path)).not.toBe(before.full);
    // What the sampled form (the only form before, and still the form above 256 MiB) cannot see.
    expect(await fingerprintFile(path, 'sha256-sampled')).toBe(before.sampled);
  });

  it('sees any edit of a small file in either form', async () => {
    const path = dir.file('small.jsonl');
    await writeFile(path, 'a\nb\n');
    const full = await fingerprintFile(path);
    const sampled = await fingerprintFile(path, 'sha256-sampled');
    await writeFile(path, 'b\na\n');
    expect(await fingerprintFile(path)).not.toBe(full);
    expect(await fingerprintFile(path, 'sha256-sampled')).not.toBe(sampled);
  });

  it('is sampled only above FULL_HASH_MAX_BYTES', () => {
    expect(FULL_HASH_MAX_BYTES).toBe(256 * 1024 * 1024);
  });

  it.each([
    ['sha256:0123', 'sha256'],
    ['sha256-sampled:0123', 'sha256-sampled'],
    ['stdin', null],
    ['md5:0123', null],
  ])('formOf(%j) is %s', (fingerprint, form) => {
    expect(formOf(fingerprint)).toBe(form);
  });
});

describe('isSameInput', () => {
  it('compares an earlier sampled fingerprint with the file sampled again, and anything else as strings', async () => {
    const path = dir.file('in.jsonl');
    await writeFile(path, text(sameLengthLines(3)));
    const full = await fingerprintFile(path);
    const sampled = await fingerprintFile(path, 'sha256-sampled');

    const cases: Array<[string, string, boolean]> = [
      [full, full, true],
      [sampled, full, true], // written by an earlier version, file unchanged
      ['sha256-sampled:00000000000000000000000000000000', full, false],
      ['sha256:00000000000000000000000000000000', full, false],
      [full, sampled, false], // whole-file before, sampled now: the size crossed 256 MiB
      ['stdin', 'stdin', true],
      ['stdin', full, false],
    ];
    for (const [previous, current, same] of cases) expect(await isSameInput(path, previous, current), `${previous} vs ${current}`).toBe(same);
  });
});

describe('resume and the fingerprint (over HTTP)', () => {
  const options = (input: string, sim: { url: string }, extra: Record<string, unknown> = {}) => ({
    input,
    output: dir.file('in.results.jsonl'),
    errors: dir.file('in.errors.jsonl'),
    summary: dir.file('in.summary.json'),
    transport: { baseUrl: sim.url, apiKey: KEY },
    prices: loadPriceTable(),
    concurrency: 4,
    ...extra,
  });

  it('refuses to resume a line-N input after two equal-length lines were swapped', async () => {
    const sim = await simulator({ latencyMs: 1 });
    const lines = sameLengthLines(4000);
    const input = dir.file('in.jsonl');
    await writeFile(input, text(lines));
    const first = await runBatch(options(input, sim, { limit: 3 }));
    expect(first.summary.requests).toMatchObject({ succeeded: 3 });

    const [a, b] = linesBetweenSampledBlocks(lines);
    await writeFile(input, text(swap(lines, a, b)));

    const refused = await runBatch(options(input, sim, { resume: true, limit: 6 })).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InputError);
    expect((refused as InputError).code).toBe('input_changed');
    expect(sim.stats().requests).toBe(3);
  });

  it('resumes an unchanged input whose summary an earlier version wrote with the sampled fingerprint', async () => {
    const sim = await simulator({ latencyMs: 1 });
    const input = dir.file('in.jsonl');
    await writeFile(input, text(sameLengthLines(400)));
    await runBatch(options(input, sim, { limit: 3 }));
    // What the summary held before the whole-file form existed.
    const summaryPath = dir.file('in.summary.json');
    const old = await readJson<Summary>(summaryPath);
    old.input.fingerprint = await fingerprintFile(input, 'sha256-sampled');
    await writeFile(summaryPath, JSON.stringify(old));

    const resumed = await runBatch(options(input, sim, { resume: true, limit: 6 }));

    expect(resumed.summary.requests).toMatchObject({ total: 6, succeeded: 6, skipped: 3 });
    expect(resumed.summary.input.fingerprint).toBe(await fingerprintFile(input));
    expect(sim.stats().requests).toBe(6);
    expect(await readFile(input, 'utf8')).toBe(text(sameLengthLines(400)));
  });
});
