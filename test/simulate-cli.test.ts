// `oai-batch simulate` as a real child process (issue 15 item 22): a busy
// port is one line that suggests `--port 0`, and `--batch-seconds` sets the
// length of a simulated batch's lifecycle step, so `batch status`, `wait` and
// `cancel` can be tried by hand against a batch that takes its time.

import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { runCli, startCli } from './support/cli.js';
import { batchLine, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const { dir } = perTestFixture(null);
const KEY = 'sk-simulate-cli-0001';

let children: ChildProcess[] = [];
let blockers: Server[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  children = [];
  await Promise.all(blockers.map((server) => new Promise((resolve) => server.close(resolve))));
  blockers = [];
});

/** Starts `oai-batch simulate --port 0 …` and resolves to the base URL it prints. */
async function startSimulateCli(flags: string[]): Promise<string> {
  const { child } = startCli(['simulate', '--port', '0', ...flags]);
  children.push(child);
  let out = '';
  return new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+\/v1)/.exec(out);
      if (match) resolve(match[1] as string);
    });
    child.on('close', (code) => reject(new Error(`simulate exited ${code}: ${out}`)));
  });
}

describe('oai-batch simulate', () => {
  it('on a busy port prints one line suggesting --port 0, and exits 1', async () => {
    const blocker = createServer();
    blockers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    const result = await runCli(['simulate', '--port', String(port)]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`oai-batch: cannot listen on 127.0.0.1:${port}: the port is in use; pick another with --port N, or --port 0 for any free port`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('--batch-seconds holds a batch in each phase long enough to check status and cancel it by hand', async () => {
    const url = await startSimulateCli(['--batch-seconds', '3600']);
    await writeJsonl(dir.file('in.jsonl'), [batchLine('a', 1), batchLine('b', 2)]);
    const env = { OPENAI_API_KEY: KEY };
    const cli = (...args: string[]): ReturnType<typeof runCli> => runCli(['batch', ...args, 'in.jsonl', '--base-url', url], { cwd: dir.path, env });
    expect((await cli('submit', '--quiet')).code).toBe(0);
    const status = await cli('status', '--format', 'json');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { parts: Array<{ status: string }> }).parts[0]?.status).toBe('validating');
    expect((await cli('cancel')).code).toBe(0);
    const cancelling = await cli('status', '--format', 'json');
    expect((JSON.parse(cancelling.stdout) as { parts: Array<{ status: string }> }).parts[0]?.status).toBe('cancelling');
    // An hour per step: a short wait gives up (exit 3) and says the batches keep running.
    const wait = await cli('wait', '--timeout', '0.3', '--poll-interval', '0.05');
    expect(wait.code).toBe(3);
    expect(wait.stderr).toMatch(/keep running/);
  }, 60_000);

  it('--batch-seconds 0.05: submit --download runs the whole cycle against the separate simulator', async () => {
    const url = await startSimulateCli(['--batch-seconds', '0.05']);
    await writeJsonl(dir.file('in.jsonl'), [batchLine('a', 1), batchLine('b', 2)]);
    const result = await runCli(['batch', 'submit', 'in.jsonl', '--base-url', url, '--download', '--poll-interval', '0.02', '--timeout', '30', '--quiet'], {
      cwd: dir.path,
      env: { OPENAI_API_KEY: KEY },
    });
    expect(result.code, result.stderr).toBe(0);
    const status = await runCli(['batch', 'status', 'in.jsonl', '--base-url', url, '--format', 'json'], { cwd: dir.path, env: { OPENAI_API_KEY: KEY } });
    expect((JSON.parse(status.stdout) as { parts: Array<{ status: string }> }).parts[0]?.status).toBe('completed');
  }, 60_000);
});
