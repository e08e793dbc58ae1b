// `oai-batch usage` / `costs` as a child process (the built CLI): exit code 4
// with --fail-on-anomaly, exit 1 without an admin key, the key never printed,
// and --simulate working with no key at all.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isoDate } from '../src/org/range.js';
import { createOrgRoutes, spikeDaySec, type OrgHistoryConfig } from '../src/sim/org.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'oai-batch.js');
const DAY = 86_400;
const ADMIN_KEY = 'sk-admin-org-cli-test-abcdefghijklmnop';
const CONFIG: OrgHistoryConfig = { seed: 1, anchorDaySec: Date.UTC(2026, 5, 1) / 1000 };
const SPIKE = spikeDaySec(CONFIG);

let sim: Simulator;
let dir: string;
beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'org.js'))) throw new Error('dist/ is not built: run `npx tsc -p tsconfig.json` before the CLI tests');
  sim = await startSimulator({ adminKey: ADMIN_KEY, routes: createOrgRoutes(CONFIG) });
  dir = await mkdtemp(join(tmpdir(), 'oai-batch-org-cli-'));
});
afterAll(async () => {
  await sim?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Only what the CLI needs: no OPENAI_* variables leak in from the environment running the tests.
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('oai-batch usage/costs as a process', () => {
  const spikeRange = ['--start', isoDate(SPIKE - 20 * DAY), '--end', isoDate(SPIKE + 3 * DAY)];
  const quietRange = ['--start', isoDate(SPIKE - 40 * DAY), '--end', isoDate(SPIKE)];

  it('exits 4 with --fail-on-anomaly when a day is flagged, after printing the report', async () => {
    const result = await run(['costs', ...spikeRange, '--base-url', sim.url, '--format', 'json', '--fail-on-anomaly'], { OPENAI_ADMIN_KEY: ADMIN_KEY });
    expect(result.code, result.stderr).toBe(4);
    expect(JSON.parse(result.stdout).anomalies.map((a: { date: string }) => a.date)).toContain(isoDate(SPIKE));
  });

  it('exits 0 for the same anomaly without --fail-on-anomaly, and 0 with it when nothing is flagged', async () => {
    const flagged = await run(['usage', ...spikeRange, '--base-url', sim.url], { OPENAI_ADMIN_KEY: ADMIN_KEY });
    expect(flagged.code, flagged.stderr).toBe(0);
    expect(flagged.stdout).toContain('Anomalies in daily tokens');
    const quiet = await run(['usage', ...quietRange, '--base-url', sim.url, '--fail-on-anomaly'], { OPENAI_ADMIN_KEY: ADMIN_KEY });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain('No anomalies in daily tokens');
  });

  it('exits 1 with one clear line when OPENAI_ADMIN_KEY is missing, even with an API key set', async () => {
    const result = await run(['usage', '--days', '7', '--base-url', sim.url], { OPENAI_API_KEY: 'sk-project-key-not-admin-123456' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/OPENAI_ADMIN_KEY is not set/);
    expect(result.stderr).not.toContain('sk-project-key-not-admin-123456');
  });

  it('never prints a rejected admin key', async () => {
    const key = 'sk-admin-rejected-secret-0000111122223333';
    const result = await run(['costs', '--days', '7', '--base-url', sim.url], { OPENAI_ADMIN_KEY: key });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/401/);
    expect(result.stdout + result.stderr).not.toContain(key);
  });

  it('runs against the built-in simulator with no key, flags its spike 9 days ago, and writes the HTML page', async () => {
    const result = await run(['usage', '--simulate', '--days', '30', '--format', 'json', '--fail-on-anomaly', '--html', 'usage.html'], {});
    expect(result.code, result.stderr).toBe(4);
    const today = Math.floor(Date.now() / 1000 / DAY) * DAY;
    expect(JSON.parse(result.stdout).anomalies.map((a: { date: string }) => a.date)).toContain(isoDate(today - 9 * DAY));
    const html = await readFile(join(dir, 'usage.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('data-chart=');
    expect(result.stderr).toContain(`wrote ${join(dir, 'usage.html')}`);
  });
});
