import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, TimeoutError } from '../src/shared/errors.js';
import { createTransport, proxyFor, type HttpResponse, type Transport, type TransportKind } from '../src/pipeline/send/transport.js';
import { startSimulator, type Simulator } from '../src/sim/server.js';

type Env = Record<string, string | undefined>;

describe('proxyFor', () => {
  const P = 'http://proxy.internal:3128';
  const Q = 'http://other-proxy:8080';

  it.each<[string, string, Env, string | null]>([
    ['no proxy without proxy variables', 'https://api.openai.com/v1', {}, null],
    ['HTTPS_PROXY for an https target', 'https://api.openai.com/v1', { HTTPS_PROXY: P }, P],
    ['https_proxy (lower case) for an https target', 'https://api.openai.com/v1', { https_proxy: P }, P],
    ['HTTPS_PROXY before HTTP_PROXY for an https target', 'https://api.openai.com/v1', { HTTPS_PROXY: P, HTTP_PROXY: Q }, P],
    ['HTTP_PROXY for an https target when it is the only one', 'https://api.openai.com/v1', { HTTP_PROXY: Q }, Q],
    ['HTTP_PROXY for an http target', 'http://10.0.0.5:8080/v1', { HTTP_PROXY: Q }, Q],
    ['http_proxy (lower case) for an http target', 'http://10.0.0.5:8080/v1', { http_proxy: Q }, Q],
    ['no proxy for an http target when only HTTPS_PROXY is set', 'http://10.0.0.5:8080/v1', { HTTPS_PROXY: P }, null],
    ['an empty HTTPS_PROXY as unset', 'https://api.openai.com/v1', { HTTPS_PROXY: '' }, null],
    ['http:// for a proxy given without a scheme', 'https://api.openai.com/v1', { HTTPS_PROXY: 'proxy.internal:3128' }, P],
    ['an https proxy as given', 'https://api.openai.com/v1', { HTTPS_PROXY: 'https://proxy.internal:3129' }, 'https://proxy.internal:3129'],
  ])('gives %s', (_name, target, env, expected) => {
    expect(proxyFor(target, env)).toBe(expected);
  });

  it.each<[string, string, string, boolean]>([
    ['an exact host', 'https://api.openai.com/v1', 'api.openai.com', true],
    ['a parent domain', 'https://api.openai.com/v1', 'openai.com', true],
    ['a parent domain with a leading dot', 'https://api.openai.com/v1', '.openai.com', true],
    ['a parent domain with a leading *.', 'https://api.openai.com/v1', '*.openai.com', true],
    ['a leading-dot domain for the domain itself', 'https://openai.com/v1', '.openai.com', true],
    ['* for every host', 'https://api.openai.com/v1', '*', true],
    ['one entry of a comma-separated list', 'https://api.openai.com/v1', 'localhost, 127.0.0.1,openai.com', true],
    ['one entry of a space-separated list', 'https://api.openai.com/v1', 'localhost openai.com', true],
    ['entries in another case', 'https://API.OpenAI.com/v1', 'OPENAI.COM', true],
    ['an IPv4 address', 'http://127.0.0.1:8787/v1', '127.0.0.1', true],
    ['the host with the right port', 'https://api.openai.com/v1', 'api.openai.com:443', true],
    ['an explicit port', 'http://127.0.0.1:8787/v1', '127.0.0.1:8787', true],
    ['an IPv6 loopback written bare', 'http://[::1]:8787/v1', '::1', true],
    ['an IPv6 loopback in brackets', 'http://[::1]:8787/v1', '[::1]', true],
    ['an IPv6 address with a port', 'http://[::1]:8787/v1', '[::1]:8787', true],
    ['not a mere suffix of another name', 'https://notopenai.com/v1', 'openai.com', false],
    ['not a subdomain of the host', 'https://openai.com/v1', 'api.openai.com', false],
    ['not the host with another port', 'https://api.openai.com/v1', 'api.openai.com:8443', false],
    ['not an IPv6 address with another port', 'http://[::1]:8787/v1', '[::1]:9999', false],
    ['not another IPv6 address', 'http://[::1]:8787/v1', '::2', false],
    ['not an empty list', 'https://api.openai.com/v1', '', false],
    ['not a list of blanks and commas', 'https://api.openai.com/v1', ' , ,', false],
  ])('NO_PROXY excludes %s', (_name, target, noProxy, excluded) => {
    expect(proxyFor(target, { HTTPS_PROXY: P, HTTP_PROXY: P, NO_PROXY: noProxy })).toBe(excluded ? null : P);
    expect(proxyFor(target, { HTTPS_PROXY: P, HTTP_PROXY: P, no_proxy: noProxy })).toBe(excluded ? null : P);
  });
});

// ---------------------------------------------------------------------------
// Real loopback HTTP.

interface TestServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1:0 that destroys its open sockets on close (hanging ones included). */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** An API stand-in that records what it receives and answers JSON. */
async function recordingApi(): Promise<TestServer & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = await listen((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_test_1' });
      res.end(JSON.stringify({ object: 'chat.completion', ok: true }));
    });
  });
  return { ...server, seen };
}

/** A forward proxy: absolute-form requests for http targets are forwarded and recorded; CONNECTs are recorded, answered, then closed. */
async function forwardProxy(): Promise<TestServer & { forwarded: string[]; connects: string[] }> {
  const forwarded: string[] = [];
  const connects: string[] = [];
  const server = await listen((req, res) => {
    forwarded.push(`${req.method} ${req.url}`);
    const upstream = httpRequest(req.url ?? '', { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.server.on('connect', (req: IncomingMessage, socket: Socket) => {
    connects.push(req.url ?? '');
    socket.on('error', () => {});
    socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
  });
  return { ...server, forwarded, connects };
}

const KINDS: TransportKind[] = ['undici', 'sdk'];
const transports: Transport[] = [];

function transport(options: Parameters<typeof createTransport>[0], kind: TransportKind = 'undici'): Transport {
  const t = createTransport({ env: {}, ...options }, kind);
  transports.push(t);
  return t;
}

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
});

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (error: unknown) => error,
  );
}

describe('the undici transport over loopback', () => {
  let api: Awaited<ReturnType<typeof recordingApi>>;
  beforeAll(async () => {
    api = await recordingApi();
  });
  afterAll(async () => {
    await api.close();
  });

  it('posts JSON with the API key, organisation and project, and returns status, headers, text, json and request id', async () => {
    const t = transport({ baseUrl: `${api.url}/v1/`, apiKey: 'sk-test-1', organization: 'org-1', project: 'proj_1' });
    const response = await t.request({ method: 'POST', path: '/chat/completions', body: { model: 'gpt-4o-mini', messages: [] }, timeoutMs: 5000 });
    expect(response).toMatchObject({ status: 200, json: { object: 'chat.completion', ok: true }, requestId: 'req_test_1' });
    expect(response.text).toBe('{"object":"chat.completion","ok":true}');
    expect(response.headers['content-type']).toBe('application/json');
    const seen = api.seen.at(-1) as Seen;
    expect(seen).toMatchObject({ method: 'POST', url: '/v1/chat/completions', body: '{"model":"gpt-4o-mini","messages":[]}' });
    expect(seen.headers).toMatchObject({
      authorization: 'Bearer sk-test-1',
      'content-type': 'application/json',
      'openai-organization': 'org-1',
      'openai-project': 'proj_1',
    });
  });

  it('sends the admin key on admin requests and serialises query arrays with brackets', async () => {
    const t = transport({ baseUrl: `${api.url}/v1`, apiKey: 'sk-api', adminKey: 'sk-admin' });
    await t.request({
      method: 'GET',
      path: 'organization/usage/completions',
      query: { start_time: 1730419200, project_ids: ['a', 'b'], batch: true, page: undefined },
      auth: 'admin',
      timeoutMs: 5000,
    });
    const seen = api.seen.at(-1) as Seen;
    expect(seen.method).toBe('GET');
    expect(decodeURIComponent(seen.url)).toBe('/v1/organization/usage/completions?start_time=1730419200&project_ids[]=a&project_ids[]=b&batch=true');
    expect(seen.headers.authorization).toBe('Bearer sk-admin');
  });

  it('sends a pre-serialised body as is', async () => {
    const t = transport({ baseUrl: `${api.url}/v1`, apiKey: 'k' });
    await t.request({ method: 'POST', path: '/embeddings', bodyText: '{"model":"m","input":"x"}', timeoutMs: 5000 });
    expect(api.seen.at(-1)?.body).toBe('{"model":"m","input":"x"}');
  });
});

describe('proxies over loopback', () => {
  let api: Awaited<ReturnType<typeof recordingApi>>;
  let proxy: Awaited<ReturnType<typeof forwardProxy>>;
  beforeAll(async () => {
    api = await recordingApi();
    proxy = await forwardProxy();
  });
  afterAll(async () => {
    await api.close();
    await proxy.close();
  });
  afterEach(() => {
    proxy.forwarded.length = 0;
    proxy.connects.length = 0;
  });

  it.each(KINDS)('sends an http base URL through HTTP_PROXY as a forward proxy (%s)', async (kind) => {
    const t = transport({ baseUrl: `${api.url}/v1`, apiKey: 'k', env: { HTTP_PROXY: proxy.url } }, kind);
    const response = await t.request({ method: 'POST', path: '/chat/completions', body: { model: 'm' }, timeoutMs: 5000 });
    expect(response.status).toBe(200);
    expect(proxy.connects).toEqual([]);
    expect(proxy.forwarded).toEqual([`POST ${api.url}/v1/chat/completions`]);
  });

  it.each(KINDS)('goes straight to a host NO_PROXY names (%s)', async (kind) => {
    const t = transport({ baseUrl: `${api.url}/v1`, apiKey: 'k', env: { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' } }, kind);
    const response = await t.request({ method: 'POST', path: '/chat/completions', body: { model: 'm' }, timeoutMs: 5000 });
    expect(response.status).toBe(200);
    expect(proxy.forwarded).toEqual([]);
    expect(proxy.connects).toEqual([]);
  });

  it.each(KINDS)('tunnels an https base URL through HTTPS_PROXY with CONNECT (%s)', async (kind) => {
    // The target never resolves (.invalid): only the proxy on loopback is ever contacted.
    const t = transport({ baseUrl: 'https://api.example.invalid/v1', apiKey: 'k', env: { HTTPS_PROXY: proxy.url } }, kind);
    const error = await failureOf(t.request({ method: 'POST', path: '/chat/completions', body: { model: 'm' }, timeoutMs: 5000 }));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(proxy.connects).toEqual(['api.example.invalid:443']);
  });
});

describe('failures without an answer', () => {
  let hanging: TestServer;
  let slowBody: TestServer;
  let resetting: TestServer;
  let cutShort: TestServer;
  beforeAll(async () => {
    hanging = await listen(() => {});
    slowBody = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"object":');
    });
    resetting = await listen((req) => req.socket.destroy());
    cutShort = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"object":"chat.completion"');
      setTimeout(() => res.socket?.destroy(), 20);
    });
  });
  afterAll(async () => {
    await Promise.all([hanging.close(), slowBody.close(), resetting.close(), cutShort.close()]);
  });

  const call = (t: Transport, signal?: AbortSignal, timeoutMs = 300): Promise<HttpResponse> =>
    t.request({ method: 'POST', path: '/chat/completions', body: { model: 'm' }, timeoutMs, ...(signal ? { signal } : {}) });

  it.each(KINDS)('maps a server that never answers to TimeoutError (%s)', async (kind) => {
    const error = await failureOf(call(transport({ baseUrl: `${hanging.url}/v1`, apiKey: 'k' }, kind)));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'timeout', message: 'no answer within 0.3 s' });
  });

  it.each(KINDS)('maps a body that stops arriving to TimeoutError (%s)', async (kind) => {
    expect(await failureOf(call(transport({ baseUrl: `${slowBody.url}/v1`, apiKey: 'k' }, kind)))).toBeInstanceOf(TimeoutError);
  });

  it.each(KINDS)('maps a reset connection to ConnectionError (%s)', async (kind) => {
    const error = await failureOf(call(transport({ baseUrl: `${resetting.url}/v1`, apiKey: 'k' }, kind), undefined, 5000));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'connection_error' });
  });

  it.each(KINDS)('maps a body cut short by a reset to ConnectionError (%s)', async (kind) => {
    expect(await failureOf(call(transport({ baseUrl: `${cutShort.url}/v1`, apiKey: 'k' }, kind), undefined, 5000))).toBeInstanceOf(ConnectionError);
  });

  it.each(KINDS)('maps a refused connection to ConnectionError (%s)', async (kind) => {
    const closed = await listen(() => {});
    await closed.close();
    const error = await failureOf(call(transport({ baseUrl: `${closed.url}/v1`, apiKey: 'k' }, kind), undefined, 5000));
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it.each(KINDS)("rejects with the caller's reason when the caller aborts (%s)", async (kind) => {
    const controller = new AbortController();
    const reason = new Error('interrupted');
    setTimeout(() => controller.abort(reason), 50);
    const error = await failureOf(call(transport({ baseUrl: `${hanging.url}/v1`, apiKey: 'k' }, kind), controller.signal, 5000));
    expect(error).toBe(reason);
  });

  it('returns a non-JSON answer as text with json undefined', async () => {
    const html = await listen((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>502 Bad Gateway</body></html>');
    });
    try {
      const response = await call(transport({ baseUrl: `${html.url}/v1`, apiKey: 'k' }), undefined, 5000);
      expect(response).toMatchObject({ status: 502, text: '<html><body>502 Bad Gateway</body></html>', json: undefined, requestId: null });
    } finally {
      await html.close();
    }
  });
});

describe('the SDK transport answers in the same shape as the undici one (against the simulator)', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ rpm: 1, tpm: 1_000_000, apiKey: 'sk-sim-test' });
  });
  afterAll(async () => {
    await sim.close();
  });

  /** A 200, a 400 and a 429 from one transport, each model used by one transport only (rpm 1: the second call is a 429). */
  async function threeAnswers(kind: TransportKind, model: string): Promise<HttpResponse[]> {
    const t = transport({ baseUrl: sim.url, apiKey: 'sk-sim-test' }, kind);
    const chat = (body: unknown): Promise<HttpResponse> => t.request({ method: 'POST', path: '/chat/completions', body, timeoutMs: 10_000 });
    const ok = await chat({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    const bad = await chat({ messages: [{ role: 'user', content: 'hi' }] });
    const limited = await chat({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    return [ok, bad, limited];
  }

  const shape = (r: HttpResponse): unknown => ({
    status: r.status,
    jsonKeys: r.json && typeof r.json === 'object' ? Object.keys(r.json).sort() : null,
    error: (r.json as { error?: { type?: string; code?: string | null; param?: string | null } } | undefined)?.error
      ? { type: (r.json as { error: { type: string } }).error.type, code: (r.json as { error: { code: string | null } }).error.code }
      : null,
    textIsJson: r.text !== '' && JSON.stringify(JSON.parse(r.text)) === JSON.stringify(r.json),
    requestId: /^req_/.test(r.requestId ?? ''),
    contentType: r.headers['content-type']?.split(';')[0],
    rateLimitHeaders: Object.keys(r.headers).filter((h) => h.startsWith('x-ratelimit-')).sort(),
  });

  it('gives the same status, body shape, request id and headers for a 200, a 400 and a 429', async () => {
    const viaUndici = await threeAnswers('undici', 'gpt-4o-mini');
    const viaSdk = await threeAnswers('sdk', 'gpt-4.1-mini');
    expect(viaUndici.map((r) => r.status)).toEqual([200, 400, 429]);
    expect(viaSdk.map(shape)).toEqual(viaUndici.map(shape));
    // The 400's body is the same, word for word.
    expect(viaSdk[1]?.json).toEqual(viaUndici[1]?.json);
    expect(viaSdk[2]?.json).toMatchObject({ error: { code: 'rate_limit_exceeded', type: 'requests' } });
  });
});
