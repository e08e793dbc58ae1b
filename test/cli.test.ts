// The CLI as a real child process: help, version, the README demo, exit codes,
// and issue 2's acceptance run (a 2,000-line mixed file through injected faults).

import { describe, expect, it } from 'vitest';
import { copyFile } from 'node:fs/promises';
import { requestDigest } from '../src/sim/server.js';
import type { ResultRecord, Summary } from '../src/shared/types.js';
import { COMMANDS } from '../src/cli/commands.js';
import { VERSION } from '../src/shared/version.js';
import { runCli } from './support/cli.js';
import { batchLine, chatLine, readJson, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const { dir, simulator } = perTestFixture('sk-cli-acceptance-0001');

/** `batch submit <input>` → ['batch', 'submit']; `run <input>` → ['run']. */
function commandWords(command: string): string[] {
  return command.split(' ').filter((w) => !w.startsWith('<') && !w.startsWith('['));
}

describe('oai-batch CLI', () => {
  it('prints --help and --version for the tool and for every command', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const spec of COMMANDS) expect(top.stdout).toContain(commandWords(spec.command)[0] as string);
    expect((await runCli(['--version'])).stdout.trim()).toBe(VERSION);
    for (const spec of COMMANDS) {
      const words = commandWords(spec.command);
      const help = await runCli([...words, '--help']);
      expect(help.code, `${words.join(' ')} --help`).toBe(0);
      expect(help.stdout).toContain('--help');
      const version = await runCli([...words, '--version']);
      expect(version.stdout.trim(), `${words.join(' ')} --version`).toBe(VERSION);
    }
  }, 120_000);

  it('rejects unknown flags and missing commands with exit 1', async () => {
    const unknown = await runCli(['run', 'x.jsonl', '--bogus-flag']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/bogus-flag/);
    expect((await runCli([])).code).toBe(1);
  });

  it('runs the README demo on the built-in simulator, again and again with --overwrite', async () => {
    await copyFile(new URL('../samples/chat.jsonl', import.meta.url), dir.file('chat.jsonl'));
    for (let i = 0; i < 2; i++) {
      const demo = await runCli(['run', 'chat.jsonl', '--simulate', '--overwrite'], { cwd: dir.path });
      expect(demo.code).toBe(0);
      expect(demo.stderr).toMatch(/20 succeeded/);
    }
    const summary = await readJson<Summary>(dir.file('chat.summary.json'));
    expect(summary.requests).toMatchObject({ total: 20, succeeded: 20, failed: 0 });
    expect(summary.cost_usd.total).toBeGreaterThan(0);
    const again = await runCli(['run', 'chat.jsonl', '--simulate'], { cwd: dir.path });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--resume/);
    expect(again.stderr).toMatch(/--overwrite/);
  }, 60_000);

  it('needs -o, --errors and --summary when reading stdin, and then reads it', async () => {
    const missing = await runCli(['run', '-', '--simulate'], { stdin: JSON.stringify(chatLine(1)) + '\n' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/-o, --errors and --summary/);
    const ok = await runCli(
      ['run', '-', '--simulate', '-o', dir.file('r.jsonl'), '--errors', dir.file('e.jsonl'), '--summary', dir.file('s.json')],
      { stdin: [chatLine(1), chatLine(2)].map((l) => JSON.stringify(l)).join('\n') },
    );
    expect(ok.code).toBe(0);
    expect(await readJsonl(dir.file('r.jsonl'))).toHaveLength(2);
  });

  it('exits 1 with one clear line for a missing input, before anything is sent', async () => {
    const result = await runCli(['run', dir.file('nope.jsonl'), '--simulate']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/cannot read input .*nope\.jsonl: no such file/);
  });

  it('exits 1 when no key is set for the real API', async () => {
    await writeJsonl(dir.file('k.jsonl'), [chatLine(1)]);
    const result = await runCli(['run', dir.file('k.jsonl')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/OPENAI_API_KEY is not set/);
  });

  it('prints a plain progress line and the end table when stderr is not a terminal', async () => {
    await writeJsonl(dir.file('p.jsonl'), [chatLine(1)]);
    const result = await runCli(['run', dir.file('p.jsonl'), '--simulate']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^requests\s+1 total · 1 succeeded/m);
    const quiet = await runCli(['run', dir.file('p.jsonl'), '--simulate', '--overwrite', '--quiet']);
    expect(quiet.stderr).toBe('');
  });

  it('runs a 2,000-line mixed file through 10% 500s, 2% 503s, 2% resets, 2% malformed bodies and 1% hangs: exit 0, nothing lost or duplicated', async () => {
    const sim = await simulator({
      latencyMs: 20,
      faults: { '500': 0.1, '503': 0.02, reset: 0.02, malformed: 0.02, hang: 0.01 },
      hangMs: 60_000,
    });
    const lines: Array<Record<string, unknown>> = [];
    for (let i = 1; i <= 2000; i++) {
      lines.push(i % 2 ? { ...chatLine(i), metadata: { row: i } } : batchLine(`id-${i}`, i, { metadata: { row: i } }));
    }
    const input = dir.file('accept.jsonl');
    await writeJsonl(input, lines);
    const started = Date.now();
    const result = await runCli(['run', input, '--timeout', '3', '--concurrency', '16'], {
      env: { OPENAI_API_KEY: 'sk-cli-acceptance-0001', OPENAI_BASE_URL: sim.url },
    });
    const seconds = (Date.now() - started) / 1000;
    expect(result.code, result.stderr).toBe(0);

    const stats = sim.stats();
    expect(stats.maxInFlight).toBeLessThanOrEqual(16);
    expect(stats.faults['500']).toBeGreaterThan(100);
    expect(stats.faults.hang).toBeGreaterThan(5);
    expect(stats.withMetadata).toBe(0);
    expect(stats.duplicates).toBe(0);

    const results = await readJsonl<ResultRecord>(dir.file('accept.results.jsonl'));
    expect(results).toHaveLength(2000);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(2000);
    for (const r of results) {
      const line = lines[r.line - 1] as Record<string, unknown>;
      const { metadata, ...bare } = line;
      const sent = 'body' in line ? line.body : bare;
      const content = (r.response.body as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content;
      expect(content).toContain(`[sim:${requestDigest(JSON.stringify(sent))}]`);
      expect(r.metadata).toEqual(metadata);
    }
    const summary = await readJson<Summary>(dir.file('accept.summary.json'));
    expect(summary.requests).toEqual({ total: 2000, succeeded: 2000, failed: 0, skipped: 0, pending: 0 });
    expect(summary.attempts.total).toBe(stats.requests);
    expect(summary.attempts.timeouts).toBe(stats.faults.hang);
    expect(await readJsonl(dir.file('accept.errors.jsonl'))).toHaveLength(0);
    // --concurrency 16, not the (high) budget, held the rate down, and the summary says so.
    expect(Object.values(summary.limits).every((l) => l.concurrency_bound === true)).toBe(true);
    // For the README: the measured wall time of this run.
    process.stderr.write(`acceptance run: 2,000 lines in ${seconds.toFixed(1)} s\n`);
  }, 180_000);
});
