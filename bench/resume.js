// `node bench/resume.js [--lines N] [--bin path/to/oai-batch.js]`: how long
// `run --resume` takes on a file whose every line already succeeded (nothing
// is sent: the whole cost is reading, planning and skipping). Issue 15 item 10:
// a line resume skips must not be tokenized.
//
// Writes a synthetic input and a matching results file under bench/out/resume/,
// then times three resumes and prints the best.

import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { ROOT, writeLines } from './lib.js';

const OUT = join(ROOT, 'bench', 'out', 'resume');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const lines = Number(arg('--lines', '1000000'));
const bin = arg('--bin', join(ROOT, 'bin', 'oai-batch.js'));
/** Characters of each prompt: tokenizing is what a skipped line must not pay. */
const chars = Number(arg('--chars', '1000'));


await mkdir(OUT, { recursive: true });
const input = join(OUT, 'done.jsonl');
const results = join(OUT, 'done.results.jsonl');
const prose = 'the of and to in is was for on that with as by at from this be are or have an which one had were but not all';
await writeLines(input, lines, (i) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Request ${i}: ${prose.repeat(Math.ceil(chars / prose.length))}`.slice(0, chars) }], max_tokens: 50 }),
);
const body = JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion', model: 'gpt-4o-mini-2024-07-18', choices: [], usage: { prompt_tokens: 40, completion_tokens: 10, total_tokens: 50 } });
await writeLines(results, lines, (i) => `{"id":"oaib_req_${i}","custom_id":"line-${i + 1}","response":{"status_code":200,"request_id":"req_${i}","body":${body}},"error":null,"line":${i + 1},"attempts":1,"latency_ms":10,"cost_usd":0.00001}`);
await writeFile(join(OUT, 'done.summary.json'), '{}');

const times = [];
for (let round = 0; round < 3; round++) {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'run', input, '--resume', '--quiet', '--force', '--base-url', 'http://127.0.0.1:9/v1'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, OPENAI_API_KEY: 'sk-bench-key' },
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`run --resume exited with ${code}`);
  times.push((performance.now() - started) / 1000);
}
console.log(`run --resume of a fully done ${lines.toLocaleString('en-US')}-line file of ${chars}-character prompts (${bin}): best of 3 ${Math.min(...times).toFixed(1)} s (${times.map((t) => t.toFixed(1)).join(', ')})`);
