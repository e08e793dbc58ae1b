import { describe, expect, it } from 'vitest';
import { ConnectionError, TimeoutError } from '../src/shared/errors.js';
import type { HeaderMap } from '../src/shared/headers.js';
import {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  SERVER_DELAY_CAP_MS,
  classifyAttempt,
  defaultRateLimitWaitMs,
  isRequestTooLarge,
  rateLimitWaitMs,
  retryDelayMs,
  shouldRetry,
  type AttemptOutcome,
  type Verdict,
} from '../src/pipeline/send/retry.js';
import { callWithRetry, type CallOptions } from '../src/pipeline/send.js';
import type { HttpResponse, Transport } from '../src/pipeline/send/transport.js';

const NOW = Date.parse('2026-11-20T12:00:00Z');

/** An HTTP answer as the transport returns it: the text, and its JSON when it parses. */
function answer(status: number, body: unknown, headers: HeaderMap = {}): AttemptOutcome {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  const response: HttpResponse = { status, headers, text, json, requestId: headers['x-request-id'] ?? null };
  return { kind: 'response', response };
}

function apiError(message: string, type: string, code: string | null, param: string | null = null): unknown {
  return { error: { message, type, param, code } };
}

// Bodies from OPENAI-API.md §1.3 and §4.
const RPM_429 = apiError(
  'Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.',
  'requests',
  'rate_limit_exceeded',
);
const TPM_429 = apiError(
  'Rate limit reached for gpt-4 in organization org-x on tokens per min (TPM): Limit 10000, Used 8554, Requested 3082. Please try again in 9.816s. Visit https://platform.openai.com/account/rate-limits to learn more.',
  'tokens',
  'rate_limit_exceeded',
);
const TPM_429_NO_HINT = apiError('Rate limit reached for gpt-4o on tokens per min (TPM).', 'tokens', 'rate_limit_exceeded');
const TOO_LARGE_429 = apiError(
  'Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.',
  'tokens',
  'rate_limit_exceeded',
);
const QUOTA_429 = apiError(
  'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
  'insufficient_quota',
  'insufficient_quota',
);
const OLD_QUOTA_429 = apiError('You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', null);
const SERVER_500 = apiError('The server had an error processing your request. Sorry about that!', 'server_error', null);
const BAD_KEY_401 = apiError('Incorrect API key provided: sk-VKMIs*****wjh3.', 'invalid_request_error', 'invalid_api_key');
const CONTEXT_400 = apiError(
  "This model's maximum context length is 4097 tokens. However, your messages resulted in 4363 tokens.",
  'invalid_request_error',
  'context_length_exceeded',
  'messages',
);
const COUNTRY_403 = apiError('Country, region, or territory not supported', 'request_forbidden', 'unsupported_country_region_territory');
const MODEL_404 = apiError('The model `gpt-4` does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found');
const CHAT_200 = { id: 'chatcmpl-1', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };

describe('classifyAttempt', () => {
  it.each<[string, AttemptOutcome, Partial<Verdict>]>([
    ['a 200 with a JSON body is a success', answer(200, CHAT_200), { action: 'success' }],
    ['a 201 with a JSON body is a success', answer(201, { id: 'file-1' }), { action: 'success' }],
    [
      'a 200 with an HTML body is retried as invalid_response',
      answer(200, '<html>upstream hiccup</html>'),
      { action: 'retry', reason: 'invalid_response', code: 'invalid_response', serverDelayMs: null },
    ],
    ['a 200 with a truncated JSON body is retried as invalid_response', answer(200, '{"id":"chatcmpl-1","choi'), { action: 'retry', reason: 'invalid_response' }],
    ['a 200 with an empty body is retried as invalid_response', answer(200, ''), { action: 'retry', reason: 'invalid_response' }],
    ['a 200 whose JSON is a bare number is retried as invalid_response', answer(200, '42'), { action: 'retry', reason: 'invalid_response' }],
    ['a 200 whose JSON is null is retried as invalid_response', answer(200, 'null'), { action: 'retry', reason: 'invalid_response' }],
    [
      'a 400 is final with the API code',
      answer(400, CONTEXT_400),
      { action: 'final', code: 'context_length_exceeded', message: expect.stringContaining('maximum context length') as unknown as string },
    ],
    ['a 403 is final', answer(403, COUNTRY_403), { action: 'final', code: 'unsupported_country_region_territory' }],
    ['a 404 is final', answer(404, MODEL_404), { action: 'final', code: 'model_not_found' }],
    ['a 422 without a code is final as http_422', answer(422, apiError('Unprocessable', 'invalid_request_error', null)), { action: 'final', code: 'http_422' }],
    ['a 400 with a non-JSON body is final as http_400', answer(400, 'Bad Request'), { action: 'final', code: 'http_400', message: 'status 400: Bad Request' }],
    [
      'a 401 stops the run as auth_failed, without the ends of the key the API quoted',
      answer(401, BAD_KEY_401),
      { action: 'stop', reason: 'auth_failed', code: 'invalid_api_key', message: 'Incorrect API key provided: sk-[redacted].' },
    ],
    ['a 401 without a body stops the run', answer(401, ''), { action: 'stop', reason: 'auth_failed', code: 'http_401', message: 'status 401 with an empty body' }],
    ['a 429 insufficient_quota stops the run', answer(429, QUOTA_429), { action: 'stop', reason: 'quota_exhausted', code: 'insufficient_quota' }],
    ['an old-style 429 quota body (code null) stops the run', answer(429, OLD_QUOTA_429), { action: 'stop', reason: 'quota_exhausted', code: 'insufficient_quota' }],
    ['a 429 "Request too large" is final', answer(429, TOO_LARGE_429), { action: 'final', code: 'rate_limit_exceeded' }],
    ['a 429 RPM limit is rate_limited for requests', answer(429, RPM_429), { action: 'rate_limited', limitType: 'requests', waitMs: 20_000 }],
    ['a 429 TPM limit is rate_limited for tokens', answer(429, TPM_429), { action: 'rate_limited', limitType: 'tokens', waitMs: 9816 }],
    ['a 429 with an unknown type has no limitType', answer(429, apiError('slow down', 'other', 'rate_limit_exceeded')), { action: 'rate_limited', limitType: null, waitMs: null }],
    ['a 429 with an HTML body is rate_limited with no hint', answer(429, '<html>Too Many Requests</html>'), { action: 'rate_limited', limitType: null, waitMs: null }],
    ['a 408 is retried', answer(408, ''), { action: 'retry', reason: 'http_408', code: 'http_408', serverDelayMs: null }],
    ['a 409 is retried', answer(409, apiError('conflict', 'invalid_request_error', null)), { action: 'retry', reason: 'http_409', code: 'http_409' }],
    ['a 500 is retried as a server error', answer(500, SERVER_500), { action: 'retry', reason: 'server_error', code: 'http_500', serverDelayMs: null }],
    ['a 502 HTML page is retried', answer(502, '<html><body>502 Bad Gateway</body></html>'), { action: 'retry', reason: 'server_error', code: 'http_502' }],
    ['a 503 is retried', answer(503, apiError('That model is currently overloaded', 'server_error', null)), { action: 'retry', reason: 'server_error' }],
    ['a 503 with retry-after carries the server delay', answer(503, SERVER_500, { 'retry-after': '3' }), { action: 'retry', serverDelayMs: 3000 }],
    ['a 500 with retry-after-ms carries the server delay', answer(500, SERVER_500, { 'retry-after-ms': '250' }), { action: 'retry', serverDelayMs: 250 }],
    ['a 408 with an HTTP-date retry-after carries the server delay', answer(408, '', { 'retry-after': 'Fri, 20 Nov 2026 12:00:02 GMT' }), { action: 'retry', serverDelayMs: 2000 }],
    ['x-should-retry: true retries a 400', answer(400, CONTEXT_400, { 'x-should-retry': 'true' }), { action: 'retry', code: 'context_length_exceeded' }],
    ['x-should-retry: false makes a 500 final', answer(500, SERVER_500, { 'x-should-retry': 'false' }), { action: 'final', code: 'http_500' }],
    ['x-should-retry: false makes a 409 final', answer(409, '', { 'x-should-retry': 'false' }), { action: 'final', code: 'http_409' }],
    [
      'a timeout is retried',
      { kind: 'error', error: new TimeoutError(120_000) },
      { action: 'retry', reason: 'timeout', code: 'timeout', serverDelayMs: null, message: 'no answer within 120 s' },
    ],
    [
      'a connection reset is retried',
      { kind: 'error', error: new ConnectionError('ECONNRESET: socket hang up') },
      { action: 'retry', reason: 'connection_error', code: 'connection_error', message: 'ECONNRESET: socket hang up' },
    ],
    [
      'a refused connection is retried',
      { kind: 'error', error: new ConnectionError('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9') },
      { action: 'retry', reason: 'connection_error' },
    ],
  ])('%s', (_name, outcome, expected) => {
    expect(classifyAttempt(outcome, NOW)).toMatchObject(expected);
  });

  describe('the wait a 429 rate_limit_exceeded names', () => {
    const resetHeaders = (remainingRequests: string, remainingTokens: string): HeaderMap => ({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-limit-tokens': '150000',
      'x-ratelimit-remaining-requests': remainingRequests,
      'x-ratelimit-remaining-tokens': remainingTokens,
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-reset-tokens': '6m0s',
    });

    it.each<[string, unknown, HeaderMap, number | null]>([
      ['retry-after-ms wins over everything', TPM_429, { 'retry-after-ms': '1500', 'retry-after': '9', ...resetHeaders('0', '0') }, 1500],
      ['retry-after seconds come next', TPM_429, { 'retry-after': '9', ...resetHeaders('0', '0') }, 9000],
      ['retry-after as an HTTP date', TPM_429_NO_HINT, { 'retry-after': 'Fri, 20 Nov 2026 12:00:04 GMT' }, 4000],
      ['then the "Please try again in" text', TPM_429, resetHeaders('0', '0'), 9816],
      ['a "644ms" text', apiError('Limit 30000, Used 29937, Requested 385. Please try again in 644ms. Visit …', 'tokens', 'rate_limit_exceeded'), {}, 644],
      ['then the reset of the exhausted request budget', TPM_429_NO_HINT, resetHeaders('0', '140000'), 1000],
      ['then the reset of the exhausted token budget', TPM_429_NO_HINT, resetHeaders('30', '12'), 360_000],
      ['the longer reset when both budgets are exhausted', TPM_429_NO_HINT, resetHeaders('0', '0'), 360_000],
      ['no wait when the reset headers show budget left', TPM_429_NO_HINT, resetHeaders('30', '140000'), null],
      ['no wait when nothing is named (a real 429 may carry no headers)', TPM_429_NO_HINT, {}, null],
    ])('%s', (_name, body, headers, waitMs) => {
      const verdict = classifyAttempt(answer(429, body, headers), NOW);
      expect(verdict).toMatchObject({ action: 'rate_limited', waitMs });
      const outcome = answer(429, body, headers);
      if (outcome.kind === 'response') expect(rateLimitWaitMs(outcome.response, NOW)).toBe(waitMs);
    });
  });
});

describe('isRequestTooLarge', () => {
  it.each<[string, boolean]>([
    ['Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 31538.', true],
    ['request too large for gpt-4o', true],
    ['Rate limit reached for gpt-4o on tokens per min (TPM). Please try again in 1s.', false],
    ['', false],
  ])('%j → %s', (message, expected) => {
    expect(isRequestTooLarge(message)).toBe(expected);
  });
});

describe('retryDelayMs', () => {
  const ZERO = (): number => 0;
  const ALMOST_ONE = (): number => 0.999_999_999;

  it.each<[number, number]>([
    [1, 500],
    [2, 1000],
    [3, 2000],
    [4, 4000],
    [5, 8000],
    [6, 16_000],
    [7, 30_000],
    [8, 30_000],
    [50, 30_000],
    [2000, 30_000],
  ])('after %d spent attempts draws uniformly below %d ms (full jitter, capped)', (attempts, ceiling) => {
    expect(retryDelayMs(attempts, null, ZERO)).toBe(0);
    const highest = retryDelayMs(attempts, null, ALMOST_ONE);
    expect(highest).toBeLessThan(ceiling);
    expect(highest).toBeGreaterThanOrEqual(ceiling - 1);
    expect(retryDelayMs(attempts, null, () => 0.5)).toBe(ceiling / 2);
  });

  it('starts from BACKOFF_BASE_MS and never passes BACKOFF_CAP_MS', () => {
    expect(BACKOFF_BASE_MS).toBe(500);
    for (let attempts = 0; attempts < 100; attempts++) {
      expect(retryDelayMs(attempts, null, ALMOST_ONE)).toBeLessThan(BACKOFF_CAP_MS);
    }
  });

  it.each<[string, number, number]>([
    ['0 ms', 0, 0],
    ['1.5 s', 1500, 1500],
    ['exactly the 60 s cap', SERVER_DELAY_CAP_MS, SERVER_DELAY_CAP_MS],
  ])('follows a sane server delay of %s whatever the attempt', (_name, serverDelayMs, expected) => {
    expect(retryDelayMs(1, serverDelayMs, ALMOST_ONE)).toBe(expected);
    expect(retryDelayMs(6, serverDelayMs, ZERO)).toBe(expected);
  });

  it.each<[string, number]>([
    ['a negative delay', -1],
    ['a delay over 60 s', SERVER_DELAY_CAP_MS + 1],
    ['an hour', 3_600_000],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('ignores %s from the server and backs off instead', (_name, serverDelayMs) => {
    expect(retryDelayMs(3, serverDelayMs, () => 0.5)).toBe(1000);
  });
});

describe('shouldRetry', () => {
  const retry: Verdict = { action: 'retry', reason: 'server_error', serverDelayMs: null, code: 'http_500', message: '' };
  const rateLimited: Verdict = { action: 'rate_limited', waitMs: 1000, limitType: 'tokens' };
  const final: Verdict = { action: 'final', code: 'http_400', message: '' };
  const stop: Verdict = { action: 'stop', reason: 'auth_failed', code: 'invalid_api_key', message: '' };
  const success: Verdict = { action: 'success' };

  it.each<[string, Verdict, number, number, boolean]>([
    ['a retryable failure with attempts left', retry, 1, 6, true],
    ['a retryable failure on the next-to-last attempt', retry, 5, 6, true],
    ['a retryable failure once every attempt is spent', retry, 6, 6, false],
    ['a retryable failure with --max-attempts 1', retry, 1, 1, false],
    ['a final failure', final, 1, 6, false],
    ['a stop', stop, 1, 6, false],
    ['a success', success, 1, 6, false],
    ['a rate limit (handled by waiting, not by spending attempts)', rateLimited, 1, 6, false],
  ])('%s → %s', (_name, verdict, spent, max, expected) => {
    expect(shouldRetry(verdict, spent, max)).toBe(expected);
  });

  it('lets a request survive any number of 429s and still use all its attempts on 5xx', () => {
    // The loop counts only retryable failures as spent attempts: replay a sequence of answers.
    const outcomes = [
      answer(429, RPM_429),
      answer(500, SERVER_500),
      answer(429, TPM_429),
      answer(429, TPM_429),
      answer(503, SERVER_500),
      answer(429, RPM_429),
      answer(502, '<html/>'),
    ];
    const maxAttempts = 3;
    let spent = 0;
    const trail: string[] = [];
    for (const outcome of outcomes) {
      const verdict = classifyAttempt(outcome, NOW);
      if (verdict.action === 'rate_limited') {
        trail.push('wait');
        continue;
      }
      spent += 1;
      const again = shouldRetry(verdict, spent, maxAttempts);
      trail.push(again ? 'retry' : 'give up');
      if (!again) break;
    }
    expect(trail).toEqual(['wait', 'retry', 'wait', 'wait', 'retry', 'wait', 'give up']);
    expect(spent).toBe(3);
  });
});

describe('defaultRateLimitWaitMs', () => {
  it.each<[number, number]>([
    [0, 1000],
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
    [5, 16_000],
    [6, 32_000],
    [7, 32_000],
    [100, 32_000],
  ])('after %d consecutive 429s without a named wait pauses %d ms', (consecutive, ms) => {
    expect(defaultRateLimitWaitMs(consecutive)).toBe(ms);
  });
});

describe('callWithRetry (the one-off call loop, with an injected sleep)', () => {
  /** A transport that plays back answers (or throws transport errors) in order, and records the requests. */
  function playback(outcomes: AttemptOutcome[]): Transport & { calls: number } {
    const queue = [...outcomes];
    const t = {
      calls: 0,
      async request(): Promise<HttpResponse> {
        t.calls += 1;
        const next = queue.shift();
        if (!next) throw new Error('no more answers');
        if (next.kind === 'error') throw next.error;
        return next.response;
      },
      async close(): Promise<void> {},
      async destroy(): Promise<void> {},
    };
    return t;
  }
  const request = { method: 'GET' as const, path: '/organization/costs', timeoutMs: 1000 };

  async function call(outcomes: AttemptOutcome[], options: CallOptions = {}): Promise<{ result: unknown; sleeps: number[]; calls: number }> {
    const sleeps: number[] = [];
    const transport = playback(outcomes);
    const result = await callWithRetry(transport, request, {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      now: () => NOW,
      random: () => 0.5,
      ...options,
    }).catch((error: unknown) => error);
    return { result, sleeps, calls: transport.calls };
  }

  it('returns the first success', async () => {
    const { result, sleeps } = await call([answer(200, { data: [] })]);
    expect(result).toMatchObject({ status: 200, json: { data: [] } });
    expect(sleeps).toEqual([]);
  });

  it('backs off with jitter after 5xx, timeouts and resets, then succeeds', async () => {
    const { result, sleeps } = await call([
      answer(500, SERVER_500),
      { kind: 'error', error: new TimeoutError(1000) },
      { kind: 'error', error: new ConnectionError('ECONNRESET: socket hang up') },
      answer(200, { ok: true }),
    ]);
    expect(result).toMatchObject({ status: 200 });
    expect(sleeps).toEqual([250, 500, 1000]);
  });

  it('waits out 429s as the server asks without spending attempts', async () => {
    const { result, sleeps } = await call(
      [answer(429, TPM_429), answer(429, RPM_429, { 'retry-after-ms': '300' }), answer(429, TPM_429_NO_HINT), answer(200, { ok: true })],
      { maxAttempts: 1 },
    );
    expect(result).toMatchObject({ status: 200 });
    expect(sleeps).toEqual([9816, 300, 4000]); // the third has no hint: the default for a third consecutive 429
  });

  it('gives up after maxAttempts retryable failures with the last failure', async () => {
    const { result, sleeps, calls } = await call([answer(503, SERVER_500), answer(503, SERVER_500), answer(503, SERVER_500)], { maxAttempts: 3 });
    expect(result).toMatchObject({ name: 'ServerError', status: 503 });
    expect(sleeps).toHaveLength(2);
    expect(calls).toBe(3);
  });

  it.each<[string, AttemptOutcome, string]>([
    ['a 401 as AuthError', answer(401, BAD_KEY_401), 'AuthError'],
    ['a 429 insufficient_quota as QuotaError', answer(429, QUOTA_429), 'QuotaError'],
    ['a 400 as APIError', answer(400, CONTEXT_400), 'APIError'],
  ])('throws %s at once', async (_name, outcome, name) => {
    const { result, sleeps, calls } = await call([outcome, answer(200, {})]);
    expect(result).toMatchObject({ name });
    expect(sleeps).toEqual([]);
    expect(calls).toBe(1);
  });

  it('throws the transport error when attempts run out on timeouts', async () => {
    const { result } = await call([{ kind: 'error', error: new TimeoutError(1000) }], { maxAttempts: 1 });
    expect(result).toBeInstanceOf(TimeoutError);
  });

  it('stops on a 429 that asks for more than 10 minutes', async () => {
    const { result, sleeps } = await call([answer(429, TPM_429_NO_HINT, { 'retry-after': '3600' })]);
    expect(result).toMatchObject({ name: 'RateLimitError', status: 429 });
    expect(sleeps).toEqual([]);
  });

  it('returns a non-JSON 2xx body when the caller expects raw content', async () => {
    const { result } = await call([answer(200, '{"custom_id":"a"}\n{"custom_id":"b"}\n')], { isRawBody: true });
    expect(result).toMatchObject({ status: 200, text: '{"custom_id":"a"}\n{"custom_id":"b"}\n' });
  });

  it('retries a non-JSON 2xx body otherwise, and reports invalid_response when attempts run out', async () => {
    const { result, calls } = await call([answer(200, '<html>'), answer(200, '<html>')], { maxAttempts: 2 });
    expect(result).toMatchObject({ code: 'invalid_response' });
    expect(calls).toBe(2);
  });
});
