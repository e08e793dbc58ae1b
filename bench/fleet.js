// Many workers, one budget (issue 16, DESIGN.md §6): workers as real CLI
// processes on one simulator key, sharing a real redis-server, then merged.
//
//   npm run build && node bench/fleet.js                   every scenario (≈ 20 minutes on 2 cores)
//   node bench/fleet.js --only shared,overhead,kill,outage  some of them
//   node bench/fleet.js --only shared --cases rpm --workers 8 --budget redis
//   node bench/fleet.js --only outage --down 90
//
// shared:   4 and 8 workers (--shard I/N), a 600 RPM case and a token-bound
//           case, limits learned from headers (no --rpm/--tpm), with --redis
//           and without it for contrast. Combined rate as the server measured
//           it ÷ the real limit, 429s ÷ attempts, completeness after merge.
// overhead: one worker, zero-latency simulator with huge limits, req/s with
//           --redis ÷ without.
// kill:     4 workers with --redis; kill -9 one mid-run, restart it with
//           --resume; after merge every line once, paid twice ≤ its in-flight.
// outage:   4 workers with --redis; Redis killed for 10 s (the run goes on)
//           and for 90 s (exit 3 after --redis-timeout 60, then --resume).
//
// Prints a Markdown table per group. The simulator and redis-server run in
// their own processes (loopback, free ports).

import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { BIN, ROOT, chat, startSim, tpmLine, writeLines } from './lib.js';
import os from 'node:os';

const OUT = join(ROOT, 'bench', 'out', 'fleet');
const KEY = 'sk-bench-fleet-key';

/** `--name a,b` → ['a', 'b'], or `fallback`. */
function listArg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1].split(',') : fallback;
}
const only = listArg('--only', null) && new Set(listArg('--only', null));
// Narrow the shared group: --cases rpm,tpm --workers 4,8 --budget redis,alone
const sharedCases = listArg('--cases', ['rpm', 'tpm']);
const sharedWorkers = listArg('--workers', ['4', '8']).map(Number);
const sharedBudgets = listArg('--budget', ['redis', 'alone']);

// ---------------------------------------------------------------------------
// Inputs (the same generators as bench/run.js).



// ---------------------------------------------------------------------------
// Processes.

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}


/** A redis-server on a free loopback port that can be killed (its data lost) and started again on the same port. */
async function startRedis() {
  const port = await freePort();
  let child = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        text += d;
        if (/Ready to accept connections/.test(text)) resolve();
      });
      child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
  };
  const kill = async () => {
    if (!child || child.exitCode !== null) return;
    const c = child;
    c.kill('SIGKILL');
    await once(c, 'exit').catch(() => {});
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, start, kill };
}

/** One worker: the real CLI in its own process. */
function startWorker(args, baseUrl, { json = false } = {}) {
  const child = spawn(process.execPath, [BIN, 'run', ...args, ...(json ? ['--log-format', 'json'] : ['--quiet'])], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, OPENAI_API_KEY: KEY, OPENAI_BASE_URL: baseUrl },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const startedAt = Date.now();
  const done = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, seconds: (Date.now() - startedAt) / 1000, endedAt: Date.now(), stderr })));
  return { child, done, stderr: () => stderr };
}

function workerArgs(input, dir, index, count, redisUrl, extra = []) {
  const shard = count > 1 ? ['--shard', `${index}/${count}`] : ['-o', join(dir, 'r.results.jsonl'), '--errors', join(dir, 'r.errors.jsonl'), '--summary', join(dir, 'r.summary.json')];
  return [input, ...shard, ...(redisUrl ? ['--redis', redisUrl] : []), ...extra];
}

async function merge(input, shards) {
  const child = spawn(process.execPath, [BIN, 'merge', input, '--shards', String(shards), '--overwrite'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const [code] = await once(child, 'exit');
  const summary = JSON.parse(await readFile(input.replace(/\.jsonl$/, '.summary.json'), 'utf8'));
  const repeated = /(\d[\d,]*) repeated successes/.exec(stdout);
  return { code, summary, repeated: repeated ? Number(repeated[1].replace(/,/g, '')) : 0 };
}

/** Success records per custom_id in a results file. */
async function successIds(path) {
  const ids = new Set();
  try {
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line) continue;
      try {
        const r = JSON.parse(line);
        if (r.response?.status_code === 200) ids.add(r.custom_id);
      } catch {
        // torn last line
      }
    }
  } catch {
    // not there yet
  }
  return ids;
}

async function freshDir(name) {
  const dir = join(OUT, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Achieved rate as the server measured it: admissions over the span from the first to the last, ÷ the limit. */
function serverRatio(stats, limit) {
  const a = stats.admitted;
  const minutes = Math.max(1e-9, (a.lastAt - a.firstAt) / 60000);
  return (limit.kind === 'rpm' ? a.requests : a.tokens) / minutes / limit.value;
}

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' / ');

// ---------------------------------------------------------------------------
// Scenarios.

const CASES = {
  rpm: { name: '600 RPM', lines: 600, make: chat, sim: ['--rpm', '600', '--tpm', '100000000', '--latency-ms', '100'], limit: { kind: 'rpm', value: 600 } },
  tpm: {
    name: '300,000 TPM (≈ 700-token requests)',
    lines: 400,
    make: tpmLine,
    sim: ['--rpm', '100000', '--tpm', '300000', '--latency-ms', '100'],
    limit: { kind: 'tpm', value: 300000 },
  },
};

async function shared() {
  const rows = [];
  for (const caseId of sharedCases) {
    for (const workers of sharedWorkers) {
      for (const withRedis of sharedBudgets.map((b) => b === 'redis')) {
        const c = CASES[caseId];
        const dir = await freshDir(`shared-${caseId}-${workers}-${withRedis ? 'redis' : 'alone'}`);
        const input = join(dir, 'in.jsonl');
        await writeLines(input, c.lines, c.make);
        const sim = await startSim(c.sim);
        const redis = withRedis ? await startRedis() : null;
        try {
          process.stderr.write(`fleet shared: ${c.name}, ${workers} workers, ${withRedis ? '--redis' : 'no --redis'} … (load ${load()})\n`);
          const started = Date.now();
          const results = await Promise.all(Array.from({ length: workers }, (_, i) => startWorker(workerArgs(input, dir, i, workers, redis?.url), sim.url).done));
          const wallSeconds = (Date.now() - started) / 1000;
          const stats = await sim.stats();
          const merged = await merge(input, workers);
          const amount = c.limit.kind === 'rpm' ? stats.admitted.requests : stats.admitted.tokens;
          const row = {
            case: c.name,
            workers,
            redis: withRedis,
            wallSeconds,
            ratio: serverRatio(stats, c.limit),
            wallRatio: amount / (wallSeconds / 60) / c.limit.value,
            attempts: stats.requests,
            rateLimited: stats.rateLimited,
            exitCodes: results.map((r) => r.code).join(','),
            mergeCode: merged.code,
            succeeded: merged.summary.requests.succeeded,
            lines: c.lines,
            paidTwice: stats.duplicates,
            load: load(),
          };
          process.stderr.write(`  ${JSON.stringify(row)}\n`);
          rows.push(row);
        } finally {
          await redis?.kill();
          await sim.stop();
        }
      }
    }
  }
  console.log('\n| case | workers | budget | wall | combined ÷ limit (server) | (end to end) | 429s ÷ attempts | after merge | paid twice | exit codes |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.case} | ${r.workers} | ${r.redis ? '--redis' : 'each its own'} | ${r.wallSeconds.toFixed(0)} s | ${r.ratio.toFixed(3)} | ${r.wallRatio.toFixed(3)} | ${r.rateLimited} ÷ ${r.attempts} = ${((r.rateLimited / r.attempts) * 100).toFixed(2)}% | ${r.succeeded}/${r.lines} (merge exit ${r.mergeCode}) | ${r.paidTwice} | ${r.exitCodes} |`,
    );
  }
}

async function overhead() {
  const rows = [];
  const lines = 20000;
  for (const withRedis of [false, true]) {
    const dir = await freshDir(`overhead-${withRedis ? 'redis' : 'alone'}`);
    const input = join(dir, 'in.jsonl');
    await writeLines(input, lines, chat);
    const sim = await startSim(['--rpm', '1000000000', '--tpm', '1000000000000', '--no-quantize']);
    const redis = withRedis ? await startRedis() : null;
    try {
      process.stderr.write(`fleet overhead: ${withRedis ? '--redis' : 'no --redis'} … (load ${load()})\n`);
      const result = await startWorker(workerArgs(input, dir, 0, 1, redis?.url), sim.url).done;
      const stats = await sim.stats();
      const span = (stats.admitted.lastAt - stats.admitted.firstAt) / 1000;
      rows.push({ redis: withRedis, code: result.code, seconds: result.seconds, serverRps: stats.admitted.requests / span, wallRps: lines / result.seconds, load: load() });
      process.stderr.write(`  ${JSON.stringify(rows.at(-1))}\n`);
    } finally {
      await redis?.kill();
      await sim.stop();
    }
  }
  const [alone, shared] = rows;
  console.log('\n| one worker, 20,000 requests, zero latency, huge limits | wall | req/s (server) | req/s (end to end) | exit |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.redis ? '--redis' : 'no --redis'} | ${r.seconds.toFixed(1)} s | ${r.serverRps.toFixed(0)} | ${r.wallRps.toFixed(0)} | ${r.code} |`);
  console.log(`\n--redis ÷ no --redis: ${(shared.serverRps / alone.serverRps).toFixed(3)} (server), ${(shared.wallRps / alone.wallRps).toFixed(3)} (end to end)`);
}

async function kill() {
  const c = CASES.rpm;
  const workers = 4;
  const dir = await freshDir('kill');
  const input = join(dir, 'in.jsonl');
  await writeLines(input, c.lines, c.make);
  const sim = await startSim(c.sim);
  const redis = await startRedis();
  try {
    process.stderr.write(`fleet kill: 4 workers, kill -9 worker 1 mid-run, restart with --resume … (load ${load()})\n`);
    const running = Array.from({ length: workers }, (_, i) => startWorker(workerArgs(input, dir, i, workers, redis.url), sim.url, { json: i === 1 }));
    const victim = running[1];
    const results1 = join(dir, 'in.shard-1-of-4.results.jsonl');
    // In flight: started by the victim (its JSON log) and not finished.
    const inFlight = () => {
      const open = new Set();
      for (const line of victim.stderr().split('\n')) {
        let e;
        try {
          e = JSON.parse(line);
        } catch {
          continue; // not JSON, or the line is still being written
        }
        if (e.event === 'request_started') open.add(e.custom_id);
        if (e.event === 'request_finished') open.delete(e.custom_id);
      }
      return open;
    };
    // Mid-run, at a moment it has requests out (at 600 RPM over 4 workers and 100 ms, one or two).
    while ((await successIds(results1)).size < 40 || inFlight().size === 0) await sleep(5);
    victim.child.kill('SIGKILL');
    await victim.done;
    const open = inFlight();
    const recordedAtKill = (await successIds(results1)).size;
    const restarted = startWorker(workerArgs(input, dir, 1, workers, redis.url, ['--resume']), sim.url);
    const others = await Promise.all([running[0].done, running[2].done, running[3].done, restarted.done]);
    const stats = await sim.stats();
    const merged = await merge(input, workers);
    const row = {
      inFlightAtKill: open.size,
      recordedAtKill,
      paidTwice: stats.duplicates,
      succeeded: merged.summary.requests.succeeded,
      lines: c.lines,
      mergeCode: merged.code,
      repeatedInMerge: merged.repeated,
      exitCodes: others.map((r) => r.code).join(','),
      rateLimited: stats.rateLimited,
      attempts: stats.requests,
      load: load(),
    };
    process.stderr.write(`  ${JSON.stringify(row)}\n`);
    console.log('\n| kill -9 one of 4 workers (600 RPM, --redis), restart with --resume | value |');
    console.log('|---|---|');
    console.log(`| lines succeeded after merge | ${row.succeeded}/${row.lines} (merge exit ${row.mergeCode}, ${row.repeatedInMerge} repeated successes) |`);
    console.log(`| paid twice (simulator: bodies answered more than once) | ${row.paidTwice} |`);
    console.log(`| the killed worker's requests in flight at the kill | ${row.inFlightAtKill} |`);
    console.log(`| 429s ÷ attempts | ${row.rateLimited} ÷ ${row.attempts} |`);
    console.log(`| exit codes (3 others, restarted) | ${row.exitCodes} |`);
  } finally {
    await redis.kill();
    await sim.stop();
  }
}

async function outage() {
  const c = CASES.rpm;
  const workers = 4;
  const rows = [];
  for (const downSeconds of listArg('--down', ['10', '90']).map(Number)) {
    const dir = await freshDir(`outage-${downSeconds}`);
    const input = join(dir, 'in.jsonl');
    await writeLines(input, c.lines, c.make);
    const sim = await startSim(c.sim);
    const redis = await startRedis();
    try {
      process.stderr.write(`fleet outage: Redis killed for ${downSeconds} s mid-run … (load ${load()})\n`);
      const running = Array.from({ length: workers }, (_, i) => startWorker(workerArgs(input, dir, i, workers, redis.url), sim.url));
      await sleep(15_000);
      await redis.kill();
      const killedAt = Date.now();
      await sleep(downSeconds * 1000);
      await redis.start();
      const first = await Promise.all(running.map((w) => w.done));
      for (const r of first) if (r.code !== 0 && r.code !== 3) process.stderr.write(`  a worker exited ${r.code}:\n${r.stderr.slice(-2000)}\n`);
      let resumed = null;
      if (first.some((r) => r.code !== 0)) {
        resumed = await Promise.all(Array.from({ length: workers }, (_, i) => startWorker(workerArgs(input, dir, i, workers, redis.url, ['--resume']), sim.url).done));
      }
      const stats = await sim.stats();
      const merged = await merge(input, workers);
      const row = {
        downSeconds,
        firstExitCodes: first.map((r) => r.code).join(','),
        lastExitAfterKillSeconds: (Math.max(...first.map((r) => r.endedAt)) - killedAt) / 1000,
        resumedExitCodes: resumed ? resumed.map((r) => r.code).join(',') : '–',
        succeeded: merged.summary.requests.succeeded,
        lines: c.lines,
        mergeCode: merged.code,
        paidTwice: stats.duplicates,
        rateLimited: stats.rateLimited,
        attempts: stats.requests,
        load: load(),
      };
      process.stderr.write(`  ${JSON.stringify(row)}\n`);
      rows.push(row);
    } finally {
      await redis.kill();
      await sim.stop();
    }
  }
  console.log('\n| Redis killed mid-run (4 workers, 600 RPM, --redis-timeout 60) | exit codes | last exit, s after the kill | after --resume | lines succeeded after merge | paid twice | 429s ÷ attempts |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| for ${r.downSeconds} s, then started empty | ${r.firstExitCodes} | ${r.lastExitAfterKillSeconds.toFixed(0)} | ${r.resumedExitCodes} | ${r.succeeded}/${r.lines} (merge exit ${r.mergeCode}) | ${r.paidTwice} | ${r.rateLimited} ÷ ${r.attempts} |`,
    );
  }
}

const GROUPS = { shared, overhead, kill, outage };
process.stderr.write(`fleet bench on ${os.cpus().length} cores, load ${load()}\n`);
for (const [name, run] of Object.entries(GROUPS)) {
  if (only && !only.has(name)) continue;
  await run();
}
