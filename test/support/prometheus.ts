// Real Prometheus tools for tests: promtool and a prometheus server on a free
// loopback port with its own temporary storage, plus a parser of the text
// exposition format and a way to start `oai-batch monitor` as a process.
// Tests that need the binaries skip with MISSING_PROMETHEUS when they are
// not installed (Debian: apt-get install prometheus).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { startCli, type CliResult } from './cli.js';

/** Absolute path of an executable on PATH (or in /usr/bin), or null. */
function which(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

export const PROMTOOL = which('promtool');
export const PROMETHEUS = which('prometheus');
export const MISSING_PROMTOOL = PROMTOOL === null ? ' (SKIPPED: promtool not found on PATH; install Debian package `prometheus`)' : '';
export const MISSING_PROMETHEUS = PROMETHEUS === null ? ' (SKIPPED: prometheus not found on PATH; install Debian package `prometheus`)' : '';

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `args` (and `stdin`), synchronously: each call takes milliseconds. */
export function promtool(args: string[], stdin?: string, cwd?: string): ToolResult {
  if (PROMTOOL === null) throw new Error('promtool is not installed');
  const result = spawnSync(PROMTOOL, args, { input: stdin ?? '', cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A free TCP port on 127.0.0.1 (asked of the OS; prometheus cannot be told to pick one itself). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PrometheusServer {
  url: string;
  /** An instant query through the HTTP API: the result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Resolves once every target has been scraped at least once and is up. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts `prometheus` with `config` on a free loopback port; storage in `dir`. */
export async function startPrometheus(configPath: string, dir: string): Promise<PrometheusServer> {
  if (PROMETHEUS === null) throw new Error('prometheus is not installed');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`prometheus did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      return data.result;
    },
    async waitForTargetsUp(timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const data = await api<{ activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }>('/api/v1/targets');
        if (data.activeTargets.length > 0 && data.activeTargets.every((t) => t.health === 'up')) return;
        if (Date.now() > until) throw new Error(`targets not up: ${JSON.stringify(data.activeTargets)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples of `name` whose labels include `where`. */
export function sumOf(samples: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

export interface MonitorProcess {
  child: ChildProcess;
  /** http://127.0.0.1:PORT/metrics, as the monitor printed it. */
  metricsUrl: string;
  /** The text of /metrics once a good poll (or `polls` of them) has been made. */
  scrapeAfterPolls(polls?: number, timeoutMs?: number): Promise<string>;
  stderr(): string;
  /** SIGTERM, then the exit. */
  stop(): Promise<CliResult>;
  /** The exit, without a signal. */
  exited: Promise<CliResult>;
}

/** Starts `oai-batch monitor --metrics-port 0 …` and waits for the URL it prints. */
export async function startMonitor(args: string[], env: Record<string, string | undefined> = {}): Promise<MonitorProcess> {
  const { child, done } = startCli(['monitor', '--metrics-port', '0', ...args], { env, timeoutMs: 120_000 });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const match = /metrics at (http:\/\/\S+\/metrics)/.exec(stderr);
      if (match) resolve(match[1] as string);
    };
    child.stderr?.on('data', onData);
    void done.then((r) => reject(new Error(`monitor exited with ${r.code} before serving metrics: ${r.stderr}`)));
  });
  return {
    child,
    metricsUrl,
    stderr: () => stderr,
    async scrapeAfterPolls(polls = 1, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const goodPolls = (stderr.match(/monitor: as of /g) ?? []).length;
        if (goodPolls >= polls) return (await fetch(metricsUrl)).text();
        if (child.exitCode !== null) throw new Error(`monitor exited: ${stderr}`);
        if (Date.now() > until) throw new Error(`no good poll in time: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return done;
    },
    exited: done,
  };
}
