// Runs the built CLI (bin/oai-batch.js → dist/) as a real child process.
// `npm test` builds dist/ first.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/oai-batch.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Largest file the CLI may write, KiB (bash's `ulimit -f`): writes past it fail with EFBIG, as on a full disk. */
  fileSizeLimitKiB?: number;
}

/** A clean environment: no real keys or proxies leak into tests. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(OPENAI_|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy)/.test(k)) continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function startCli(args: string[], options: CliOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const command = options.fileSizeLimitKiB === undefined ? process.execPath : '/bin/bash';
  const argv =
    options.fileSizeLimitKiB === undefined
      ? [BIN, ...args]
      : ['-c', `ulimit -f ${options.fileSizeLimitKiB} && exec "$@"`, 'bash', process.execPath, BIN, ...args];
  const child = spawn(command, argv, {
    env: cleanEnv(options.env),
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  else child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}
