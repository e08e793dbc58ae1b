// The simulator: an OpenAI-compatible server over real HTTP on loopback.
//
// In:  SimulatorOptions.  Out: a running Simulator (its /v1 base URL, stats, close).
// Owns the HTTP plumbing: reading bodies, authentication, dispatch to the
// registered routes (routes.ts) and the model endpoints (api.ts), the
// in-flight count, and the /sim/stats and /sim/reset control paths that let a
// test drive a simulator running in another process.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isEndpoint, type Endpoint } from '../shared/types.js';
import { ModelApi } from './api.js';
import { RequestContext, type BilledEvent, type SimHost } from './context.js';
import { incorrectKeyError, invalidUrlError, methodNotAllowedError, missingKeyError } from './error-bodies.js';
import { FaultInjector } from './faults.js';
import { IdSource } from './ids.js';
import { resolveOptions, type ResolvedSimulatorOptions, type SimulatorOptions } from './options.js';
import { RateLimiter } from './ratelimit.js';
import { matchRoute, type Route } from './route.js';
import { registeredRoutes, setupHooks } from './routes.js';
import { StatsRecorder, type SimStats } from './stats.js';

export { parseFaults, FAULT_KINDS, type FaultKind } from './faults.js';
export { requestDigest } from './digest.js';
export type { SimulatorOptions, ResolvedSimulatorOptions, RateLimit429Headers } from './options.js';
export type { SimStats, BilledTotals } from './stats.js';
export type { SimContext, RouteHandler, SimHost, BilledEvent, OfflineAnswer } from './context.js';
export type { Route } from './route.js';

export interface Simulator {
  /** Base URL including /v1, e.g. http://127.0.0.1:41234/v1. */
  url: string;
  port: number;
  stats(): SimStats;
  resetStats(): void;
  /** Stops listening and destroys every open socket, hanging ones included. */
  close(): Promise<void>;
}

/** Bodies above this size get a 413 (the Batch API's 200 MB file limit fits). */
const MAX_BODY_BYTES = 256 * 1024 * 1024;
/** Longer than the 60 s idle timeouts of common load balancers, so the client closes idle sockets first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** The simulator's options, plus routes for this simulator only (tests), consulted before the shared registry. */
export interface StartSimulatorOptions extends SimulatorOptions {
  routes?: readonly Route[];
}

export async function startSimulator(options: StartSimulatorOptions = {}): Promise<Simulator> {
  const resolved = resolveOptions(options);
  const stats = new StatsRecorder();
  const ids = new IdSource(resolved.seed);
  const limiter = new RateLimiter(resolved);
  const faults = new FaultInjector(resolved.faults, resolved.faultsEveryAttempt);
  const billedListeners = new Set<(event: BilledEvent) => void>();
  const moduleState = new Map<string, unknown>();

  const host: SimHost = {
    options: resolved,
    stats,
    now: () => Date.now(),
    state<T>(key: string, init: () => T): T {
      if (!moduleState.has(key)) moduleState.set(key, init());
      return moduleState.get(key) as T;
    },
    onBilled(listener) {
      billedListeners.add(listener);
      return () => billedListeners.delete(listener);
    },
    emitBilled(event) {
      for (const listener of billedListeners) listener(event);
    },
    answer: (endpoint, rawBody) => api.answerOffline(endpoint, rawBody),
    requestId: () => ids.requestId(),
  };
  const api = new ModelApi({ options: resolved, stats, limiter, faults, ids, host });
  const routes: readonly Route[] = [...(options.routes ?? []), ...registeredRoutes()];
  const teardowns: Array<() => void> = [];
  for (const hook of setupHooks()) {
    const teardown = hook(host);
    if (typeof teardown === 'function') teardowns.push(teardown);
  }

  const server = createServer((req, res) => {
    const arrivedMs = performance.now();
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    if (path.startsWith('/sim/')) {
      control(req, res, method, path);
      return;
    }

    stats.requestStarted();
    let ctx: RequestContext | undefined;
    res.once('close', () => {
      stats.requestEnded();
      if (ctx?.hasOutcome) return;
      // A route that wrote to `res` itself, or a client that left before any answer.
      stats.countStatus(res.headersSent ? res.statusCode : 'aborted');
    });

    readBody(req)
      .then(async (rawBody) => {
        if (rawBody === 'aborted') return;
        const key = bearerKey(req.headers.authorization);
        const body = rawBody === 'too_large' ? Buffer.alloc(0) : rawBody;
        ctx = new RequestContext(req, res, method, path, body, key ?? '', ids.requestId(), arrivedMs, host);
        if (rawBody === 'too_large') {
          const message = `The request body is larger than ${MAX_BODY_BYTES} bytes.`;
          return ctx.sendError(413, 'invalid_request_error', 'request_too_large', message);
        }
        await dispatch(ctx, key, resolved, routes, api);
      })
      .catch(() => {
        if (ctx && !ctx.isAnswered) {
          ctx.sendError(500, 'server_error', null, 'The simulator failed while handling this request.');
        } else if (!res.headersSent) {
          res.destroy();
        }
      });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Must exceed keepAliveTimeout, or Node may cut a keep-alive socket while the next request's headers arrive.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  // Hangs hold requests open on purpose; the hang fault, not Node, decides when they end.
  server.requestTimeout = 0;
  server.maxConnections = Number.POSITIVE_INFINITY;

  function control(req: IncomingMessage, res: ServerResponse, method: string, path: string): void {
    req.resume();
    let status = 200;
    let body: unknown;
    if (path === '/sim/stats' && method === 'GET') {
      body = stats.snapshot();
    } else if (path === '/sim/reset' && method === 'POST') {
      stats.reset();
      body = stats.snapshot();
    } else {
      status = 404;
      body = { error: invalidUrlError(method, path) };
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-request-id': ids.requestId(),
    });
    res.end(text);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostInUrl}:${port}/v1`,
    port,
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const teardown of teardowns) teardown();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Authentication, then the registered routes, then the model endpoints. */
async function dispatch(
  ctx: RequestContext,
  key: string | null,
  options: ResolvedSimulatorOptions,
  routes: readonly Route[],
  api: ModelApi,
): Promise<void> {
  const { method, path } = ctx;
  if (!path.startsWith('/v1/')) return ctx.sendErrorObject(404, invalidUrlError(method, path));

  if (key === null) return ctx.sendErrorObject(401, missingKeyError());
  const isAdminPath = path.startsWith('/v1/organization/');
  const isKeyAccepted = isAdminPath ? key === options.adminKey : options.apiKey === null || key === options.apiKey;
  if (!isKeyAccepted) return ctx.sendErrorObject(401, incorrectKeyError(key));

  const match = matchRoute(routes, method, path);
  if (match.kind === 'found') {
    ctx.params = match.params;
    return match.route.handler(ctx);
  }
  if (match.kind === 'method_not_allowed') {
    return ctx.sendErrorObject(405, methodNotAllowedError(method, path), { allow: match.allowed.join(', ') });
  }
  if (isEndpoint(path)) {
    if (method !== 'POST') return ctx.sendErrorObject(405, methodNotAllowedError(method, path), { allow: 'POST' });
    return api.handle(ctx, path as Endpoint);
  }
  return ctx.sendErrorObject(404, invalidUrlError(method, path));
}

/** The key of `Authorization: Bearer <key>`, or null when there is none. */
function bearerKey(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? (match[1] as string) : null;
}

/** The whole body, 'too_large' past MAX_BODY_BYTES (drained, not kept), or 'aborted' if the client left. */
function readBody(req: IncomingMessage): Promise<Buffer | 'too_large' | 'aborted'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) resolve('too_large');
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.on('close', () => {
      if (!req.complete) resolve('aborted');
    });
    req.on('error', (error) => {
      if (!req.complete) resolve('aborted');
      else reject(error);
    });
  });
}
