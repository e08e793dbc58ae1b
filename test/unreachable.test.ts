// A dead or wrong --base-url: the run stops once nothing connects (exit 1,
// stopped_reason "unreachable"), names the URL (and the proxy), leaves the
// lines pending rather than failed, and --resume finishes once the server is
// back. Over real sockets on loopback.

import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runBatch } from '../src/pipeline/run.js';
import type { RunOptions } from '../src/pipeline/options.js';
import type { RunEvent } from '../src/shared/events.js';
import { runCli } from './support/cli.js';
import { readJsonl, chatLine, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { runOptionsFor } from './support/run.js';

const KEY = 'sk-test-key-123456';
const { dir, simulator } = perTestFixture(KEY);

/** A loopback port nothing listens on (taken from the OS, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** No proxy from this machine's environment: the tests name their own. */
function options(input: string, baseUrl: string, extra: Partial<RunOptions> = {}): RunOptions {
  const o = runOptionsFor(input, baseUrl, KEY, { random: () => 0.01, ...extra });
  o.transport = { ...o.transport, env: {} };
  return o;
}

describe('a server nothing connects to', () => {
  it.each([64, 1])('stops with exit 1 and stopped_reason unreachable, lines pending not failed (concurrency %d); --resume finishes once it answers', async (concurrency) => {
    const port = await closedPort();
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const input = dir.file('dead.jsonl');
    await writeJsonl(input, Array.from({ length: 4000 }, (_, i) => chatLine(i)));
    const events: RunEvent[] = [];
    const { summary, exitCode } = await runBatch({ ...options(input, baseUrl, { concurrency }), onEvent: (e) => events.push(e) });
    expect(exitCode).toBe(1);
    expect(summary.stopped_reason).toBe('unreachable');
    expect(summary.requests).toMatchObject({ total: 4000, succeeded: 0, failed: 0, pending: 4000 });
    expect(await readJsonl(dir.file('dead.errors.jsonl'))).toEqual([]);
    // It gave up after a streak of failed connections, not after trying every line.
    expect(summary.attempts.total).toBeLessThanOrEqual(20 + 64);
    const stopping = events.find((e) => e.type === 'stopping');
    expect(stopping).toMatchObject({ reason: 'unreachable', message: expect.stringContaining(`nothing connects to ${baseUrl} (ECONNREFUSED`) });

    const s = await simulator({ port });
    const again = await runBatch(options(input, s.url, { resume: true }));
    expect(again.exitCode).toBe(0);
    expect(again.summary.requests).toMatchObject({ total: 4000, succeeded: 4000, failed: 0, pending: 0 });
  }, 60_000);

  it('names the proxy in use when the proxy itself refuses connections', async () => {
    const proxyPort = await closedPort();
    const input = dir.file('proxied.jsonl');
    await writeJsonl(input, Array.from({ length: 50 }, (_, i) => chatLine(i)));
    const events: RunEvent[] = [];
    const run = options(input, 'http://api.example.invalid/v1', { onEvent: (e) => events.push(e) });
    run.transport = { ...run.transport, env: { HTTP_PROXY: `http://user:secret@127.0.0.1:${proxyPort}` } };
    const { summary, exitCode } = await runBatch(run);
    expect(exitCode).toBe(1);
    expect(summary.stopped_reason).toBe('unreachable');
    const stopping = events.find((e) => e.type === 'stopping') as Extract<RunEvent, { type: 'stopping' }>;
    expect(stopping.message).toContain('nothing connects to http://api.example.invalid/v1 (');
    expect(stopping.message).toContain(`the proxy http://127.0.0.1:${proxyPort}`);
    expect(stopping.message).not.toContain('secret');
  }, 60_000);

  it('says why it stopped on stderr even with --quiet (an unattended job’s exit 1 is not left bare)', async () => {
    const port = await closedPort();
    const input = dir.file('quiet.jsonl');
    await writeJsonl(input, Array.from({ length: 100 }, (_, i) => chatLine(i)));
    const result = await runCli(['run', input, '--base-url', `http://127.0.0.1:${port}/v1`, '--quiet'], { env: { OPENAI_API_KEY: KEY } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`oai-batch: nothing connects to http://127.0.0.1:${port}/v1 (ECONNREFUSED`);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);
});
