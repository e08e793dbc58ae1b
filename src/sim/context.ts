// The per-request context every simulator route handler receives, and the
// per-simulator host that route modules (org.ts, batch.ts) share state through.
//
// In:  one HTTP request whose body has been read.  Out: helpers that answer it
//      with OpenAI's headers (x-request-id, openai-version, …) and count it.
// Owns the rule that every answer goes through `send`, so every response has
// an x-request-id and is counted in stats before it is written.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Endpoint } from '../shared/types.js';
import { apiError, SIM_ORGANIZATION, type ApiErrorObject } from './error-bodies.js';
import type { ResolvedSimulatorOptions } from './options.js';
import type { AnswerUsage } from './responses.js';
import type { StatsRecorder } from './stats.js';

export interface SimContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** The request path without its query, e.g. `/v1/batches/batch_abc`. */
  readonly path: string;
  /** The full request URL (parsed on first use), for query parameters. */
  readonly url: URL;
  /** Capture groups of the route's pattern (index 0 is the whole match). */
  readonly params: readonly string[];
  /** The request body as received. */
  readonly rawBody: Buffer;
  /** The request body as UTF-8 text (decoded on first use). */
  readonly body: string;
  /** The bearer key that passed authentication. */
  readonly apiKey: string;
  /** This answer's `x-request-id`. */
  readonly requestId: string;
  readonly options: ResolvedSimulatorOptions;
  readonly stats: StatsRecorder;
  readonly host: SimHost;
  /** Wall-clock time, ms since the epoch. */
  now(): number;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json(): unknown;
  /** Whether an answer has been sent (or the socket given up). */
  readonly isAnswered: boolean;
  send(status: number, contentType: string, payload: string | Buffer, headers?: OutgoingHttpHeaders): void;
  sendJson(status: number, body: unknown, headers?: OutgoingHttpHeaders): void;
  sendError(status: number, type: string, code: string | null, message: string, param?: string | null, headers?: OutgoingHttpHeaders): void;
}

export type RouteHandler = (ctx: SimContext) => Promise<void> | void;

/** Usage of one successful answer, told to `onBilled` listeners (the org usage/costs routes). */
export interface BilledEvent {
  /** Wall-clock ms when the answer was written. */
  timeMs: number;
  endpoint: Endpoint;
  /** The model as answered (a dated snapshot for known aliases). */
  model: string;
  requestedModel: string;
  apiKey: string;
  /** Usage as the answer body reports it (all zero for moderations, which report none). */
  usage: AnswerUsage;
  /** Prompt tokens measured for the request (moderations included). */
  promptTokens: number;
  serviceTier: string;
  /** True for lines answered through the Batch API (priced at the batch rate). */
  batch: boolean;
}

/** The answer the online endpoint would give a body, without rate limits, faults or latency (for batch lines). */
export type OfflineAnswer =
  | {
      statusCode: 200;
      body: Record<string, unknown>;
      model: string;
      requestedModel: string;
      usage: AnswerUsage;
      promptTokens: number;
      serviceTier: string;
    }
  | { statusCode: 400 | 404; body: { error: ApiErrorObject } };

/** What one running simulator shares with its route modules. */
export interface SimHost {
  readonly options: ResolvedSimulatorOptions;
  readonly stats: StatsRecorder;
  /** Wall-clock time, ms since the epoch. */
  now(): number;
  /** Per-simulator state for a route module, created on first use (e.g. the batch store). */
  state<T>(key: string, init: () => T): T;
  /** Subscribes to every billed answer; returns the unsubscribe function. */
  onBilled(listener: (event: BilledEvent) => void): () => void;
  /** Tells the listeners about a billed answer (the batch routes report their lines with `batch: true`). */
  emitBilled(event: BilledEvent): void;
  /** Answers a raw request body as `endpoint` would (usage and text as online, deterministic by body). */
  answer(endpoint: Endpoint, rawBody: string): OfflineAnswer;
  /** A fresh `req_…` id. */
  requestId(): string;
}

/** The one implementation of SimContext. */
export class RequestContext implements SimContext {
  private parsedUrl: URL | undefined;
  private text: string | undefined;
  private answered = false;
  /** Set by the dispatcher when a registered route matches. */
  params: readonly string[] = [];

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly method: string,
    readonly path: string,
    readonly rawBody: Buffer,
    readonly apiKey: string,
    readonly requestId: string,
    /** performance.now() when the request arrived, for openai-processing-ms. */
    private readonly arrivedMs: number,
    readonly host: SimHost,
  ) {}

  get url(): URL {
    this.parsedUrl ??= new URL(this.req.url ?? '/', `http://${this.req.headers.host ?? 'localhost'}`);
    return this.parsedUrl;
  }

  get body(): string {
    this.text ??= this.rawBody.toString('utf8');
    return this.text;
  }

  get options(): ResolvedSimulatorOptions {
    return this.host.options;
  }

  get stats(): StatsRecorder {
    return this.host.stats;
  }

  get isAnswered(): boolean {
    return this.answered || this.res.headersSent || this.res.destroyed || this.req.socket.destroyed;
  }

  /** Whether this request was answered or deliberately given up (reset, hang) by a handler. */
  get hasOutcome(): boolean {
    return this.answered;
  }

  now(): number {
    return this.host.now();
  }

  json(): unknown {
    try {
      return JSON.parse(this.body) as unknown;
    } catch {
      return undefined;
    }
  }

  /** Marks the request as dealt with without an answer (a reset or a hang). */
  giveUp(): void {
    this.answered = true;
  }

  send(status: number, contentType: string, payload: string | Buffer, headers?: OutgoingHttpHeaders): void {
    if (this.isAnswered) return;
    this.answered = true;
    const all: OutgoingHttpHeaders = {
      'content-type': contentType,
      'content-length': typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length,
      'x-request-id': this.requestId,
      'openai-organization': SIM_ORGANIZATION,
      'openai-processing-ms': String(Math.round(performance.now() - this.arrivedMs)),
      'openai-version': '2020-10-01',
    };
    if (headers) for (const name in headers) all[name] = headers[name];
    this.stats.countStatus(status);
    this.res.writeHead(status, all);
    this.res.end(payload);
  }

  sendJson(status: number, body: unknown, headers?: OutgoingHttpHeaders): void {
    this.send(status, 'application/json', JSON.stringify(body), headers);
  }

  sendError(
    status: number,
    type: string,
    code: string | null,
    message: string,
    param: string | null = null,
    headers?: OutgoingHttpHeaders,
  ): void {
    this.sendJson(status, { error: apiError(type, code, message, param) }, headers);
  }

  /** Sends a ready-made error object. */
  sendErrorObject(status: number, error: ApiErrorObject, headers?: OutgoingHttpHeaders): void {
    this.sendJson(status, { error }, headers);
  }
}
