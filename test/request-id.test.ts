// `response.request_id` when a server sends no `x-request-id` (issue 15 item
// 26): local OpenAI-compatible servers often do not. The Batch API's output
// form has a string there, so the body's own `id` stands in, through both
// transports and into the results file.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport, requestIdOf, type TransportKind } from '../src/pipeline/send/transport.js';
import type { ResultRecord } from '../src/shared/types.js';
import { runCli } from './support/cli.js';
import { chatLine, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

const { dir } = perTestFixture(null);
let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  servers = [];
});

/** A chat-completions server that never sends x-request-id; each answer's body id is `chatcmpl-<n>`. */
async function serverWithoutRequestIds(): Promise<string> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n += 1;
      const body = {
        id: `chatcmpl-nohdr-${n}`,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: 'gpt-4o-mini-2024-07-18',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

describe('request ids', () => {
  it.each<[string, Record<string, string>, unknown, string | null]>([
    ['the header when there is one', { 'x-request-id': 'req_1' }, { id: 'chatcmpl-1' }, 'req_1'],
    ["the body's id without the header", {}, { id: 'chatcmpl-1' }, 'chatcmpl-1'],
    ["the body's id when the header is empty", { 'x-request-id': '' }, { id: 'resp_1' }, 'resp_1'],
    ['null for an error body without the header', {}, { error: { message: 'no' } }, null],
    ['null for a non-JSON body', {}, undefined, null],
    ['null for an id that is not a string', {}, { id: 42 }, null],
  ])('requestIdOf gives %s', (_name, headers, json, expected) => {
    expect(requestIdOf(headers, json)).toBe(expected);
  });

  it.each<TransportKind>(['undici', 'sdk'])("falls back to the body's id over HTTP (%s transport)", async (kind) => {
    const baseUrl = await serverWithoutRequestIds();
    const transport = createTransport({ baseUrl, apiKey: 'sk-test', env: {} }, kind);
    try {
      const response = await transport.request({ method: 'POST', path: '/chat/completions', body: { model: 'gpt-4o-mini', messages: [] }, timeoutMs: 5000 });
      expect(response.status).toBe(200);
      expect(response.headers['x-request-id']).toBeUndefined();
      expect(response.requestId).toBe('chatcmpl-nohdr-1');
    } finally {
      await transport.close();
    }
  });

  it.each<TransportKind>(['undici', 'sdk'])('writes a string request_id into every result line (%s transport)', async (kind) => {
    const baseUrl = await serverWithoutRequestIds();
    await writeJsonl(dir.file('in.jsonl'), [chatLine(1), chatLine(2), chatLine(3)]);
    const result = await runCli(['run', 'in.jsonl', '--base-url', baseUrl, '--transport', kind, '--rpm', '6000', '--tpm', '1000000', '-q'], {
      cwd: dir.path,
      env: { OPENAI_API_KEY: 'sk-test' },
    });
    expect(result.code, result.stderr).toBe(0);
    const results = await readJsonl<ResultRecord>(dir.file('in.results.jsonl'));
    expect(results).toHaveLength(3);
    for (const record of results) {
      expect(record.response?.request_id).toMatch(/^chatcmpl-nohdr-\d+$/);
      expect(record.response?.request_id).toBe((record.response?.body as { id: string }).id);
    }
  }, 30_000);
});
