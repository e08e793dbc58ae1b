// Proxy variables (issue 15 item 25): NO_PROXY follows the usual convention,
// CIDR ranges included; an empty variable counts as unset; and a proxy that
// cannot be reached is named as the proxy in the error. Over real HTTP with a
// tiny forward proxy on loopback.

import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError } from '../src/shared/errors.js';
import { createTransport, proxyFor, proxySettingFor, type TransportKind } from '../src/pipeline/send/transport.js';
import { runCli } from './support/cli.js';
import { chatLine, readJsonl, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';

type Env = Record<string, string | undefined>;
const KEY = 'sk-proxy-test-0001';
const { dir, simulator } = perTestFixture(KEY);

describe('proxy variables', () => {
  const P = 'http://proxy.internal:3128';

  it.each<[string, string, string, boolean]>([
    ['an IPv4 address inside a CIDR range', 'http://127.0.0.1:8787/v1', '127.0.0.0/8', true],
    ['another address of that range', 'http://127.45.6.7:8787/v1', '127.0.0.0/8', true],
    ['a /32 range of the address itself', 'http://10.1.2.3/v1', '10.1.2.3/32', true],
    ['0.0.0.0/0 for every IPv4 address', 'http://192.168.1.9/v1', '0.0.0.0/0', true],
    ['an IPv6 address inside a range', 'http://[fd12:3456::1]:8080/v1', 'fd00::/8', true],
    ['an IPv6 range written in brackets', 'http://[fd12:3456::1]:8080/v1', '[fd00::]/8', true],
    ['the IPv6 loopback in ::1/128', 'http://[::1]:8787/v1', '::1/128', true],
    ['an IPv6 address written another way', 'http://[::1]:8787/v1', '0:0:0:0:0:0:0:1', true],
    ['a range among other entries', 'http://127.0.0.1:8787/v1', 'localhost, 10.0.0.0/8 ,127.0.0.0/8', true],
    ['not an address outside the range', 'http://128.0.0.1/v1', '127.0.0.0/8', false],
    ['not a host name, which is never resolved', 'http://localhost:8787/v1', '127.0.0.0/8', false],
    ['not an IPv4 address by an IPv6 range', 'http://127.0.0.1/v1', '::/0', false],
    ['not by a malformed range', 'http://127.0.0.1/v1', '127.0.0.0/33', false],
    ['not by a range without bits', 'http://127.0.0.1/v1', '127.0.0.0/', false],
  ])('NO_PROXY excludes %s', (_name, target, noProxy, excluded) => {
    expect(proxyFor(target, { HTTP_PROXY: P, HTTPS_PROXY: P, NO_PROXY: noProxy })).toBe(excluded ? null : P);
  });

  it.each<[string, string, Env, string | null]>([
    ['an empty NO_PROXY does not hide a set no_proxy', 'http://127.0.0.1:8787/v1', { HTTP_PROXY: P, NO_PROXY: '', no_proxy: '127.0.0.1' }, null],
    ['an empty no_proxy does not hide a set NO_PROXY', 'http://127.0.0.1:8787/v1', { HTTP_PROXY: P, NO_PROXY: '127.0.0.1', no_proxy: '' }, null],
    ['an empty HTTPS_PROXY does not hide a set https_proxy', 'https://api.openai.com/v1', { HTTPS_PROXY: '', https_proxy: P }, P],
    ['an empty HTTP_PROXY does not hide a set http_proxy', 'http://10.0.0.5/v1', { HTTP_PROXY: '', http_proxy: P }, P],
    ['empty variables everywhere mean no proxy', 'https://api.openai.com/v1', { HTTPS_PROXY: '', https_proxy: '', HTTP_PROXY: '' }, null],
  ])('%s', (_name, target, env, expected) => {
    expect(proxyFor(target, env)).toBe(expected);
  });

  it('names the variable a proxy came from', () => {
    expect(proxySettingFor('https://api.openai.com/v1', { HTTPS_PROXY: '', https_proxy: P })).toEqual({ url: P, variable: 'https_proxy' });
    expect(proxySettingFor('https://api.openai.com/v1', { HTTP_PROXY: P })).toEqual({ url: P, variable: 'HTTP_PROXY' });
  });
});

// ---------------------------------------------------------------------------
// Real loopback HTTP: a forward proxy that records what it forwards.

let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.map((close) => close()));
  closers = [];
});

async function listenOn(server: Server): Promise<string> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function forwardProxy(): Promise<{ url: string; forwarded: string[] }> {
  const forwarded: string[] = [];
  const server = createServer((req, res) => {
    forwarded.push(`${req.method} ${req.url}`);
    const upstream = httpRequest(req.url ?? '', { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return { url: await listenOn(server), forwarded };
}

/** A loopback port nothing listens on (it was open a moment ago). */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

describe('runs through a real proxy on loopback', () => {
  async function runThrough(env: Env): Promise<{ code: number | null; stderr: string; forwarded: string[] }> {
    const sim = await simulator();
    const proxy = await forwardProxy();
    await writeJsonl(dir.file('in.jsonl'), [chatLine(1), chatLine(2), chatLine(3)]);
    const result = await runCli(['run', 'in.jsonl', '--overwrite', '-q'], {
      cwd: dir.path,
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: sim.url, HTTP_PROXY: proxy.url, ...env },
    });
    if (result.code === 0) expect(await readJsonl(dir.file('in.results.jsonl'))).toHaveLength(3);
    return { code: result.code, stderr: result.stderr, forwarded: proxy.forwarded };
  }

  it('sends through HTTP_PROXY when NO_PROXY names another range', async () => {
    const { code, stderr, forwarded } = await runThrough({ NO_PROXY: '10.0.0.0/8' });
    expect(code, stderr).toBe(0);
    expect(forwarded.filter((f) => f.includes('/v1/chat/completions'))).toHaveLength(3);
  }, 30_000);

  it('goes straight to the server when NO_PROXY=127.0.0.0/8 covers it', async () => {
    const { code, stderr, forwarded } = await runThrough({ NO_PROXY: '127.0.0.0/8' });
    expect(code, stderr).toBe(0);
    expect(forwarded).toEqual([]);
  }, 30_000);

  it('goes straight to the server when NO_PROXY is empty and no_proxy names it', async () => {
    const { code, stderr, forwarded } = await runThrough({ NO_PROXY: '', no_proxy: '127.0.0.1' });
    expect(code, stderr).toBe(0);
    expect(forwarded).toEqual([]);
  }, 30_000);
});

describe('a proxy that refuses connections', () => {
  it.each<TransportKind>(['undici', 'sdk'])('is named as the proxy, without its credentials (%s transport)', async (kind) => {
    const sim = await simulator();
    const proxy = await closedPort();
    const transport = createTransport({ baseUrl: sim.url, apiKey: KEY, env: { HTTP_PROXY: `http://user:s3cret@${proxy}` } }, kind);
    try {
      const error = await transport.request({ method: 'POST', path: '/chat/completions', body: chatLine(1), timeoutMs: 5000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).toMatch(new RegExp(`^cannot connect to the proxy http://${proxy} from HTTP_PROXY: ECONNREFUSED`));
      expect((error as Error).message).not.toMatch(/s3cret|user/);
    } finally {
      await transport.close();
    }
  });

  it('is named in the one line a command prints', async () => {
    const sim = await simulator();
    const proxy = await closedPort();
    const result = await runCli(['usage', '--base-url', sim.url, '--days', '1', '--max-attempts', '1'], {
      env: { OPENAI_ADMIN_KEY: 'sk-admin-sim', HTTP_PROXY: `http://${proxy}` },
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(new RegExp(`^oai-batch: cannot connect to the proxy http://${proxy} from HTTP_PROXY: ECONNREFUSED`));
  }, 30_000);
});
