// The five model endpoints: one request from parsed body to written answer.
//
// In:  an authenticated POST to /v1/chat/completions, /v1/responses,
//      /v1/embeddings, /v1/completions or /v1/moderations.
// Out: a success body, or the error the API would send, with its headers.
// Owns the order of the checks, which is the real API's: validate → quota →
// rate limits (on arrival, before latency) → fault → latency → answer.

import type { OutgoingHttpHeaders } from 'node:http';
import { charEstimate, DEFAULT_OUTPUT_TOKENS, maxOutputTokensOf, measurePrompt, type PromptMeasure } from '../pipeline/plan/charge.js';
import { formatGoDuration } from '../shared/headers.js';
import type { Endpoint } from '../shared/types.js';
import type { OfflineAnswer, RequestContext, SimHost } from './context.js';
import { RequestHash, requestDigest, SALT } from './digest.js';
import {
  BAD_GATEWAY_HTML,
  contextLengthError,
  forbiddenError,
  insufficientQuotaError,
  invalidJsonError,
  modelNotFoundError,
  overloadedError,
  requestsLimitError,
  requestTooLargeError,
  serverError,
  tokensLimitError,
} from './error-bodies.js';
import type { FaultInjector, FaultKind } from './faults.js';
import type { IdSource } from './ids.js';
import type { ResolvedSimulatorOptions } from './options.js';
import { rateLimitHeaders, type Admission, type RateLimiter } from './ratelimit.js';
import { buildAnswer, serviceTierOf } from './responses.js';
import type { StatsRecorder } from './stats.js';
import { validateRequest } from './validate.js';

export interface ModelApiDeps {
  options: ResolvedSimulatorOptions;
  stats: StatsRecorder;
  limiter: RateLimiter;
  faults: FaultInjector;
  ids: IdSource;
  host: SimHost;
}

/** The param a context-length error names, per endpoint. */
const PROMPT_PARAM: Record<Endpoint, string> = {
  '/v1/chat/completions': 'messages',
  '/v1/responses': 'input',
  '/v1/completions': 'prompt',
  '/v1/embeddings': 'input',
  '/v1/moderations': 'input',
};

/** Prompt measures kept for bodies seen recently; cleared when full. */
const PROMPT_CACHE_SIZE = 10_000;

export class ModelApi {
  /** Successful answers so far, for `quotaAfterRequests` (not cleared by resetStats). */
  private successes = 0;
  /**
   * Tokenizing is the costliest step of a request, and a client held back by
   * 429s or faults sends the same body again and again: measure each body once.
   */
  private readonly prompts = new Map<string, PromptMeasure>();

  constructor(private readonly deps: ModelApiDeps) {}

  async handle(ctx: RequestContext, endpoint: Endpoint): Promise<void> {
    const { options, stats, limiter, faults } = this.deps;
    const digest = requestDigest(ctx.rawBody);

    let body: unknown;
    try {
      body = JSON.parse(ctx.body);
    } catch {
      return ctx.sendErrorObject(400, invalidJsonError());
    }
    if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'metadata' in body) stats.withMetadata++;

    const validation = validateRequest(endpoint, body);
    if (!validation.ok) return ctx.sendErrorObject(validation.problem.status, validation.problem.error);
    const fields = body as Record<string, unknown>;
    const model = validation.model;

    if (options.quotaAfterRequests !== null && this.successes >= options.quotaAfterRequests) {
      return ctx.sendErrorObject(429, insufficientQuotaError());
    }

    // The server estimates admission from characters, not tokens, and counts
    // the output limit (or a default) times n up front.
    const prompt = this.measure(digest, endpoint, fields);
    const charge =
      charEstimate(prompt.chars) + (maxOutputTokensOf(endpoint, fields) ?? DEFAULT_OUTPUT_TOKENS * positiveIntegerOr(fields.n, 1));
    const admission = limiter.admit(ctx.apiKey, model, charge, performance.now());
    if (admission.kind !== 'ok') return this.sendRateLimited(ctx, model, admission);
    stats.countAdmission(charge, Date.now());
    const limitHeaders = rateLimitHeaders(admission.state);

    const hash = new RequestHash(digest, options.seed);
    const fault = faults.decide(digest, hash);
    if (fault !== null) stats.countFault(fault);
    if (fault === 'hang') return this.hang(ctx);

    const delayMs = latencyOf(options, hash);
    if (delayMs > 0) {
      await sleep(delayMs);
      // The client may have gone (or the simulator closed) meanwhile: nothing to answer, nothing billed.
      if (ctx.isAnswered) return;
    }

    if (fault !== null && fault !== 'malformed') return this.sendFault(ctx, fault, model, endpoint, prompt.tokens);

    const answer = buildAnswer({
      endpoint,
      body: fields,
      model,
      digest,
      hash,
      promptTokens: prompt.tokens,
      ids: this.deps.ids,
      createdSec: Math.floor(Date.now() / 1000),
    });
    if (options.omitUsage) delete (answer.body as { usage?: unknown }).usage;
    const text = JSON.stringify(answer.body);
    if (fault === 'malformed') {
      // A 200 whose JSON stops half-way: not a success, not billed.
      return ctx.send(200, 'application/json', text.slice(0, Math.max(1, Math.floor(text.length / 2))), limitHeaders);
    }
    this.successes++;
    stats.countAnswer(digest, answer.model, answer.usage);
    ctx.send(200, 'application/json', text, limitHeaders);
    this.deps.host.emitBilled({
      timeMs: Date.now(),
      endpoint,
      model: answer.model,
      requestedModel: model,
      apiKey: ctx.apiKey,
      usage: answer.usage,
      promptTokens: prompt.tokens,
      serviceTier: serviceTierOf(fields),
      batch: false,
    });
  }

  private measure(digest: string, endpoint: Endpoint, body: Record<string, unknown>): PromptMeasure {
    // The digest covers the body, not the path; the same body may be sent to two endpoints.
    const key = endpoint + digest;
    let prompt = this.prompts.get(key);
    if (prompt === undefined) {
      prompt = measurePrompt(endpoint, body);
      if (this.prompts.size >= PROMPT_CACHE_SIZE) this.prompts.clear();
      this.prompts.set(key, prompt);
    }
    return prompt;
  }

  /** What the endpoint would answer for `rawBody`, ignoring limits, faults and latency (for batch lines). */
  answerOffline(endpoint: Endpoint, rawBody: string): OfflineAnswer {
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      return { statusCode: 400, body: { error: invalidJsonError() } };
    }
    const validation = validateRequest(endpoint, body);
    if (!validation.ok) return { statusCode: validation.problem.status, body: { error: validation.problem.error } };
    const fields = body as Record<string, unknown>;
    const digest = requestDigest(rawBody);
    const prompt = measurePrompt(endpoint, fields);
    const answer = buildAnswer({
      endpoint,
      body: fields,
      model: validation.model,
      digest,
      hash: new RequestHash(digest, this.deps.options.seed),
      promptTokens: prompt.tokens,
      ids: this.deps.ids,
      createdSec: Math.floor(Date.now() / 1000),
    });
    return {
      statusCode: 200,
      body: answer.body,
      model: answer.model,
      requestedModel: validation.model,
      usage: answer.usage,
      promptTokens: prompt.tokens,
      serviceTier: serviceTierOf(fields),
    };
  }

  private sendRateLimited(ctx: RequestContext, model: string, admission: Exclude<Admission, { kind: 'ok' }>): void {
    const { stats, options } = this.deps;
    stats.rateLimited++;
    const headers: OutgoingHttpHeaders = {};
    const mode = options.rateLimit429Headers;
    if (mode === 'reset') Object.assign(headers, rateLimitHeaders(admission.state));

    if (admission.kind === 'too_large') {
      // Needs a smaller request, not a wait: no retry-after (the spec allows omitting it for such 429s).
      return ctx.sendErrorObject(429, requestTooLargeError(model, admission.limit, admission.requested), headers);
    }
    if (mode === 'retry-after') headers['retry-after'] = String(Math.max(1, Math.ceil(admission.waitMs / 1000)));
    if (mode === 'retry-after-ms') headers['retry-after-ms'] = String(Math.max(1, Math.ceil(admission.waitMs)));
    const wait = formatGoDuration(admission.waitMs);
    const error =
      admission.kind === 'requests'
        ? requestsLimitError(model, admission.limit, admission.used, wait)
        : tokensLimitError(model, admission.limit, admission.used, admission.requested, wait);
    ctx.sendErrorObject(429, error, headers);
  }

  private hang(ctx: RequestContext): void {
    this.deps.stats.countStatus('hang');
    ctx.giveUp();
    const socket = ctx.req.socket;
    const timer = setTimeout(() => socket.destroy(), this.deps.options.hangMs);
    timer.unref();
    // A client that gives up first frees the timer (and the in-flight slot, in server.ts).
    ctx.res.once('close', () => clearTimeout(timer));
  }

  private sendFault(ctx: RequestContext, fault: Exclude<FaultKind, 'hang' | 'malformed'>, model: string, endpoint: Endpoint, promptTokens: number): void {
    switch (fault) {
      case 'reset':
        this.deps.stats.countStatus('reset');
        ctx.giveUp();
        // An RST, not a FIN: the client sees ECONNRESET, as when a proxy drops the connection.
        ctx.req.socket.resetAndDestroy();
        return;
      case '500':
        return ctx.sendErrorObject(500, serverError(ctx.requestId));
      case '503':
        return ctx.sendErrorObject(503, overloadedError(ctx.requestId));
      case '502':
        return ctx.send(502, 'text/html', BAD_GATEWAY_HTML);
      case '400':
        return ctx.sendErrorObject(400, contextLengthError(PROMPT_PARAM[endpoint], promptTokens));
      case '404':
        return ctx.sendErrorObject(404, modelNotFoundError(model));
      case '403':
        return ctx.sendErrorObject(403, forbiddenError());
    }
  }
}

/** Latency of one request: latencyMs ± jitter, drawn from its digest. */
function latencyOf(options: ResolvedSimulatorOptions, hash: RequestHash): number {
  if (options.latencyMs <= 0) return 0;
  return Math.max(0, options.latencyMs * (1 + options.latencyJitter * (2 * hash.unit(SALT.latency) - 1)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function positiveIntegerOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : fallback;
}
