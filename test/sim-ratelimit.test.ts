// The simulator's rate limits: the bucket arithmetic on a fake clock, then
// the 429 bodies and headers over real HTTP.

import { afterEach, describe, expect, it } from 'vitest';
import { charEstimate, measurePrompt } from '../src/pipeline/plan/charge.js';
import { parseGoDuration, tryAgainInMs } from '../src/shared/headers.js';
import { ModelLimiter, rateLimitHeaders, type LimitRefusal } from '../src/sim/ratelimit.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/sim/server.js';

describe('ModelLimiter (fake clock)', () => {
  it('starts full and refuses the request after the minute budget with the wait until one request is back', () => {
    const limiter = new ModelLimiter({ rpm: 3, tpm: 1_000_000 }, false, 0);
    expect([1, 2, 3].map(() => limiter.admit(10, 0).kind)).toEqual(['ok', 'ok', 'ok']);
    const refused = limiter.admit(10, 0) as LimitRefusal;
    expect(refused).toMatchObject({ kind: 'requests', limit: 3, used: 3, requested: 1 });
    // 3 per minute refill one request every 20 s: the captured OpenAI message says "try again in 20s".
    expect(refused.waitMs).toBe(20_000);
    expect(limiter.admit(10, 19_999).kind).toBe('requests');
  });

  it('lets a client that waits the time it was told through, even though refusals count against RPM', () => {
    const limiter = new ModelLimiter({ rpm: 3, tpm: 1_000_000 }, false, 0);
    for (let i = 0; i < 3; i++) limiter.admit(10, 0);
    const refused = limiter.admit(10, 5_000) as LimitRefusal;
    // 5 s had refilled a quarter request; the refusal used it up again.
    expect(refused.waitMs).toBe(20_000);
    expect(limiter.admit(10, 5_000 + refused.waitMs).kind).toBe('ok');
  });

  it('refuses on tokens with used/requested figures and the wait until the charge fits', () => {
    const limiter = new ModelLimiter({ rpm: 100, tpm: 1_000 }, false, 0);
    expect(limiter.admit(600, 0).kind).toBe('ok');
    const refused = limiter.admit(600, 0) as LimitRefusal;
    expect(refused).toMatchObject({ kind: 'tokens', limit: 1_000, used: 600, requested: 600 });
    // 200 tokens short at 1,000/min = 16.67 tokens/s.
    expect(refused.waitMs).toBeCloseTo(12_000, 6);
    // The refusal used a request: 100 − 1 admitted − 1 refused.
    expect(refused.state.remainingRequests).toBe(98);
  });

  it('refuses a request larger than the whole token limit as too large', () => {
    const limiter = new ModelLimiter({ rpm: 100, tpm: 1_000 }, false, 0);
    expect(limiter.admit(1_001, 0)).toMatchObject({ kind: 'too_large', limit: 1_000, requested: 1_001 });
    expect(limiter.admit(1_000, 0).kind).toBe('ok');
  });

  it('enforces limit/60 per second when quantized, and not otherwise', () => {
    const quantized = new ModelLimiter({ rpm: 120, tpm: 1_000_000 }, true, 0);
    expect([1, 2, 3].map(() => quantized.admit(1, 0).kind)).toEqual(['ok', 'ok', 'requests']);
    expect(quantized.admit(1, 499).kind).toBe('requests');
    expect(quantized.admit(1, 1_000).kind).toBe('ok');

    const smooth = new ModelLimiter({ rpm: 120, tpm: 1_000_000 }, false, 0);
    const kinds = Array.from({ length: 120 }, () => smooth.admit(1, 0).kind);
    expect(kinds.every((kind) => kind === 'ok')).toBe(true);
  });

  it('admits a charge above the per-second token capacity from a full bucket and makes the next one wait', () => {
    // 6,000 TPM = 100 tokens per second.
    const limiter = new ModelLimiter({ rpm: 1_000, tpm: 6_000 }, true, 0);
    expect(limiter.admit(500, 0).kind).toBe('ok');
    const refused = limiter.admit(10, 0) as LimitRefusal;
    expect(refused.kind).toBe('tokens');
    // The per-second bucket is 400 in debt: 410 tokens at 100/s.
    expect(refused.waitMs).toBeCloseTo(4_100, 6);
    expect(limiter.admit(10, 4_100).kind).toBe('ok');
  });

  it('reports the minute buckets as x-ratelimit-* headers with Go durations', () => {
    const limiter = new ModelLimiter({ rpm: 60, tpm: 60_000 }, true, 0);
    const admission = limiter.admit(1_500, 0);
    expect(rateLimitHeaders(admission.state)).toEqual({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-limit-tokens': '60000',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-remaining-tokens': '58500',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-reset-tokens': '1.5s',
    });
  });
});

// ---------------------------------------------------------------------------
// Over HTTP.

const KEY = 'sk-ratelimit-test-key';
const running: Simulator[] = [];

async function simulator(options: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator({ apiKey: null, ...options });
  running.push(sim);
  return sim;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.close()));
});

interface Reply {
  status: number;
  headers: Headers;
  json: any;
}

async function chat(sim: Simulator, body: Record<string, unknown> = {}, key = KEY): Promise<Reply> {
  const response = await fetch(`${sim.url}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 10, ...body }),
  });
  return { status: response.status, headers: response.headers, json: await response.json() };
}

/** The admission charge of a chat body as the simulator computes it. */
function chargeOf(body: Record<string, unknown>, maxTokens: number): number {
  return charEstimate(measurePrompt('/v1/chat/completions', body).chars) + maxTokens;
}

const RPM_MESSAGE =
  /^Rate limit reached for gpt-4o-mini in organization org-sim on requests per min \(RPM\): Limit 2, Used 2, Requested 1\. Please try again in (\S+)\. Visit https:\/\/platform\.openai\.com\/account\/rate-limits to learn more\.$/;

describe('429 rate_limit_exceeded over HTTP', () => {
  it('answers the request past the RPM limit with the requests body and, by default, x-ratelimit-* headers', async () => {
    const sim = await simulator({ rpm: 2, quantize: false });
    expect((await chat(sim)).status).toBe(200);
    expect((await chat(sim)).status).toBe(200);
    const refused = await chat(sim);
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
    expect(refused.json.error.message).toMatch(RPM_MESSAGE);
    const waitMs = tryAgainInMs(refused.json.error.message) as number;
    expect(waitMs).toBeGreaterThan(29_000);
    expect(waitMs).toBeLessThanOrEqual(30_000);
    expect(refused.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(parseGoDuration(refused.headers.get('x-ratelimit-reset-requests'))).toBeGreaterThan(59_000);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(sim.stats().rateLimited).toBe(1);
    expect(sim.stats().byStatus).toEqual({ '200': 2, '429': 1 });
  });

  it.each([
    ['none', (headers: Headers) => expect(headers.get('retry-after') ?? headers.get('retry-after-ms') ?? headers.get('x-ratelimit-limit-requests')).toBeNull()],
    [
      'retry-after',
      (headers: Headers) => {
        expect(headers.get('retry-after')).toBe('30');
        expect(headers.get('x-ratelimit-limit-requests')).toBeNull();
      },
    ],
    [
      'retry-after-ms',
      (headers: Headers) => {
        const ms = Number(headers.get('retry-after-ms'));
        expect(ms).toBeGreaterThan(29_000);
        expect(ms).toBeLessThanOrEqual(30_000);
        expect(headers.get('retry-after')).toBeNull();
      },
    ],
  ] as const)('with rateLimit429Headers "%s" sends only that on a 429', async (mode, check) => {
    const sim = await simulator({ rpm: 2, quantize: false, rateLimit429Headers: mode });
    await chat(sim);
    const admitted = await chat(sim);
    // 2xx answers always carry the x-ratelimit-* headers, whatever the 429 mode.
    expect(admitted.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const refused = await chat(sim);
    expect(refused.status).toBe(429);
    expect(refused.json.error.message).toMatch(RPM_MESSAGE);
    expect(refused.headers.get('x-request-id')).toMatch(/^req_/);
    check(refused.headers);
  });

  it('answers the request past the TPM limit with the tokens body, its Used and Requested figures', async () => {
    const sim = await simulator({ tpm: 1_000, quantize: false, rateLimit429Headers: 'retry-after-ms' });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 600 };
    const charge = chargeOf(body, 600);
    expect((await chat(sim, body)).status).toBe(200);
    const refused = await chat(sim, body);
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded', param: null });
    const match =
      /^Rate limit reached for gpt-4o-mini in organization org-sim on tokens per min \(TPM\): Limit 1000, Used (\d+), Requested (\d+)\. Please try again in (\S+)\. Visit https:\/\/platform\.openai\.com\/account\/rate-limits to learn more\.$/.exec(
        refused.json.error.message,
      );
    expect(match).not.toBeNull();
    const [, used, requested] = match as RegExpExecArray;
    expect(Number(requested)).toBe(charge);
    expect(Number(used)).toBeLessThanOrEqual(charge);
    expect(Number(used)).toBeGreaterThan(charge - 5);
    // The wait is the token deficit at 1,000/min, as the message and the header both say.
    const expectedMs = ((2 * charge - 1_000) * 60_000) / 1_000;
    expect(tryAgainInMs(refused.json.error.message)).toBeGreaterThan(expectedMs - 500);
    expect(tryAgainInMs(refused.json.error.message)).toBeLessThanOrEqual(expectedMs + 1);
    expect(Number(refused.headers.get('retry-after-ms'))).toBeGreaterThan(expectedMs - 500);
  });

  it('answers a request larger than the whole TPM limit with "Request too large", no wait and no retry-after', async () => {
    const sim = await simulator({ tpm: 1_000, rateLimit429Headers: 'retry-after' });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 2_000 };
    const refused = await chat(sim, body);
    expect(refused.status).toBe(429);
    expect(refused.json).toEqual({
      error: {
        message:
          `Request too large for gpt-4o-mini in organization org-sim on tokens per min (TPM): Limit 1000, Requested ${chargeOf(body, 2_000)}. ` +
          'The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.',
        type: 'tokens',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(sim.stats().rateLimited).toBe(1);
  });

  it('counts refused requests against RPM', async () => {
    const sim = await simulator({ rpm: 3, tpm: 1_000, quantize: false });
    const big = { max_tokens: 600 };
    expect((await chat(sim, big)).headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect((await chat(sim, big)).status).toBe(429);
    const small = await chat(sim, { max_tokens: 5 });
    expect(small.status).toBe(200);
    expect(small.headers.get('x-ratelimit-remaining-requests')).toBe('0');
  });

  it('checks admission on arrival, before latency and before faults', async () => {
    const sim = await simulator({ rpm: 1, quantize: false, latencyMs: 300, latencyJitter: 0, faults: { '500': 1 } });
    const order: number[] = [];
    const first = chat(sim).then((reply) => (order.push(reply.status), reply));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = chat(sim).then((reply) => (order.push(reply.status), reply));
    await Promise.all([first, second]);
    // The 429 does not wait for latency, and the fault hit only the admitted request.
    expect(order).toEqual([429, 500]);
    expect(sim.stats().faults['500']).toBe(1);
  });
});

describe('x-ratelimit-* headers on 2xx', () => {
  it('report the configured limits, what is left after this request and the time until full as Go durations', async () => {
    const sim = await simulator({ rpm: 600, tpm: 100_000 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 100 };
    const charge = chargeOf(body, 100);
    const reply = await chat(sim, body);
    expect(reply.status).toBe(200);
    const headers = reply.headers;
    expect(headers.get('x-ratelimit-limit-requests')).toBe('600');
    expect(headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    expect(headers.get('x-ratelimit-remaining-requests')).toBe('599');
    expect(headers.get('x-ratelimit-remaining-tokens')).toBe(String(100_000 - charge));
    // One request at 600/min comes back in 100 ms; `charge` tokens at 100,000/min in charge × 0.6 ms.
    expect(headers.get('x-ratelimit-reset-requests')).toBe('100ms');
    expect(headers.get('x-ratelimit-reset-tokens')).toMatch(/^\d+ms$/);
    expect(Math.abs((parseGoDuration(headers.get('x-ratelimit-reset-tokens')) as number) - charge * 0.6)).toBeLessThanOrEqual(1);
    expect(headers.get('openai-version')).toBe('2020-10-01');
    expect(headers.get('openai-processing-ms')).toMatch(/^\d+$/);
  });

  it('use per-model overrides and keep separate budgets per key and per model', async () => {
    const sim = await simulator({ rpm: 100, limits: { 'gpt-4o': { rpm: 1 } }, quantize: false });
    expect((await chat(sim, { model: 'gpt-4o' })).headers.get('x-ratelimit-limit-requests')).toBe('1');
    expect((await chat(sim, { model: 'gpt-4o' })).status).toBe(429);
    expect((await chat(sim, { model: 'gpt-4o' }, 'sk-another-key-entirely')).status).toBe(200);
    const other = await chat(sim, { model: 'gpt-4o-mini' });
    expect(other.status).toBe(200);
    expect(other.headers.get('x-ratelimit-limit-requests')).toBe('100');
  });
});

describe('quantized per-second enforcement', () => {
  async function burst(options: SimulatorOptions): Promise<number[]> {
    const sim = await simulator({ rpm: 120, ...options });
    const replies = await Promise.all(Array.from({ length: 4 }, () => chat(sim)));
    return replies.map((reply) => reply.status).sort();
  }

  it('refuses a burst above limit/60 per second when on', async () => {
    expect(await burst({ quantize: true })).toEqual([200, 200, 429, 429]);
  });

  it('lets the same burst through when off', async () => {
    expect(await burst({ quantize: false })).toEqual([200, 200, 200, 200]);
  });
});

describe('quota exhaustion', () => {
  it('answers every request after quotaAfterRequests successes with 429 insufficient_quota', async () => {
    const sim = await simulator({ quotaAfterRequests: 2, rateLimit429Headers: 'retry-after' });
    expect((await chat(sim, { messages: [{ role: 'user', content: 'one' }] })).status).toBe(200);
    expect((await chat(sim, { messages: [{ role: 'user', content: 'two' }] })).status).toBe(200);
    for (const content of ['three', 'one']) {
      const refused = await chat(sim, { messages: [{ role: 'user', content }] });
      expect(refused.status).toBe(429);
      expect(refused.json).toEqual({
        error: {
          message:
            'You exceeded your current quota, please check your plan and billing details. For more information on this error, ' +
            'read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
          type: 'insufficient_quota',
          param: null,
          code: 'insufficient_quota',
        },
      });
      expect(refused.headers.get('retry-after')).toBeNull();
    }
    expect(sim.stats().rateLimited).toBe(0);
  });
});
