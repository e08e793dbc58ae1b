// Overhead of OpenTelemetry tracing (issue 17): zero-latency throughput of a
// run with traces exported over OTLP/HTTP (protobuf, to a sink on loopback
// that accepts and discards) against the same run without. Target: ≥ 85 %.
//
//   node bench/otel.js [--lines 20000] [--rounds 3] [--env OTEL_BSP_MAX_EXPORT_BATCH_SIZE=128 …] [--also K=V …]
//
// --env applies to every traced run; --also adds a third run to each round,
// traced with these variables on top, so two settings meet the same noise.
//
// The simulator and the sink run in their own processes; the client is the
// real CLI. Rounds alternate off/on so drift in machine load hits both.
// Prints one Markdown table with the median of each: throughput, the
// client's CPU per request, and its main thread's alone (the SDK runs on
// an export thread of its own, src/observe/span-thread.ts).

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'bench', 'out', 'otel');
const BIN = join(ROOT, 'bin', 'oai-batch.js');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', 20_000);
const ROUNDS = arg('rounds', 3);
/** `--env K=V` (repeatable): extra variables for the traced runs, e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE=128. */
const pairsAfter = (flag) => process.argv.flatMap((a, i) => (process.argv[i - 1] === flag ? [[a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]] : []));
const EXTRA_ENV = pairsAfter('--env');
/** `--also K=V` (repeatable): a third, traced run in each round with these variables on top of --env. */
const ALSO_ENV = pairsAfter('--also');

/** A process printing `listening on URL` (the simulator) or the sink below. */
async function startProcess(args, pattern) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      text += d;
      const m = pattern.exec(text);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit').catch(() => {});
    },
  };
}

/** An OTLP/HTTP sink in its own process: 200 to every POST, bytes counted and dropped. */
const SINK = `
const http = require('node:http');
let bytes = 0, posts = 0;
const server = http.createServer((req, res) => {
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => { posts += 1; res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(); });
});
server.listen(0, '127.0.0.1', () => console.log('sink on http://127.0.0.1:' + server.address().port));
process.on('SIGTERM', () => { console.error(JSON.stringify({ posts, bytes })); process.exit(0); });
`;

async function writeInput(path) {
  const out = createWriteStream(path);
  for (let i = 0; i < LINES; i++) {
    const line = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Request ${i}: summarise the number ${i} in a word.` }], max_tokens: 20 };
    if (!out.write(JSON.stringify(line) + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function runOnce(input, baseUrl, tracing, sinkUrl, also = []) {
  const env = { ...process.env, OPENAI_API_KEY: 'sk-bench-key', OPENAI_BASE_URL: baseUrl };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  if (tracing) {
    env.OTEL_EXPORTER_OTLP_ENDPOINT = sinkUrl;
    for (const [k, v] of [...EXTRA_ENV, ...also]) env[k] = v;
  }
  const summary = join(OUT, 'summary.json');
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [BIN, 'run', input, '-o', join(OUT, 'results.jsonl'), '--errors', join(OUT, 'errors.jsonl'), '--summary', summary, '--overwrite', '--quiet'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // The client's CPU time (utime + stime, in clock ticks of 10 ms), read until it exits: on a shared
  // machine, CPU per request is steadier than throughput, which other processes' load moves.
  // Its main thread's alone too (the one that sends the requests; the SDK runs on another).
  let cpuTicks = 0;
  let mainTicks = 0;
  const ticks = async (path) => {
    const fields = (await readFile(path, 'utf8')).split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  const poll = setInterval(async () => {
    try {
      cpuTicks = await ticks(`/proc/${child.pid}/stat`);
      mainTicks = await ticks(`/proc/${child.pid}/task/${child.pid}/stat`);
    } catch {
      // exited
    }
  }, 20);
  const [code] = await once(child, 'exit');
  clearInterval(poll);
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`run exited with ${code}: ${stderr}`);
  if (tracing && !stderr.includes(`traces: ${LINES + 1} spans exported`)) throw new Error(`spans missing: ${stderr}`);
  const s = JSON.parse(await readFile(summary, 'utf8'));
  return { wallSeconds, endToEndPerSecond: LINES / wallSeconds, runPerSecond: s.timing.requests_per_minute / 60, cpuMsPerRequest: (cpuTicks * 10) / LINES, mainCpuMsPerRequest: (mainTicks * 10) / LINES };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });
const input = join(OUT, 'input.jsonl');
await writeInput(input);
const sim = await startProcess([BIN, 'simulate', '--port', '0', '--rpm', '1000000000', '--tpm', '1000000000000', '--no-quantize'], /listening on (\S+)/);
const sink = await startProcess(['-e', SINK], /sink on (\S+)/);
const rows = { off: [], on: [], also: [] };
const variants = [
  { name: 'off', tracing: false, also: [] },
  { name: 'on', tracing: true, also: [] },
  ...(ALSO_ENV.length > 0 ? [{ name: 'also', tracing: true, also: ALSO_ENV }] : []),
];
try {
  await runOnce(input, sim.url, false, sink.url); // warm-up: page cache, JIT of the simulator
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of variants) {
      const r = await runOnce(input, sim.url, variant.tracing, sink.url, variant.also);
      process.stderr.write(`round ${round + 1} ${variant.name.padEnd(4)}: ${r.wallSeconds.toFixed(2)} s, ${r.runPerSecond.toFixed(0)} req/s (run), ${r.endToEndPerSecond.toFixed(0)} req/s (end to end), client CPU ${(r.cpuMsPerRequest * 1000).toFixed(0)} µs/request (main thread ${(r.mainCpuMsPerRequest * 1000).toFixed(0)})\n`);
      rows[variant.name].push(r);
    }
  }
} finally {
  await sink.stop();
  await sim.stop();
}

const summary = (list) => ({
  run: median(list.map((r) => r.runPerSecond)),
  e2e: median(list.map((r) => r.endToEndPerSecond)),
  cpu: median(list.map((r) => r.cpuMsPerRequest)),
  main: median(list.map((r) => r.mainCpuMsPerRequest)),
});
const off = summary(rows.off);
const on = summary(rows.on);
const pct = (a, b) => `${((a / b) * 100).toFixed(1)}%`;
const row = (label, x) => console.log(`| ${label} | ${x.run.toFixed(0)} | ${x.e2e.toFixed(0)} | ${(x.cpu * 1000).toFixed(0)} µs | ${(x.main * 1000).toFixed(0)} µs |`);
console.log(`| ${LINES.toLocaleString('en-US')} requests, latency 0, median of ${ROUNDS} | req/s (run, summary) | req/s (end to end, process) | client CPU per request | its main thread's |`);
console.log('|---|---|---|---|---|');
row('tracing off', off);
row('tracing on (OTLP protobuf)', on);
console.log(`| on ÷ off | ${pct(on.run, off.run)} | ${pct(on.e2e, off.e2e)} | ${pct(on.cpu, off.cpu)} | ${pct(on.main, off.main)} |`);
// Each round's own ratio (on ÷ the off run just before it): the medians above can pair a fast off round with a slow on round.
const pairRatio = (pick) => median(rows.on.map((r, i) => pick(r) / pick(rows.off[i])));
const pairs = [(r) => r.runPerSecond, (r) => r.endToEndPerSecond, (r) => r.cpuMsPerRequest, (r) => r.mainCpuMsPerRequest].map((pick) => `${(pairRatio(pick) * 100).toFixed(1)}%`);
console.log(`| round by round, median | ${pairs.join(' | ')} |`);
if (rows.also.length > 0) {
  const also = summary(rows.also);
  const label = ALSO_ENV.map(([k, v]) => `${k}=${v}`).join(' ');
  row(`tracing on, ${label}`, also);
  console.log(`| that ÷ off | ${pct(also.run, off.run)} | ${pct(also.e2e, off.e2e)} | ${pct(also.cpu, off.cpu)} | ${pct(also.main, off.main)} |`);
}
