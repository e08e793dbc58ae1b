// The send stage: one request's journey (slot, then grant, then transport,
// verdict, backoff), and the limiter seam a shared store fills.

import { describe, expect, it } from 'vitest';
import { RateLimiter, type Grant, type Limiter } from '../src/pipeline/limit.js';
import type { RunOptions } from '../src/pipeline/options.js';
import { runBatch } from '../src/pipeline/run.js';
import { sendWithRetry, type SendDeps, type SendResult } from '../src/pipeline/send.js';
import { Slots } from '../src/pipeline/send/slots.js';
import type { HttpRequest, HttpResponse, Transport } from '../src/pipeline/send/transport.js';
import type { RunEvent } from '../src/shared/events.js';
import type { Simulator } from '../src/sim/server.js';
import type { BucketRates, BudgetStore, SharedModelState, TakeResult } from '../src/stores/budget-store.js';
import { MemoryBudgetStore } from '../src/stores/memory-budget.js';
import { chatLine, writeJsonl } from './support/files.js';
import { perTestFixture } from './support/fixture.js';
import { runOptionsFor } from './support/run.js';

const ok = (): HttpResponse => ({ status: 200, headers: {}, text: '{"ok":true}', json: { ok: true }, requestId: 'req_1' });

/** A transport whose answers the test releases one at a time. */
function gatedTransport(): Transport & { sent: number; answerNext(response?: HttpResponse): void } {
  const pending: Array<(r: HttpResponse) => void> = [];
  const t = {
    sent: 0,
    request(_req: HttpRequest): Promise<HttpResponse> {
      t.sent += 1;
      return new Promise<HttpResponse>((resolve) => pending.push(resolve));
    },
    answerNext(response = ok()): void {
      pending.shift()?.(response);
    },
    close: async () => {},
    destroy: async () => {},
  };
  return t;
}

/** A limiter with no budget that records every acquisition. */
function recordingLimiter(): Limiter & { acquired: number; released: number } {
  const l = {
    acquired: 0,
    released: 0,
    acquire: async (): Promise<Grant> => {
      l.acquired += 1;
      return {} as Grant;
    },
    observe: async () => {},
    penalise: async (_g: Grant, waitMs: number | null) => waitMs ?? 0,
    release: () => {
      l.released += 1;
    },
    snapshot: async () => ({}),
    close: async () => {},
  };
  return l;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function journey(): Parameters<typeof sendWithRetry>[0] {
  return {
    request: { method: 'POST', path: '/chat/completions', bodyText: '{}', timeoutMs: 1000 },
    model: 'm',
    tokens: 10,
    maxAttempts: 3,
    maxRateLimitWaits: Infinity,
    acceptsRawBody: false,
  };
}

describe('the send stage', () => {
  it('takes the rate grant only once it holds a slot, and keeps the slot until a success is recorded', async () => {
    const transport = gatedTransport();
    const limiter = recordingLimiter();
    const slots = new Slots(1);
    const deps: SendDeps = {
      transport,
      limiter,
      slots,
      stop: new AbortController().signal,
      random: () => 0,
      now: Date.now,
      sleep: async () => {},
    };
    const first = sendWithRetry(journey(), deps);
    const second = sendWithRetry(journey(), deps);
    await tick();
    // The second request waits for the slot, and holds no grant meanwhile.
    expect(limiter.acquired).toBe(1);
    expect(slots.waiting).toBe(1);
    transport.answerNext();
    const answered = (await first) as Extract<SendResult, { kind: 'answered' }>;
    expect(answered.kind).toBe('answered');
    await tick();
    // Answered but not yet recorded: the slot is still held.
    expect(limiter.acquired).toBe(1);
    answered.done();
    await tick();
    expect(limiter.acquired).toBe(2);
    transport.answerNext();
    expect((await second).kind).toBe('answered');
    expect(limiter.released).toBe(2);
  });

  it('sends nothing once the run stops: a request granted in the same turn goes back unsent', async () => {
    const transport = gatedTransport();
    const stop = new AbortController();
    const limiter = recordingLimiter();
    limiter.acquire = async () => {
      limiter.acquired += 1;
      stop.abort(new Error('a 401 elsewhere'));
      return {} as Grant;
    };
    const result = await sendWithRetry(journey(), {
      transport,
      limiter,
      slots: new Slots(4),
      stop: stop.signal,
      random: () => 0,
      now: Date.now,
      sleep: async () => {},
    });
    expect(result.kind).toBe('stopped');
    expect(transport.sent).toBe(0);
    expect(limiter.released).toBe(1);
  });
});

const { dir, simulator } = perTestFixture('sk-test-key-123456');

function runOptions(input: string, s: Simulator, extra: Partial<RunOptions> = {}): RunOptions {
  return runOptionsFor(input, s, 'sk-test-key-123456', { ...extra });
}

/** A BudgetStore that counts the calls it gets and delegates to the in-memory one. */
class CountingStore implements BudgetStore {
  readonly inner = new MemoryBudgetStore();
  takes = 0;
  published = 0;
  async take(model: string, tokens: number, rates: BucketRates): Promise<TakeResult> {
    const result = await this.inner.take(model, tokens, rates);
    if (result.granted) this.takes += 1;
    return result;
  }
  publishLimits(model: string, limits: { rpm: number | null; tpm: number | null }): Promise<SharedModelState> {
    this.published += 1;
    return this.inner.publishLimits(model, limits);
  }
  pause(model: string, pauseMs: number): Promise<SharedModelState> {
    return this.inner.pause(model, pauseMs);
  }
  read(model: string): Promise<SharedModelState> {
    return this.inner.read(model);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('the limiter seam over HTTP', () => {
  it('runs with a limiter over an injected BudgetStore: every attempt is one grant taken from it', async () => {
    const s = await simulator({ faults: { 500: 0.3 } });
    const input = dir.file('store.jsonl');
    await writeJsonl(input, Array.from({ length: 40 }, (_, i) => chatLine(i)));
    const store = new CountingStore();
    const limiter = new RateLimiter({ store });
    const { summary, exitCode } = await runBatch({ ...runOptions(input, s, { random: () => 0.01 }), limiter });
    await limiter.close();
    expect(exitCode).toBe(0);
    expect(summary.attempts.total).toBeGreaterThan(40);
    expect(store.takes).toBe(summary.attempts.total);
    // Limits learned from the simulator's headers are published to the store (both models).
    expect(store.published).toBeGreaterThanOrEqual(2);
    expect(summary.limits['gpt-4o-mini']?.source).toBe('headers');
  });

  it('sends nothing new once the first insufficient_quota answer arrives (those in flight may finish)', async () => {
    const s = await simulator({ latencyMs: 100, quotaAfterRequests: 50 });
    const input = dir.file('quota.jsonl');
    await writeJsonl(input, Array.from({ length: 600 }, (_, i) => chatLine(i)));
    const events: RunEvent[] = [];
    const { summary, exitCode } = await runBatch({ ...runOptions(input, s, { concurrency: 64, rpm: 60_000 }), onEvent: (e) => events.push(e) });
    expect(exitCode).toBe(1);
    expect(summary.stopped_reason).toBe('quota_exhausted');
    const firstQuota = events.findIndex((e) => e.type === 'attempt' && e.code === '429');
    expect(firstQuota).toBeGreaterThan(0);
    expect(events.slice(firstQuota).filter((e) => e.type === 'request_started')).toEqual([]);
    // Everything the simulator received was sent before that answer arrived.
    expect(events.filter((e) => e.type === 'request_started')).toHaveLength(s.stats().requests);
  });
});

describe('the cautious start over HTTP', () => {
  it('sends a few requests per new model while its first answer is outstanding, not one alone', async () => {
    const s = await simulator({ latencyMs: 1000 });
    const input = dir.file('slow.jsonl');
    await writeJsonl(input, Array.from({ length: 12 }, () => chatLine(0)).map((line, i) => ({ ...line, messages: [{ role: 'user', content: `q${i}` }] })));
    const events: RunEvent[] = [];
    const { exitCode } = await runBatch({ ...runOptions(input, s), onEvent: (e) => events.push(e) });
    expect(exitCode).toBe(0);
    const firstAnswer = events.findIndex((e) => e.type === 'attempt');
    expect(events.slice(0, firstAnswer).filter((e) => e.type === 'request_started')).toHaveLength(4);
  });
});
