// Temporary folders and JSONL files for tests.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export async function tempDir(prefix = 'oai-batch-'): Promise<{ path: string; file(name: string): string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), remove: () => rm(path, { recursive: true, force: true }) };
}

export async function writeJsonl(path: string, records: unknown[]): Promise<void> {
  await writeFile(path, records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
}

/** Every complete JSON line of a file (.gz read compressed); [] when it does not exist. */
export async function readJsonl<T = Record<string, unknown>>(path: string): Promise<T[]> {
  if (!existsSync(path)) return [];
  const raw = await readFile(path);
  const text = path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

export async function readJson<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** A chat request in bare form. */
export function chatLine(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: i % 2 === 0 ? 'gpt-4o-mini' : 'gpt-4.1-mini',
    messages: [{ role: 'user', content: `Question ${i}: what is ${i} times three?` }],
    max_tokens: 40,
    ...extra,
  };
}

/** A chat request in Batch API form. */
export function batchLine(id: string, i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Tell me about ${i}.` }], max_completion_tokens: 30 },
    ...extra,
  };
}
