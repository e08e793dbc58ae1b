// Alert thresholds (--fail-on-error-rate, --fail-on-429-rate) and the exit-code
// precedence 1 > 3 > 5 > 2 > 0 (DESIGN.md §3): the pure rules as tables, then
// real runs of the CLI against the simulator.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStats, alertsOf, exitCodeOf } from '../src/pipeline/summarise.js';
import type { Summary } from '../src/shared/types.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';
import { runCli, startCli } from './support/cli.js';
import { chatLine, readJson, tempDir, writeJsonl } from './support/files.js';

function stats(counts: Partial<Pick<RunStats, 'sent' | 'inputProblems' | 'failed' | 'attempts' | 'rateLimited'>>): RunStats {
  return Object.assign(new RunStats(0), counts);
}

describe('alertsOf', () => {
  it.each([
    // error rate = failed ÷ (sent + bad lines)
    { case: 'error rate above the threshold', counts: { sent: 9, inputProblems: 1, failed: 2 }, thresholds: { errorRate: 0.1 }, alerts: [{ name: 'error_rate', value: 0.2, threshold: 0.1 }] },
    { case: 'error rate equal to the threshold (strictly greater needed)', counts: { sent: 9, inputProblems: 1, failed: 1 }, thresholds: { errorRate: 0.1 }, alerts: [] },
    { case: 'bad lines count in numerator and denominator', counts: { sent: 0, inputProblems: 3, failed: 3 }, thresholds: { errorRate: 0.99 }, alerts: [{ name: 'error_rate', value: 1, threshold: 0.99 }] },
    { case: 'a threshold of 0 and no failure', counts: { sent: 5, failed: 0 }, thresholds: { errorRate: 0 }, alerts: [] },
    { case: 'a threshold of 0 and one failure', counts: { sent: 5, failed: 1 }, thresholds: { errorRate: 0 }, alerts: [{ name: 'error_rate', value: 0.2, threshold: 0 }] },
    { case: 'nothing sent', counts: {}, thresholds: { errorRate: 0, rateLimitRate: 0 }, alerts: [] },
    // 429 rate = 429s ÷ attempts
    { case: '429 rate above the threshold', counts: { sent: 10, attempts: 12, rateLimited: 2 }, thresholds: { rateLimitRate: 0.1 }, alerts: [{ name: 'rate_limit_rate', value: 0.166667, threshold: 0.1 }] },
    { case: '429 rate equal to the threshold', counts: { sent: 9, attempts: 10, rateLimited: 1 }, thresholds: { rateLimitRate: 0.1 }, alerts: [] },
    {
      case: 'both crossed, in a fixed order',
      counts: { sent: 4, attempts: 8, rateLimited: 4, failed: 2 },
      thresholds: { errorRate: 0.25, rateLimitRate: 0.25 },
      alerts: [
        { name: 'error_rate', value: 0.5, threshold: 0.25 },
        { name: 'rate_limit_rate', value: 0.5, threshold: 0.25 },
      ],
    },
    { case: 'no thresholds, however bad the run', counts: { sent: 4, attempts: 8, rateLimited: 4, failed: 4 }, thresholds: {}, alerts: [] },
  ])('$case', ({ counts, thresholds, alerts }) => {
    expect(alertsOf(stats(counts), thresholds)).toEqual(alerts);
  });
});

describe('exitCodeOf: 1 > 3 > 5 > 2 > 0', () => {
  const alert = [{ name: 'error_rate', value: 0.5, threshold: 0.1 }];
  const requests = (failed: number): Summary['requests'] => ({ total: 10, succeeded: 10 - failed, failed, skipped: 0, pending: 0 });
  it.each([
    { case: 'every request succeeded', stopped_reason: null, alerts: [], failed: 0, code: 0 },
    { case: 'some failed for good', stopped_reason: null, alerts: [], failed: 2, code: 2 },
    { case: 'an alert crossed', stopped_reason: null, alerts: alert, failed: 0, code: 5 },
    { case: 'an alert crossed and some failed', stopped_reason: null, alerts: alert, failed: 2, code: 5 },
    { case: 'interrupted with an alert and failures', stopped_reason: 'interrupted', alerts: alert, failed: 2, code: 3 },
    { case: 'the cost cap reached', stopped_reason: 'max_cost', alerts: [], failed: 0, code: 3 },
    { case: 'a pause longer than 10 minutes', stopped_reason: 'rate_limit_wait', alerts: alert, failed: 0, code: 3 },
    { case: 'the key refused, with an alert', stopped_reason: 'auth_failed', alerts: alert, failed: 2, code: 1 },
    { case: 'the quota exhausted', stopped_reason: 'quota_exhausted', alerts: [], failed: 0, code: 1 },
  ] as const)('$case → $code', ({ stopped_reason, alerts, failed, code }) => {
    expect(exitCodeOf({ stopped_reason, alerts: [...alerts], requests: requests(failed) })).toBe(code);
  });
});

describe('alert thresholds in real runs (CLI against the simulator)', () => {
  let sim: Simulator;
  let fast: Simulator;
  const env = { OPENAI_API_KEY: 'sk-test-alerts-0123456789' };

  beforeAll(async () => {
    // 300 requests/min = 5 per second: a client told --rpm 1500 meets 429s.
    sim = await startSimulator({ rpm: 300, latencyMs: 20 });
    fast = await startSimulator({ latencyMs: 20 });
  });
  afterAll(async () => {
    await Promise.all([sim.close(), fast.close()]);
  });

  async function run(lines: unknown[], flags: string[], server = sim): Promise<{ code: number | null; summary: Summary; stderr: string }> {
    const dir = await tempDir();
    const input = dir.file('in.jsonl');
    await writeJsonl(input, lines);
    const result = await runCli(['run', input, '--base-url', server.url, '--quiet', ...flags], { env });
    const summary = await readJson<Summary>(dir.file('in.summary.json'));
    await dir.remove();
    return { code: result.code, summary, stderr: result.stderr };
  }

  const requests = (n: number, offset = 0): unknown[] => Array.from({ length: n }, (_, i) => chatLine(offset + i, { model: 'gpt-4o-mini' }));

  it('exits 5 when the share of 429s crosses --fail-on-429-rate, and lists the alert', async () => {
    const { code, summary } = await run(requests(15), ['--rpm', '1500', '--fail-on-429-rate', '0.05']);
    expect(summary.requests).toMatchObject({ total: 15, succeeded: 15, failed: 0 });
    expect(summary.attempts.rate_limited).toBeGreaterThan(0);
    const rate = summary.attempts.rate_limited / summary.attempts.total;
    expect(rate).toBeGreaterThan(0.05);
    expect(summary.alerts).toEqual([{ name: 'rate_limit_rate', value: Math.round(rate * 1e6) / 1e6, threshold: 0.05 }]);
    expect(code).toBe(5);
  });

  it('still exits 5, not 2, when the run that crossed the 429 threshold also had failures', async () => {
    const { code, summary } = await run([...requests(15, 100), '{not json', '[1, 2]'], ['--rpm', '1500', '--fail-on-429-rate', '0.05']);
    expect(summary.requests).toMatchObject({ total: 17, succeeded: 15, failed: 2 });
    expect(summary.attempts.rate_limited).toBeGreaterThan(0);
    expect(summary.alerts.map((a) => a.name)).toEqual(['rate_limit_rate']);
    expect(code).toBe(5);
  });

  it('exits 5 on an error rate strictly above --fail-on-error-rate and 2 at exactly the threshold', async () => {
    // 9 requests + 1 bad line: error rate = 1 ÷ (9 + 1) = 0.1.
    const lines = [...requests(9, 200), '{"model": "gpt-4o-mini", "messages": ['];
    const [above, equal] = await Promise.all([
      run(lines, ['--fail-on-error-rate', '0.05'], fast),
      run(lines, ['--fail-on-error-rate', '0.1'], fast),
    ]);
    expect(above.summary.alerts).toEqual([{ name: 'error_rate', value: 0.1, threshold: 0.05 }]);
    expect(above.code).toBe(5);
    expect(equal.summary.alerts).toEqual([]);
    expect(equal.code).toBe(2);
  });

  it('exits 3 when interrupted, even though a threshold was crossed', async () => {
    const slow = await startSimulator({ latencyMs: 1500 });
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, ['{bad line', ...requests(200, 300)]);
      const { child, done } = startCli(
        ['run', input, '--base-url', slow.url, '--rpm', '120', '--fail-on-error-rate', '0', '--log-format', 'json', '--drain-timeout', '10'],
        { env },
      );
      // Interrupt once the first request is on its way.
      await new Promise<void>((resolve) => {
        let seen = '';
        child.stderr?.on('data', (chunk: Buffer) => {
          seen += chunk.toString();
          if (seen.includes('"event":"request_started"')) resolve();
        });
      });
      child.kill('SIGINT');
      const result = await done;
      const summary = await readJson<Summary>(dir.file('in.summary.json'));
      expect(summary.stopped_reason).toBe('interrupted');
      expect(summary.requests.pending).toBeGreaterThan(0);
      expect(summary.alerts.map((a) => a.name)).toEqual(['error_rate']);
      expect(result.code).toBe(3);
    } finally {
      await dir.remove();
      await slow.close();
    }
  });

  it('exits 1 when the quota runs out, whatever the thresholds say', async () => {
    const broke = await startSimulator({ quotaAfterRequests: 2 });
    const dir = await tempDir();
    try {
      const input = dir.file('in.jsonl');
      await writeJsonl(input, ['{bad line', ...requests(10, 400)]);
      const result = await runCli(['run', input, '--base-url', broke.url, '--quiet', '--concurrency', '1', '--fail-on-error-rate', '0'], { env });
      const summary = await readJson<Summary>(dir.file('in.summary.json'));
      expect(summary.stopped_reason).toBe('quota_exhausted');
      expect(summary.alerts.map((a) => a.name)).toEqual(['error_rate']);
      expect(result.code).toBe(1);
    } finally {
      await dir.remove();
      await broke.close();
    }
  });
});
