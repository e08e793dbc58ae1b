import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BudgetStoreUnavailableError, ConnectionError } from '../src/shared/errors.js';
import { budgetKeyPrefix, connectRedisBudgetStore, type RedisBudgetStore } from '../src/stores/redis-budget.js';
import { SLOWDOWN_FACTOR } from '../src/stores/budget-store.js';
import { describeBudgetStoreContract } from './support/budget-store-contract.js';
import { freePort, startRedisServer, type RedisServer } from './support/redis-server.js';

let redis: RedisServer;
const stores: RedisBudgetStore[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await redis?.close();
});

describeBudgetStoreContract('the Redis store', async (now) => {
  await redis.flush();
  return connectRedisBudgetStore({ url: redis.url, scope: 'contract', now });
});

const RATES = { rpm: 600, tpm: null, burstMs: 500 };

describe('the Redis store', () => {
  it('shares one budget between stores of the same scope, and none between scopes', async () => {
    await redis.flush();
    let clock = 0;
    const now = (): number => clock;
    const a = await connectRedisBudgetStore({ url: redis.url, scope: 'fleet', now });
    const b = await connectRedisBudgetStore({ url: redis.url, scope: 'fleet', now });
    const other = await connectRedisBudgetStore({ url: redis.url, scope: 'other', now });
    stores.push(a, b, other);
    const granted: boolean[] = [];
    for (let i = 0; i < 6; i++) granted.push((await (i % 2 === 0 ? a : b).take('m', 1, RATES)).granted);
    // A burst of 5 (500 ms of 600/min) between the two workers, not 5 each.
    expect(granted).toEqual([true, true, true, true, true, false]);
    expect((await other.take('m', 1, RATES)).granted).toBe(true);
    await a.pause('m', 5000);
    expect((await b.read('m')).pausedForMs).toBe(5000);
    expect((await other.read('m')).pausedForMs).toBe(0);
  });

  it('slows the fleet once for a burst of 429s that several workers see', async () => {
    await redis.flush();
    let clock = 0;
    const now = (): number => clock;
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => connectRedisBudgetStore({ url: redis.url, scope: 'episode', now })));
    stores.push(a!, b!, c!);
    expect((await a!.pause('m', 2000)).rateFactor).toBeCloseTo(SLOWDOWN_FACTOR, 9);
    clock = 40;
    expect((await b!.pause('m', 2000)).rateFactor).toBeCloseTo(SLOWDOWN_FACTOR, 9);
    clock = 300;
    expect(await c!.pause('m', 2500)).toMatchObject({ pausedForMs: 2500 });
    expect((await a!.read('m')).rateFactor).toBeCloseTo(SLOWDOWN_FACTOR, 9);
  });

  it('names keys by scope and model and lets an idle budget expire', async () => {
    await redis.flush();
    const store = await connectRedisBudgetStore({ url: redis.url, scope: 'abc123', idleTtlMs: 60_000 });
    stores.push(store);
    await store.take('gpt-4o-mini', 10, RATES);
    const key = `${budgetKeyPrefix('abc123')}gpt-4o-mini`;
    expect(await redis.keys()).toEqual([key]);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('keeps a budget at least as long as its pause', async () => {
    await redis.flush();
    const store = await connectRedisBudgetStore({ url: redis.url, scope: 'long', idleTtlMs: 60_000 });
    stores.push(store);
    await store.pause('m', 300_000);
    expect(await redis.pttl(`${budgetKeyPrefix('long')}m`)).toBeGreaterThan(300_000);
  });

  it('reads a model nothing was written for without creating it', async () => {
    await redis.flush();
    const store = await connectRedisBudgetStore({ url: redis.url, scope: 'r' });
    stores.push(store);
    expect(await store.read('m')).toEqual({ limitRpm: null, limitTpm: null, pausedForMs: 0, rateFactor: 1 });
    expect(await redis.keys()).toEqual([]);
  });

  it('runs on Redis time: a take pauses for what Redis says is left', async () => {
    await redis.flush();
    const store = await connectRedisBudgetStore({ url: redis.url, scope: 'clock' });
    stores.push(store);
    await store.pause('m', 60_000);
    const result = await store.take('m', 1, RATES);
    expect(result.granted).toBe(false);
    if (!result.granted) {
      expect(result.waitMs).toBeGreaterThan(50_000);
      expect(result.waitMs).toBeLessThanOrEqual(60_000);
    }
  });

  it('fails at connect with one line naming the host, never the password', async () => {
    const port = await freePort();
    const error = await connectRedisBudgetStore({ url: `redis://user:hunter2secret@127.0.0.1:${port}/0`, scope: 's', connectTimeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    const message = (error as Error).message;
    expect(message).toContain(`redis://127.0.0.1:${port}/0`);
    expect(message).not.toContain('hunter2secret');
    expect(message).not.toContain('\n');
  });

  it('refuses a wrong password at connect without printing it', async () => {
    const secured = await startRedisServer({ password: 'right-password-123' });
    try {
      const error = await connectRedisBudgetStore({ url: `redis://:wrong-password-456@127.0.0.1:${secured.port}`, scope: 's' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).not.toContain('wrong-password-456');
      const store = await connectRedisBudgetStore({ url: secured.url, scope: 's' });
      expect((await store.take('m', 1, RATES)).granted).toBe(true);
      await store.close();
    } finally {
      await secured.close();
    }
  });
});

describe('the Redis store when Redis goes away', () => {
  it('waits for a Redis that comes back, then re-seeds the limits it knew', async () => {
    const server = await startRedisServer();
    const store = await connectRedisBudgetStore({ url: server.url, scope: 'fault', timeoutMs: 30_000 });
    try {
      await store.publishLimits('m', { rpm: 600, tpm: 100_000 });
      await server.stop();
      const waiting = store.take('m', 1, RATES);
      let settled = false;
      void waiting.then(() => (settled = true), () => (settled = true));
      await new Promise((r) => setTimeout(r, 500));
      expect(settled).toBe(false);
      await server.start();
      const result = await waiting;
      expect(result.granted).toBe(true);
      // The restarted Redis was empty; this worker wrote back what it had learned.
      expect(result.state).toMatchObject({ limitRpm: 600, limitTpm: 100_000 });
    } finally {
      await store.close();
      await server.close();
    }
  });

  it('fails with BudgetStoreUnavailableError once Redis has been away longer than the timeout; a read fails at once', async () => {
    const server = await startRedisServer({ password: 'pw-never-shown' });
    const store = await connectRedisBudgetStore({ url: server.url, scope: 'gone', timeoutMs: 1500 });
    try {
      await server.stop();
      const readError = await store.read('m').catch((e: unknown) => e);
      expect(readError).toBeInstanceOf(BudgetStoreUnavailableError);
      const error = await store.take('m', 1, RATES).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BudgetStoreUnavailableError);
      expect((error as BudgetStoreUnavailableError).exitCode).toBe(3);
      expect((error as Error).message).toContain(`redis://127.0.0.1:${server.port}`);
      expect((error as Error).message).not.toContain('pw-never-shown');
    } finally {
      await store.close();
      await server.close();
    }
  });
});
