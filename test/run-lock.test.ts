// One run at a time per results file: a second run refuses (exit 1, naming
// the holder's pid) instead of appending duplicates; a lock a killed run
// left behind is taken over. The CLI as real child processes.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { ResultRecord } from '../src/shared/types.js';
import { runCli, startCli } from './support/cli.js';
import { chatLine, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-test-key-123456';
const { dir, simulator } = perTestFixture(KEY);
/** The built lock module, for child processes that take the lock as another command would. */
const LOCK_MODULE = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'shared', 'lock.js')).href;

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('one run per results file', () => {
  it('refuses a second run while the first holds the results file, then takes over the lock the first left when killed', async () => {
    const s = await simulator({ latencyMs: 200 });
    const input = dir.file('locked.jsonl');
    await writeJsonl(input, Array.from({ length: 600 }, (_, i) => chatLine(i)));
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: s.url };
    const lock = dir.file('locked.results.jsonl.lock');

    const first = startCli(['run', input, '-q', '--concurrency', '4'], { env });
    await waitFor(() => existsSync(lock));
    expect(await readFile(lock, 'utf8')).toBe(String(first.child.pid));

    const second = await runCli(['run', input, '--resume', '-q'], { env });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another oai-batch command (pid ${first.child.pid}) is working on ${dir.file('locked.results.jsonl')}`);

    first.child.kill('SIGKILL');
    await first.done;
    expect(existsSync(lock)).toBe(true); // a killed run cannot clean up

    const third = await runCli(['run', input, '--resume', '-q'], { env });
    expect(third.stderr).toBe('');
    expect(third.code).toBe(0);
    expect(existsSync(lock)).toBe(false);
    const ids = (await readJsonl<ResultRecord>(dir.file('locked.results.jsonl'))).map((r) => r.custom_id);
    expect(new Set(ids).size).toBe(600);
    expect(ids).toHaveLength(600);
  }, 120_000);

  it('never shows another command an empty lock, which it would take for a dead one’s', async () => {
    const guarded = dir.file('busy.results.jsonl');
    const lock = `${guarded}.lock`;
    // Another process takes and releases the lock as fast as it can while this one reads it.
    const script = `import { lockFile } from ${JSON.stringify(LOCK_MODULE)}; for (let i = 0; i < 400; i++) await (await lockFile(${JSON.stringify(guarded)}, 'x'))();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));
    const seen: string[] = [];
    while (running) {
      const text = await readFile(lock, 'utf8').catch(() => null);
      if (text !== null) seen.push(text);
    }
    expect(await exited).toBe(0);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((text) => text !== String(child.pid))).toEqual([]);
  }, 60_000);

  it('lets exactly one of several commands take over a dead holder’s lock when they try at the same moment', async () => {
    const guarded = dir.file('stale.results.jsonl');
    const lock = `${guarded}.lock`;
    // A pid that runs no process: the holder was killed.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.on('exit', resolve));
    // Each racer waits for the same moment, tries, says "got" or "refused", and holds what it got for a while.
    const racer = (at: number): string =>
      `import { lockFile } from ${JSON.stringify(LOCK_MODULE)};` +
      `while (Date.now() < ${at}) {}` +
      `try { const release = await lockFile(${JSON.stringify(guarded)}, 'x'); console.log('got'); await new Promise((r) => setTimeout(r, 1500)); await release(); }` +
      `catch (error) { console.log(error.message.startsWith('another oai-batch command (pid ') ? 'refused' : error.message); }`;
    const run = (at: number): Promise<string> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', racer(at)]);
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.on('exit', () => resolve(out.trim()));
      });
    for (let round = 0; round < 5; round++) {
      await writeFile(lock, String(dead.pid));
      const at = Date.now() + 700;
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => run(at)));
      expect(outcomes.sort(), `round ${round}`).toEqual(['got', 'refused', 'refused', 'refused', 'refused', 'refused']);
      expect(existsSync(lock)).toBe(false);
    }
    expect((await readdir(dir.path)).filter((name) => name.includes('.lock'))).toEqual([]);
  }, 60_000);
});
