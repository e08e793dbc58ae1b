// `node bench/cache.js`: what the response cache and in-run dedup save, and
// what they cost (issue 18). The simulator runs in its own process (its
// /sim/stats says what was bought); the client is the real CLI.
//
//   node bench/cache.js                 every case (≈ 3 minutes on 2 cores)
//   node bench/cache.js --only repeat   one of them: repeat, dedup, edit, overhead
//
// Prints one Markdown table.

import { spawn } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { BIN, ROOT, onlyArg, startSim, writeLines } from './lib.js';

const OUT = join(ROOT, 'bench', 'out', 'cache');
const only = onlyArg();

const ask = (i, text = `Request ${i}: summarise the number ${i} in a word.`) => ({
  custom_id: `r${i}`,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], max_tokens: 20 },
});



/** One CLI run; resolves to its wall time in seconds. */
async function run(sim, input, extra) {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'run', input, '--overwrite', '--quiet', ...extra], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, OPENAI_API_KEY: 'sk-bench-key', OPENAI_BASE_URL: sim.url },
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`client exited with ${code}`);
  return (performance.now() - started) / 1000;
}

const rows = [];
const want = (id) => !only || only.has(id);

await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });
const sim = await startSim(['--rpm', '1000000000', '--tpm', '1000000000000', '--no-quantize']);
sim.bought = async () => (await sim.stats()).requests;
try {
  if (want('repeat')) {
    const input = join(OUT, 'repeat.jsonl');
    const cache = join(OUT, 'repeat.lmdb');
    await writeLines(input, 100_000, (i) => ask(i));
    await sim.reset();
    const first = await run(sim, input, [`--cache=${cache}`]);
    const boughtFirst = await sim.bought();
    await sim.reset();
    const second = await run(sim, input, [`--cache=${cache}`]);
    const boughtSecond = await sim.bought();
    const bytes = (await stat(cache)).size;
    rows.push(['repeat: 100,000 lines, first run with --cache', `${first.toFixed(1)} s`, `${Math.round(100_000 / first).toLocaleString('en-US')} lines/s`, boughtFirst.toLocaleString('en-US'), '100,000']);
    rows.push(['repeat: the same file again with --cache', `${second.toFixed(1)} s`, `${Math.round(100_000 / second).toLocaleString('en-US')} lines/s`, boughtSecond.toLocaleString('en-US'), '0']);
    rows.push(['cache file for 100,000 chat answers', `${(bytes / 1024 / 1024).toFixed(1)} MB`, `${Math.round(bytes / 100_000)} bytes/answer`, '–', '–']);
  }
  if (want('dedup')) {
    const input = join(OUT, 'dedup.jsonl');
    // 20,000 rows of which 30 % repeat an earlier body: 14,000 distinct.
    await writeLines(input, 20_000, (i) => ask(i, `Request ${i < 14_000 ? i : (i * 7919) % 14_000}: summarise it.`));
    await sim.reset();
    const seconds = await run(sim, input, ['--dedup']);
    rows.push(['dedup: 20,000 lines, 30 % repeated bodies, --dedup', `${seconds.toFixed(1)} s`, `${Math.round(20_000 / seconds).toLocaleString('en-US')} lines/s`, (await sim.bought()).toLocaleString('en-US'), '14,000']);
  }
  if (want('edit')) {
    const input = join(OUT, 'edit.jsonl');
    const cache = join(OUT, 'edit.lmdb');
    await writeLines(input, 20_000, (i) => ask(i));
    await run(sim, input, [`--cache=${cache}`]);
    // Edit 1 % of the lines (every hundredth).
    await writeLines(input, 20_000, (i) => (i % 100 === 0 ? ask(i, `Request ${i}: summarise it, reworded.`) : ask(i)));
    await sim.reset();
    const seconds = await run(sim, input, [`--cache=${cache}`]);
    rows.push(['edit: re-run of 20,000 lines after editing 1 %', `${seconds.toFixed(1)} s`, `${Math.round(20_000 / seconds).toLocaleString('en-US')} lines/s`, (await sim.bought()).toLocaleString('en-US'), '200']);
  }
  if (want('overhead')) {
    const input = join(OUT, 'overhead.jsonl');
    await writeLines(input, 20_000, (i) => ask(i));
    const times = { plain: [], cache: [] };
    for (let round = 0; round < 3; round++) {
      times.plain.push(await run(sim, input, []));
      const cache = join(OUT, `overhead-${round}.lmdb`);
      times.cache.push(await run(sim, input, [`--cache=${cache}`]));
    }
    const best = (list) => Math.min(...list);
    const plain = 20_000 / best(times.plain);
    const cached = 20_000 / best(times.cache);
    rows.push(['overhead: 20,000 misses, no cache (best of 3)', `${best(times.plain).toFixed(1)} s`, `${Math.round(plain).toLocaleString('en-US')} lines/s`, '20,000', '20,000']);
    rows.push([`overhead: 20,000 misses, empty --cache (best of 3): ${((cached / plain) * 100).toFixed(0)} % of the above`, `${best(times.cache).toFixed(1)} s`, `${Math.round(cached).toLocaleString('en-US')} lines/s`, '20,000', '20,000']);
  }
} finally {
  await sim.stop();
}

console.log('| case | wall | rate | bought (simulator) | expected |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
