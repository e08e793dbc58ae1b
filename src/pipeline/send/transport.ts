// send (transport): one HTTP exchange with an OpenAI-compatible server.
//
// In:  an HttpRequest (method, path under the base URL, JSON body or form).
// Out: an HttpResponse for every HTTP answer, whatever its status; throws
//      ConnectionError or TimeoutError when there is no answer.
// Owns: the keep-alive connection pool, proxies, auth headers, per-attempt timeout.
//
// Two implementations share this one error model: the default over undici's
// `request` API (measured ~15,000 requests/s on 2 cores, STACK.md), and one
// over the official `openai` SDK with its own retries off (~3,200/s), for
// callers who want the SDK's request path. Retrying is not done here; the
// policy lives in retry.ts and the loop in send.ts.

import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import type OpenAI from 'openai';
import { ConnectionError, TimeoutError } from '../../shared/errors.js';
import { redactUrlCredentials } from '../../shared/redact.js';
import type { HeaderMap } from '../../shared/headers.js';
import type { Readable } from 'node:stream';
import { BlockList, isIP } from 'node:net';

export interface HttpRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below the base URL, e.g. `/chat/completions` or `/organization/usage/completions`. */
  path: string;
  query?: Record<string, string | number | boolean | readonly string[] | undefined>;
  /** A JSON body (serialised here), or a ready FormData for uploads. */
  body?: unknown;
  /** Pre-serialised JSON body; saves a stringify on the hot path. */
  bodyText?: string;
  form?: FormData;
  /** Which key to send: the API key (default) or the admin key (organisation endpoints). */
  auth?: 'api' | 'admin';
  /** Per-attempt timeout in ms (with `isStreamed`: until the headers, then the longest pause between chunks). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Hand a 2xx body over unread as `HttpResponse.stream` (file downloads larger than a string can hold). */
  isStreamed?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: HeaderMap;
  /** The raw body text. */
  text: string;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
  requestId: string | null;
  /** The unread body of a 2xx answer to an `isStreamed` request (`text` is then empty); the caller must consume it. */
  stream?: Readable;
}

export interface Transport {
  request(req: HttpRequest): Promise<HttpResponse>;
  /** Closes the connections once the requests in flight are answered. */
  close(): Promise<void>;
  /** Aborts the requests in flight (they reject) and closes the connections. */
  destroy(): Promise<void>;
}

export interface TransportOptions {
  /** API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8787/v1`. */
  baseUrl: string;
  /** Bearer key for API paths (OPENAI_API_KEY). Never logged. */
  apiKey?: string | undefined;
  /** Bearer key for organisation paths (OPENAI_ADMIN_KEY). Never logged. */
  adminKey?: string | undefined;
  /** `OpenAI-Organization` header (OPENAI_ORG_ID). */
  organization?: string | undefined;
  /** `OpenAI-Project` header (OPENAI_PROJECT_ID). */
  project?: string | undefined;
  /** Most sockets to open; keep-alive reuses them. Default 64. */
  connections?: number;
  /** Proxy settings; default from HTTPS_PROXY / HTTP_PROXY / NO_PROXY in `env`. */
  env?: Record<string, string | undefined>;
  userAgent?: string;
}

export { DEFAULT_BASE_URL } from '../../shared/types.js';

/** Which transport carries requests: undici (default, fastest) or the openai SDK. */
export type TransportKind = 'undici' | 'sdk';

export function createTransport(options: TransportOptions, kind: TransportKind = 'undici'): Transport {
  return kind === 'sdk' ? new SdkTransport(options) : new UndiciTransport(options);
}

function commonHeaders(options: TransportOptions, auth: 'api' | 'admin' | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    'user-agent': options.userAgent ?? 'oai-batch',
  };
  const key = auth === 'admin' ? options.adminKey : options.apiKey;
  if (key) headers.authorization = `Bearer ${key}`;
  if (options.organization) headers['openai-organization'] = options.organization;
  if (options.project) headers['openai-project'] = options.project;
  return headers;
}

/** The dispatcher for the base URL's origin: a proxy when HTTPS_PROXY/HTTP_PROXY applies and NO_PROXY does not exclude the host. */
export function dispatcherFor(baseUrl: string, env: Record<string, string | undefined>, connections: number): Dispatcher {
  const agentOptions = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections, pipelining: 1 };
  const proxy = proxyFor(baseUrl, env);
  // proxyTunnel false: an http target goes to an http proxy as an absolute-form request, as curl
  // sends it (proxies commonly refuse CONNECT to port 80); https targets are still tunnelled.
  return proxy ? new ProxyAgent({ ...agentOptions, uri: proxy, proxyTunnel: false }) : new Agent(agentOptions);
}

/** A proxy chosen for a target: its URL and the variable that named it (for messages). */
export interface ProxySetting {
  url: string;
  variable: string;
}

/** The proxy URL to use for `target`, following the usual HTTPS_PROXY / HTTP_PROXY / NO_PROXY conventions, or null. */
export function proxyFor(target: string, env: Record<string, string | undefined>): string | null {
  return proxySettingFor(target, env)?.url ?? null;
}

/**
 * The convention curl, Go and most tools share: HTTPS_PROXY (then
 * HTTP_PROXY) for https targets, HTTP_PROXY for http ones; each variable in
 * upper or lower case, the upper one first, and an empty variable counts as
 * unset (so `NO_PROXY=` does not hide a set `no_proxy`). undici's own
 * EnvHttpProxyAgent is not used: it knows no CIDR ranges, matches `openai.com`
 * only exactly, and prints an "experimental" warning on stderr.
 */
export function proxySettingFor(target: string, env: Record<string, string | undefined>): ProxySetting | null {
  const url = new URL(target);
  const names = url.protocol === 'https:' ? ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] : ['HTTP_PROXY', 'http_proxy'];
  const variable = names.find((name) => env[name]);
  if (variable === undefined) return null;
  const proxy = env[variable] as string;
  const noProxy = env.NO_PROXY || env.no_proxy || '';
  if (isExcluded(url, noProxy)) return null;
  // `proxy.internal:3128` without a scheme means http://, as curl reads it.
  return { url: /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`, variable };
}

/**
 * Whether a NO_PROXY list names the target: `*`; a host name, which also
 * covers its subdomains (`openai.com`, `.openai.com`, `*.openai.com`); an IP
 * address (IPv6 bare or in brackets, compared as addresses, not text); a CIDR
 * range (`127.0.0.0/8`, `fd00::/8`), which matches IP literals only (no DNS
 * lookup, as curl); each optionally with `:port`.
 */
function isExcluded(url: URL, noProxy: string): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (isInRange(host, entry.replace(/^\[([^\]]+)\]/, '$1'))) return true;
      continue;
    }
    // `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (`::1`, whose colons are not a port).
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? /^([^:]+):(\d+)$/.exec(entry);
    const entryHost = match ? (match[1] as string) : entry;
    const entryPort = match?.[2];
    if (entryPort && entryPort !== port) continue;
    if (isIP(entryHost) !== 0) {
      if (isIP(host) === isIP(entryHost) && isInRange(host, `${entryHost}/${isIP(entryHost) === 4 ? 32 : 128}`)) return true;
      continue;
    }
    const bare = entryHost.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** Whether `host` is an IP literal inside the CIDR range `range` (`10.0.0.0/8`, `fd00::/8`); a malformed range matches nothing. */
function isInRange(host: string, range: string): boolean {
  const [network = '', bitsText = ''] = range.split('/');
  const family = isIP(network);
  const bits = Number(bitsText);
  if (family === 0 || isIP(host) !== family || !/^\d+$/.test(bitsText) || bits > (family === 4 ? 32 : 128)) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addSubnet(network, bits, type);
  return list.check(host, type);
}

/** The proxy as a message may show it: scheme, host and port, never its credentials. */
function proxyLabel(proxy: ProxySetting): string {
  try {
    const url = new URL(proxy.url);
    return `${url.protocol}//${url.host} from ${proxy.variable}`;
  } catch {
    return `from ${proxy.variable}`;
  }
}

function urlFor(baseUrl: string, path: string, query: HttpRequest['query']): string {
  let url = baseUrl.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      // Arrays are sent with brackets, as the official SDK does (project_ids[]=a&project_ids[]=b).
      if (Array.isArray(value)) for (const item of value) params.append(`${key}[]`, String(item));
      else params.append(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  return url;
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The answer's id: `x-request-id`, or, from servers that send no such header
 * (local OpenAI-compatible servers, some gateways), the body's own `id`
 * (`chatcmpl-…`, `resp_…`), so `response.request_id` is a string as in the
 * Batch API's output form. Null only when there is neither.
 */
export function requestIdOf(headers: HeaderMap, json: unknown): string | null {
  const header = headers['x-request-id'];
  if (header) return header;
  const id = json !== null && typeof json === 'object' ? (json as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id !== '' ? id : null;
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): HeaderMap {
  const headers: HeaderMap = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value !== undefined) headers[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Below this, a timeout gets an exact timer of ours; above, undici's (±0.5 s, much cheaper). */
const PRECISE_TIMEOUT_BELOW_MS = 5000;

/** Runs `fn` with a signal that aborts at the timeout or when the caller's signal aborts; tells the two apart. */
async function withTimeout<T>(
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = (): void => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onAbort();
  else callerSignal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn(controller.signal);
  } catch (error) {
    if (timedOut) throw new TimeoutError(timeoutMs);
    if (callerSignal?.aborted) throw callerSignal.reason ?? error;
    throw error;
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onAbort);
  }
}

/** Codes of a connection that never opened: through a proxy, the one it failed to reach is the proxy. */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function connectionError(error: unknown, proxy: ProxySetting | null): ConnectionError {
  type Cause = { code?: string; message?: string; cause?: unknown };
  // The useful part may sit deep in the cause chain: the SDK's "Connection error." wraps
  // fetch's "fetch failed", which wraps the ECONNREFUSED. Take the first level with a code.
  let e = error as Cause;
  for (let depth = 0; depth < 5 && e.code === undefined && e.cause && typeof e.cause === 'object'; depth++) e = e.cause as Cause;
  const message = e.code ? `${e.code}: ${e.message ?? String(error)}` : (e.message ?? String(error));
  if (!proxy) return new ConnectionError(message, { cause: error });
  // Every socket goes to the proxy when one is set: say so, or a refused proxy reads like a dead API.
  if (e.code !== undefined && CONNECT_CODES.has(e.code)) {
    return new ConnectionError(`cannot connect to the proxy ${proxyLabel(proxy)}: ${message}`, { cause: error });
  }
  return new ConnectionError(`${message} (through the proxy ${proxyLabel(proxy)})`, { cause: error });
}

class UndiciTransport implements Transport {
  readonly #options: TransportOptions;
  readonly #dispatcher: Dispatcher;
  readonly #proxy: ProxySetting | null;
  readonly #headers: { api: Record<string, string>; admin: Record<string, string> };

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#proxy = proxySettingFor(options.baseUrl, options.env ?? process.env);
    this.#dispatcher = dispatcherFor(options.baseUrl, options.env ?? process.env, options.connections ?? 64);
    this.#headers = { api: commonHeaders(options, 'api'), admin: commonHeaders(options, 'admin') };
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const url = urlFor(this.#options.baseUrl, req.path, req.query);
    const headers: Record<string, string> = { ...this.#headers[req.auth ?? 'api'] };
    let body: string | FormData | undefined;
    if (req.form) {
      body = req.form;
    } else if (req.bodyText !== undefined || req.body !== undefined) {
      body = req.bodyText ?? JSON.stringify(req.body);
      headers['content-type'] = 'application/json';
    }
    // Long timeouts (the usual case) use undici's own timers: no timer or
    // AbortController of ours per request, which cost more than anything else
    // on the hot path. They bound the wait until the headers, then between two
    // body chunks, with a granularity of half a second; so short timeouts,
    // where that would matter, get an exact timer of ours instead.
    if (req.timeoutMs < PRECISE_TIMEOUT_BELOW_MS) {
      return withTimeout(req.timeoutMs, req.signal, (signal) => this.#exchange(url, headers, body, req, signal, 0));
    }
    return this.#exchange(url, headers, body, req, req.signal, req.timeoutMs);
  }

  async #exchange(
    url: string,
    headers: Record<string, string>,
    body: string | FormData | undefined,
    req: HttpRequest,
    signal: AbortSignal | undefined,
    undiciTimeoutMs: number,
  ): Promise<HttpResponse> {
    const fail = (error: unknown): never => {
      if (signal?.aborted) throw signal.reason ?? error;
      const code = (error as { code?: string }).code;
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') throw new TimeoutError(req.timeoutMs);
      throw connectionError(error, this.#proxy);
    };
    let answer: Dispatcher.ResponseData;
    try {
      answer = await request(url, {
        method: req.method,
        headers,
        body: body as Dispatcher.RequestOptions['body'],
        dispatcher: this.#dispatcher,
        signal,
        headersTimeout: undiciTimeoutMs,
        // A streamed body outlives a timer of ours: undici stops it when it stalls.
        bodyTimeout: undiciTimeoutMs || (req.isStreamed ? req.timeoutMs : 0),
      });
    } catch (error) {
      return fail(error);
    }
    if (req.isStreamed && answer.statusCode >= 200 && answer.statusCode < 300) {
      const streamedHeaders = flattenHeaders(answer.headers);
      return { status: answer.statusCode, headers: streamedHeaders, text: '', json: undefined, requestId: streamedHeaders['x-request-id'] ?? null, stream: answer.body };
    }
    let text: string;
    try {
      text = await answer.body.text();
    } catch (error) {
      return fail(error);
    }
    const responseHeaders = flattenHeaders(answer.headers);
    const json = parseJson(text);
    return { status: answer.statusCode, headers: responseHeaders, text, json, requestId: requestIdOf(responseHeaders, json) };
  }

  /** Aborts every request in flight (a hard stop) and closes the connections. */
  async destroy(): Promise<void> {
    await this.#dispatcher.destroy();
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

/** The official SDK as transport: retries off, keep-alive dispatcher, its errors mapped onto HttpResponse. */
class SdkTransport implements Transport {
  readonly #dispatcher: Dispatcher;
  readonly #proxy: ProxySetting | null;
  readonly #options: TransportOptions;
  /** The SDK is loaded on first use: it is the heaviest import of the CLI. */
  #sdk: Promise<{ client: OpenAI; APIError: typeof OpenAI.APIError }> | null = null;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#proxy = proxySettingFor(options.baseUrl, options.env ?? process.env);
    this.#dispatcher = dispatcherFor(options.baseUrl, options.env ?? process.env, options.connections ?? 64);
  }

  #load(): Promise<{ client: OpenAI; APIError: typeof OpenAI.APIError }> {
    this.#sdk ??= import('openai').then(({ default: OpenAISdk }) => ({
      client: new OpenAISdk({
        apiKey: this.#options.apiKey ?? 'unset',
        adminAPIKey: this.#options.adminKey ?? null,
        organization: this.#options.organization ?? null,
        project: this.#options.project ?? null,
        baseURL: this.#options.baseUrl,
        maxRetries: 0,
        fetchOptions: { dispatcher: this.#dispatcher } as never,
      }),
      APIError: OpenAISdk.APIError,
    }));
    return this.#sdk;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    if (req.isStreamed) {
      // Downloads: the undici transport's stream, its connection closed once the stream is.
      const fallback = new UndiciTransport(this.#options);
      const response = await fallback.request(req).catch(async (error: unknown) => {
        await fallback.close();
        throw error;
      });
      if (response.stream) response.stream.once('close', () => void fallback.close());
      else await fallback.close();
      return response;
    }
    if (req.form || req.auth === 'admin') {
      // Uploads and admin paths are rare; the undici transport's shape covers them.
      const fallback = new UndiciTransport(this.#options);
      try {
        return await fallback.request(req);
      } finally {
        await fallback.close();
      }
    }
    const { client, APIError } = await this.#load();
    return withTimeout(req.timeoutMs, req.signal, async (signal) => {
      const body = req.bodyText !== undefined ? JSON.parse(req.bodyText) : req.body;
      const options = { body, query: req.query, signal, maxRetries: 0, timeout: req.timeoutMs + 1000, __binaryResponse: true };
      let response: Response;
      try {
        const method = req.method === 'GET' ? 'get' : req.method === 'DELETE' ? 'delete' : 'post';
        response = (await client[method](req.path, options as never)) as Response;
      } catch (error) {
        if (error instanceof APIError && typeof error.status === 'number') {
          const headers: HeaderMap = {};
          error.headers?.forEach((value: string, key: string) => (headers[key] = value));
          const json = error.error === undefined ? undefined : { error: error.error };
          return {
            status: error.status,
            headers,
            text: json === undefined ? '' : JSON.stringify(json),
            json,
            requestId: error.requestID ?? headers['x-request-id'] ?? null,
          };
        }
        if (signal.aborted) throw error;
        throw connectionError(error, this.#proxy);
      }
      const headers: HeaderMap = {};
      response.headers.forEach((value: string, key: string) => (headers[key] = value));
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        // A body cut short (a reset mid-answer) fails here, after the SDK call returned.
        if (signal.aborted) throw error;
        throw connectionError(error, this.#proxy);
      }
      const json = parseJson(text);
      return { status: response.status, headers, text, json, requestId: requestIdOf(headers, json) };
    });
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async destroy(): Promise<void> {
    await this.#dispatcher.destroy();
  }
}

/** The server as messages name it: the base URL, and the proxy when one is in use (credentials hidden). */
export function describeTarget(transport: TransportOptions): { baseUrl: string; proxy: string | null } {
  const proxy = proxyFor(transport.baseUrl, transport.env ?? process.env);
  return { baseUrl: transport.baseUrl, proxy: proxy === null ? null : redactUrlCredentials(proxy) };
}
