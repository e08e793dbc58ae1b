// `npm run bench`: throughput at the limit, overhead and memory, against the
// simulator running in its own process with enforced limits (issue 3).
//
//   node bench/run.js              every scenario (≈ 12 minutes on 2 cores)
//   node bench/run.js --only a,d   some of them
//
// Prints one Markdown table: wall time, achieved rate ÷ limit (tokens as the
// server charges them), 429s, completeness, peak RSS of the client (the CLI).

import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { BIN, ROOT, chat, onlyArg, startSim, tpmLine, writeLines } from './lib.js';

const OUT = join(ROOT, 'bench', 'out');

const only = onlyArg();





/**
 * One client: the real CLI in its own process. Its peak RSS is read from
 * /proc/<pid>/status (VmHWM, the kernel's high-water mark) until it exits.
 */
async function runClient(config) {
  const args = ['run', config.input, '-o', config.output, '--errors', config.errors, '--summary', config.summary, '--overwrite', '--quiet'];
  if (config.rpm) args.push('--rpm', String(config.rpm));
  if (config.tpm) args.push('--tpm', String(config.tpm));
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, OPENAI_API_KEY: 'sk-bench-key', OPENAI_BASE_URL: config.baseUrl },
  });
  let peakKb = 0;
  const poll = setInterval(async () => {
    try {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // exited
    }
  }, 100);
  const [code] = await once(child, 'exit');
  clearInterval(poll);
  if (code !== 0 && code !== 2) throw new Error(`client exited with ${code}`);
  return { maxRssMB: peakKb / 1024 };
}

/** Distinct custom_ids with a success, streaming (a results file can be far larger than a string). */
async function successes(path) {
  const ids = new Set();
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.response?.status_code === 200) ids.add(r.custom_id);
  }
  return ids.size;
}

const scenarios = [
  {
    id: 'a',
    name: 'RPM-bound: 1,200 chat requests at 1,200 RPM, 100 ms latency',
    lines: 1200,
    make: chat,
    sim: ['--rpm', '1200', '--tpm', '100000000', '--latency-ms', '100'],
    clients: [{ rpm: 1200 }],
    limit: { kind: 'rpm', value: 1200 },
  },
  {
    id: 'b',
    name: 'TPM-bound: 2,000-character prompts, max_tokens 200, at 120,000 TPM',
    lines: 300,
    make: tpmLine,
    sim: ['--rpm', '100000', '--tpm', '120000', '--latency-ms', '100'],
    clients: [{ tpm: 120000 }],
    limit: { kind: 'tpm', value: 120000 },
  },
  {
    id: 'c',
    name: 'as (a), no --rpm/--tpm: limits learned from headers',
    lines: 1200,
    make: chat,
    sim: ['--rpm', '1200', '--tpm', '100000000', '--latency-ms', '100'],
    clients: [{}],
    limit: { kind: 'rpm', value: 1200 },
  },
  {
    id: 'd',
    name: 'overhead: latency 0, no limits, 20,000 requests',
    lines: 20000,
    make: chat,
    sim: ['--rpm', '1000000000', '--tpm', '1000000000000', '--no-quantize'],
    clients: [{}],
    limit: null,
  },
  {
    id: 'e1',
    name: 'memory: 100,000-line input (latency 0, no limits)',
    lines: 100_000,
    make: chat,
    sim: ['--rpm', '1000000000', '--tpm', '1000000000000', '--no-quantize'],
    clients: [{}],
    limit: null,
  },
  {
    id: 'e2',
    name: 'memory: 1,000,000-line input (latency 0, no limits)',
    lines: 1_000_000,
    make: chat,
    sim: ['--rpm', '1000000000', '--tpm', '1000000000000', '--no-quantize'],
    clients: [{}],
    limit: null,
  },
  {
    id: 'f',
    name: '--rpm 2,400 against a real limit of 1,200 (a lower tier, or a shared key)',
    lines: 1200,
    make: chat,
    sim: ['--rpm', '1200', '--tpm', '100000000', '--latency-ms', '100'],
    clients: [{ rpm: 2400 }],
    limit: { kind: 'rpm', value: 1200 },
  },
  {
    id: 'g',
    name: 'two runs at once on the same key, no flags (combined)',
    lines: 600,
    make: chat,
    sim: ['--rpm', '1200', '--tpm', '100000000', '--latency-ms', '100'],
    clients: [{}, {}],
    limit: { kind: 'rpm', value: 1200 },
  },
  {
    id: 'h',
    name: '5-second latency at 1,200 RPM (concurrency must grow)',
    lines: 1200,
    make: chat,
    sim: ['--rpm', '1200', '--tpm', '100000000', '--latency-ms', '5000', '--seed', '3'],
    clients: [{ rpm: 1200 }],
    limit: { kind: 'rpm', value: 1200 },
  },
];

async function runScenario(s) {
  const dir = join(OUT, s.id);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const sim = await startSim(s.sim);
  try {
    const inputs = [];
    for (let c = 0; c < s.clients.length; c++) {
      const input = join(dir, `input${c}.jsonl`);
      // Distinct bodies per client so the simulator's per-body counts stay meaningful.
      await writeLines(input, s.lines, (i) => s.make(i + c * s.lines));
      inputs.push(input);
    }
    const started = Date.now();
    const results = await Promise.all(
      s.clients.map((flags, c) =>
        runClient({
          input: inputs[c],
          output: join(dir, `results${c}.jsonl`),
          errors: join(dir, `errors${c}.jsonl`),
          summary: join(dir, `summary${c}.json`),
          baseUrl: sim.url,
          ...flags,
        }),
      ),
    );
    const wallSeconds = (Date.now() - started) / 1000;
    const stats = await sim.stats();
    let done = 0;
    for (let c = 0; c < s.clients.length; c++) done += await successes(join(dir, `results${c}.jsonl`));
    const total = s.lines * s.clients.length;
    // Achieved rate as the server measures it: what it admitted over the span
    // between the first and the last admission (tokens as it charges them);
    // and end to end, over the wall time of the run (start-up and the last
    // answer's latency included).
    let ratio = null;
    let wallRatio = null;
    const admitted = stats.admitted;
    const spanMinutes = Math.max(1e-9, (admitted.lastAt - admitted.firstAt) / 60000);
    if (s.limit) {
      const amount = s.limit.kind === 'rpm' ? admitted.requests : admitted.tokens;
      ratio = amount / spanMinutes / s.limit.value;
      wallRatio = amount / (wallSeconds / 60) / s.limit.value;
    }
    return {
      id: s.id,
      name: s.name,
      wallSeconds,
      ratio,
      wallRatio,
      requestsPerSecond: admitted.requests / (spanMinutes * 60),
      wallRequestsPerSecond: total / wallSeconds,
      rateLimited: stats.rateLimited,
      rateLimitedShare: stats.rateLimited / total,
      completeness: done / total,
      maxRssMB: Math.max(...results.map((r) => r.maxRssMB)),
      maxInFlight: stats.maxInFlight,
    };
  } finally {
    await sim.stop();
  }
}

const rows = [];
for (const s of scenarios) {
  if (only && !only.has(s.id) && !only.has(s.id[0])) continue;
  process.stderr.write(`bench ${s.id}: ${s.name} …\n`);
  const row = await runScenario(s);
  process.stderr.write(`  ${JSON.stringify(row)}\n`);
  rows.push(row);
}

const pct = (x) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
console.log('| case | scenario | wall | achieved ÷ limit (server) | (end to end) | req/s (server) | (end to end) | 429s | complete | peak RSS | max in flight |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.id} | ${r.name} | ${r.wallSeconds.toFixed(1)} s | ${r.ratio === null ? '–' : r.ratio.toFixed(3)} | ${r.wallRatio === null ? '–' : r.wallRatio.toFixed(3)} | ${r.requestsPerSecond.toFixed(0)} | ${r.wallRequestsPerSecond.toFixed(0)} | ${r.rateLimited} (${pct(r.rateLimitedShare)}) | ${pct(r.completeness)} | ${r.maxRssMB.toFixed(0)} MB | ${r.maxInFlight} |`,
  );
}
