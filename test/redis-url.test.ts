import { describe, expect, it } from 'vitest';
import { defaultBudgetScope } from '../src/stores/budget-scope.js';
import { redisSecretsIn, redisSecretsOf, redisUrlForDisplay, scrubSecrets } from '../src/stores/redis-url.js';

describe('a Redis URL in messages', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:s3cret-pass@cache.internal:6380/2', 'redis://cache.internal:6380/2'],
    ['rediss://user:p%40ss-word@cache.example', 'rediss://cache.example'],
    ['not a url', 'the --redis URL'],
  ])('shows %s as %s', (url, shown) => {
    expect(redisUrlForDisplay(url)).toBe(shown);
  });

  it('scrubs the URL, user:password and the password (raw and decoded) from any text', () => {
    const url = 'rediss://user:p%40ss-word@cache.example:6380';
    const text = `failed ${url}; auth user:p%40ss-word; password p@ss-word or p%40ss-word`;
    const scrubbed = scrubSecrets(text, redisSecretsOf(url));
    expect(scrubbed).not.toContain('ss-word');
    expect(scrubbed).toContain('[redacted]');
  });

  it('leaves ordinary words alone when the password is very short', () => {
    expect(scrubSecrets('the client is offline', redisSecretsOf('redis://:e@h:1'))).toBe('the client is offline');
  });

  it('finds the URLs of --redis URL, --redis=URL and OAI_BATCH_REDIS_URL', () => {
    const secrets = redisSecretsIn(['run', 'x', '--redis', 'redis://:first-pass@a', '--redis=redis://:second-pass@b'], { OAI_BATCH_REDIS_URL: 'redis://:third-pass@c' });
    for (const password of ['first-pass', 'second-pass', 'third-pass']) expect(secrets).toContain(password);
  });
});

describe('the default budget scope', () => {
  const source = { baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-proj-abcdef0123456789', project: 'proj_1' };

  it('is the same for the same base URL, key and project, and 16 hex digits with no key material', () => {
    const scope = defaultBudgetScope(source);
    expect(scope).toMatch(/^[0-9a-f]{16}$/);
    expect(defaultBudgetScope({ ...source, baseUrl: 'https://api.openai.com/v1/' })).toBe(scope);
    expect(scope).not.toContain('abcdef');
  });

  it.each([
    ['another key', { apiKey: 'sk-proj-other' }],
    ['another project', { project: 'proj_2' }],
    ['another base URL', { baseUrl: 'https://proxy.example/v1' }],
  ])('differs for %s', (_name, change) => {
    expect(defaultBudgetScope({ ...source, ...change })).not.toBe(defaultBudgetScope(source));
  });
});
