// Pieces every benchmark shares: the CLI's path, request lines, writing an
// input file, and the simulator in a process of its own.

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'oai-batch.js');

/** `--only a,b` → Set {'a', 'b'}, or null for every case. */
export function onlyArg(argv = process.argv) {
  const i = argv.indexOf('--only');
  return i > 0 ? new Set(argv[i + 1].split(',')) : null;
}

/** Natural-looking text: tokens ≈ characters / 4.5, so the server's chars/4 estimate is the binding one. */
const WORDS =
  'the of and to in is was for on that with as by at from this be are or have an which one had were but not all their can has been more when there what some other into time two its first also after new would these may people only'.split(
    ' ',
  );
export function prose(seed, chars) {
  let text = '';
  let x = seed * 2654435761;
  while (text.length < chars) {
    x = (x * 1103515245 + 12345) >>> 0;
    text += WORDS[x % WORDS.length] + ' ';
  }
  return text.slice(0, chars);
}

/** A short chat request (bare form). */
export const chat = (i) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: `Request ${i}: summarise the number ${i} in a word.` }],
  max_tokens: 20,
});

/** A token-heavy chat request: a 2,000-character prompt and max_tokens 200. */
export const tpmLine = (i) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: prose(i + 1, 2000) }],
  max_tokens: 200,
});

/** Writes `n` lines, `make(i)` each (an object is JSON-encoded, a string written as is), waiting for drain. */
export async function writeLines(path, n, make) {
  const out = createWriteStream(path);
  for (let i = 0; i < n; i++) {
    const value = make(i);
    if (!out.write((typeof value === 'string' ? value : JSON.stringify(value)) + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** `oai-batch simulate --port 0 …args` in its own process: its URL, its counters, reset and stop. */
export async function startSim(args) {
  const child = spawn(process.execPath, [BIN, 'simulate', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      text += d;
      const m = /listening on (\S+)/.exec(text);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  const control = url.replace(/\/v1$/, '/sim');
  return {
    url,
    async stats() {
      return (await fetch(`${control}/stats`)).json();
    },
    async reset() {
      await fetch(`${control}/reset`, { method: 'POST' });
    },
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit').catch(() => {});
    },
  };
}
