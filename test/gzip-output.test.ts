// A `.gz` results file through the real CLI: stderr stays clean (issue 15
// item 16: one drain wait shared by every writer, not one listener per write,
// which printed MaxListenersExceededWarning on every run).

import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';
import { readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-gzip-output-0001';
const { dir, simulator } = perTestFixture(KEY);

/** Long prompts: the simulator echoes some text, so each result line is large and gzip's buffer fills within one turn. */
function longLine(i: number): Record<string, unknown> {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Question ${i}: ${'lorem ipsum '.repeat(40)}` }], max_tokens: 60 };
}

describe('a .gz results file', () => {
  it.each([
    ['the default text view', []],
    ['-q', ['-q']],
    ['--log-format json', ['--log-format', 'json']],
  ])('prints no MaxListenersExceededWarning (%s)', async (_name, flags) => {
    const sim = await simulator();
    const lines = Array.from({ length: 300 }, (_, i) => longLine(i + 1));
    await writeJsonl(dir.file('in.jsonl'), lines);
    const result = await runCli(['run', 'in.jsonl', '-o', 'in.results.jsonl.gz', '--overwrite', ...flags], {
      cwd: dir.path,
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/MaxListenersExceeded|Warning/);
    if (flags.includes('json')) {
      for (const line of result.stderr.split('\n').filter((l) => l !== '')) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    }
    expect(await readJsonl(dir.file('in.results.jsonl.gz'))).toHaveLength(300);
  }, 60_000);
});
