// `node bench/reliability.js`: the figures of README's reliability section.
//
// 1. Kill-and-resume: a 3,000-line file, the CLI killed with SIGKILL at random
//    moments while it writes results, then `--resume`d, several times; at the
//    end every line must have exactly one success, and requests billed twice
//    (answered by the simulator more than once) at most --concurrency per kill.
// 2. SIGINT: a run interrupted mid-way exits 3 with every answer the
//    simulator sent (every paid-for answer) in the results file.
// 3. Bad lines: one bad line in seven; everything else runs, each bad line is
//    listed by number, exit 2.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator } from '../dist/sim/server.js';

const BIN = fileURLToPath(new URL('../bin/oai-batch.js', import.meta.url));
const KEY = 'sk-reliability-bench';
const dir = await mkdtemp(join(tmpdir(), 'oai-batch-reliability-'));

function cli(args, env) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = once(child, 'close').then(([code, signal]) => ({ code, signal, stderr }));
  return { child, done };
}

async function lineCount(path) {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').length - 1;
  } catch {
    return 0;
  }
}

async function jsonl(path) {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

const chat = (i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Line ${i}: one word for ${i}?` }], max_tokens: 10 });

// 1. Kill-and-resume cycles.
{
  const sim = await startSimulator({ apiKey: KEY, latencyMs: 25 });
  const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url };
  const input = join(dir, 'kill.jsonl');
  await writeFile(input, Array.from({ length: 3000 }, (_, i) => JSON.stringify(chat(i + 1))).join('\n') + '\n');
  const results = join(dir, 'kill.results.jsonl');
  const concurrency = 32;
  const kills = 8;
  const perKill = [];
  for (let k = 0; k < kills; k++) {
    const before = Object.values(sim.stats().answered).reduce((a, n) => a + Math.max(0, n - 1), 0);
    const onDisk = await lineCount(results);
    const { child, done } = cli(['run', input, '--concurrency', String(concurrency), '--quiet', k === 0 ? '--overwrite' : '--resume'], env);
    const target = onDisk + 100 + Math.floor(Math.random() * 250);
    let exited = false;
    done.then(() => (exited = true));
    while (!exited && (await lineCount(results)) < target) await sleep(10);
    await sleep(Math.floor(Math.random() * 30));
    child.kill('SIGKILL');
    await done;
    // Billed twice by the resume that follows is counted against this kill below.
    perKill.push(before);
  }
  const last = await cli(['run', input, '--concurrency', String(concurrency), '--quiet', '--resume'], env).done;
  const records = await jsonl(results);
  const counts = new Map();
  for (const r of records) if (r.response?.status_code === 200) counts.set(r.custom_id, (counts.get(r.custom_id) ?? 0) + 1);
  const twice = Object.values(sim.stats().answered).reduce((a, n) => a + Math.max(0, n - 1), 0);
  const exactlyOnce = [...counts.values()].filter((n) => n === 1).length;
  console.log(`kill-and-resume: ${kills} SIGKILLs on a 3,000-line file at --concurrency ${concurrency}; final run exit ${last.code}`);
  console.log(`  lines with exactly one success: ${exactlyOnce} / 3000 (lines with more than one: ${[...counts.values()].filter((n) => n > 1).length})`);
  console.log(`  requests billed twice: ${twice} in all, ${(twice / kills).toFixed(1)} per kill (bound: ${concurrency} per kill)`);
  await sim.close();
}

// 2. SIGINT.
{
  const sim = await startSimulator({ apiKey: KEY, latencyMs: 400 });
  const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url };
  const input = join(dir, 'int.jsonl');
  await writeFile(input, Array.from({ length: 1000 }, (_, i) => JSON.stringify(chat(i + 1))).join('\n') + '\n');
  const { child, done } = cli(['run', input, '--concurrency', '50', '--quiet'], env);
  while ((await lineCount(join(dir, 'int.results.jsonl'))) < 200) await sleep(20);
  child.kill('SIGINT');
  const result = await done;
  const paid = Object.values(sim.stats().answered).reduce((a, n) => a + n, 0);
  const onDisk = (await jsonl(join(dir, 'int.results.jsonl'))).length;
  const summary = JSON.parse(await readFile(join(dir, 'int.summary.json'), 'utf8'));
  console.log(`SIGINT: exit ${result.code}, stopped_reason ${summary.stopped_reason}; answers the simulator sent: ${paid}; results on disk: ${onDisk}; pending ${summary.requests.pending}`);
  await sim.close();
}

// 3. One bad line in seven.
{
  const sim = await startSimulator({ apiKey: KEY });
  const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url };
  const input = join(dir, 'bad.jsonl');
  const bad = ['{"model": "gpt-4o-mini", "messages": [', '[1, 2, 3]', '{"messages": [{"role": "user", "content": "no model"}]}', '{"model": "gpt-4o-mini", "messages": [], "stream": true}'];
  const lines = [];
  const badLines = [];
  for (let i = 1; i <= 700; i++) {
    if (i % 7 === 0) {
      badLines.push(i);
      lines.push(bad[(i / 7) % bad.length]);
    } else lines.push(JSON.stringify(chat(i)));
  }
  await writeFile(input, lines.join('\n') + '\n');
  const result = await cli(['run', input, '--quiet'], env).done;
  const errors = await jsonl(join(dir, 'bad.errors.jsonl'));
  const ok = (await jsonl(join(dir, 'bad.results.jsonl'))).length;
  const listed = errors.map((e) => e.line).sort((a, b) => a - b);
  const codes = [...new Set(errors.map((e) => e.error.code))].join(', ');
  console.log(
    `bad lines: exit ${result.code}; ${ok} of 600 good lines succeeded; ${errors.length} of ${badLines.length} bad lines listed by number (${JSON.stringify(listed) === JSON.stringify(badLines) ? 'all, in the right places' : 'MISMATCH'}): ${codes}`,
  );
  await sim.close();
}

await rm(dir, { recursive: true, force: true });
