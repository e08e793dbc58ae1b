import { describe, expect, it } from 'vitest';
import {
  formatGoDuration,
  hasRateLimitHeaders,
  parseGoDuration,
  parseRateLimitHeaders,
  retryAfterMs,
  tryAgainInMs,
  type HeaderMap,
} from '../src/shared/headers.js';

describe('parseGoDuration', () => {
  it.each<[string, number]>([
    ['20ms', 20],
    ['8ms', 8],
    ['120ms', 120],
    ['1s', 1000],
    ['9.816s', 9816],
    ['6m0s', 360_000],
    ['1m30s', 90_000],
    ['1h2m3.5s', 3_723_500],
    ['1h', 3_600_000],
    ['0s', 0],
    ['1.5ms', 1.5],
    ['500us', 0.5],
    ['500µs', 0.5],
    ['1000000ns', 1],
    ['20', 20_000],
    ['0.5', 500],
    ['  6s  ', 6000],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each<[string, string | null | undefined]>([
    ['undefined', undefined],
    ['null', null],
    ['an empty string', ''],
    ['blanks', '   '],
    ['a unit without a number', 's'],
    ['a number followed by an unknown unit', '5d'],
    ['a compound with a trailing bare number', '1m30'],
    ['garbage after a duration', '1sabc'],
    ['garbage before a duration', 'x1s'],
    ['a word', 'soon'],
    ['a negative duration', '-1s'],
    ['a blank inside', '1m 30s'],
  ])('returns null for %s', (_name, text) => {
    expect(parseGoDuration(text)).toBeNull();
  });
});

describe('formatGoDuration', () => {
  it.each<[number, string]>([
    [0, '0s'], // Go prints a zero Duration as 0s
    [20, '20ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [9816, '9.816s'],
    [90_000, '1m30s'],
    [360_000, '6m0s'],
    [3_723_500, '1h2m3.5s'],
    [-5, '0s'],
    [0.4, '1ms'], // a wait is never rounded down to nothing
  ])('prints %d ms as %j', (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
  });

  it.each([0, 1, 20, 999, 1000, 1001, 9816, 59_999, 60_000, 90_000, 359_999, 360_000, 3_599_999, 3_723_500, 86_400_000])(
    'round-trips %d ms through parseGoDuration',
    (ms) => {
      expect(parseGoDuration(formatGoDuration(ms))).toBe(ms);
    },
  );

  it.each([59_999.6, 119_999.9, 3_599_999.9999])('never prints 60 seconds inside a minute (%d ms)', (ms) => {
    const text = formatGoDuration(ms);
    expect(text).not.toMatch(/(^|[hm])60(\.0+)?s$/);
    expect(parseGoDuration(text)).toBeCloseTo(ms, -1);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-11-20T12:00:00Z');

  it.each<[string, HeaderMap, number | null]>([
    ['nothing when no header is sent', {}, null],
    ['retry-after-ms as milliseconds', { 'retry-after-ms': '1500' }, 1500],
    ['a fractional retry-after-ms', { 'retry-after-ms': '12.5' }, 12.5],
    ['a zero retry-after-ms (it takes precedence)', { 'retry-after-ms': '0', 'retry-after': '5' }, 0],
    ['retry-after-ms before retry-after', { 'retry-after-ms': '250', 'retry-after': '7' }, 250],
    ['retry-after when retry-after-ms is garbage', { 'retry-after-ms': 'soon', 'retry-after': '7' }, 7000],
    ['retry-after when retry-after-ms is negative', { 'retry-after-ms': '-5', 'retry-after': '2' }, 2000],
    ['retry-after seconds', { 'retry-after': '20' }, 20_000],
    ['fractional retry-after seconds', { 'retry-after': '1.5' }, 1500],
    ['retry-after 0', { 'retry-after': '0' }, 0],
    ['nothing for a negative retry-after', { 'retry-after': '-3' }, null],
    ['an HTTP date 30 s ahead', { 'retry-after': 'Fri, 20 Nov 2026 12:00:30 GMT' }, 30_000],
    ['0 for an HTTP date in the past', { 'retry-after': 'Fri, 20 Nov 2026 11:59:00 GMT' }, 0],
    ['nothing for an unreadable retry-after', { 'retry-after': 'whenever' }, null],
    ['nothing for an empty retry-after', { 'retry-after': '' }, null],
  ])('gives %s', (_name, headers, expected) => {
    expect(retryAfterMs(headers, now)).toBe(expected);
  });
});

describe('tryAgainInMs', () => {
  it.each<[string, string | undefined, number | null]>([
    [
      'the RPM message',
      'Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.',
      20_000,
    ],
    [
      'the TPM message with decimal seconds',
      'Rate limit reached for gpt-4 in organization org-x on tokens per min (TPM): Limit 10000, Used 8554, Requested 3082. Please try again in 9.816s. Visit https://platform.openai.com/account/rate-limits to learn more.',
      9816,
    ],
    ['a milliseconds wait', '… Limit 30000, Used 29937, Requested 385. Please try again in 644ms. Visit …', 644],
    ['a wait at the very end of the message', 'Please try again in 1.2s.', 1200],
    ['a wait without a final full stop', 'please try again in 1.2s', 1200],
    ['a compound duration', 'Please try again in 6m0s. Visit …', 360_000],
    ['an old-format message', 'Rate limit reached for 10KTPM-200RPM in organization org-x on tokens per min. Limit: 10000 / min. Please try again in 6ms. Contact us', 6],
    ['nothing for a message without a wait', 'You exceeded your current quota, please check your plan and billing details.', null],
    ['nothing for "Request too large"', 'Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 31538.', null],
    ['nothing for an empty message', '', null],
    ['nothing for no message', undefined, null],
  ])('reads %s', (_name, message, expected) => {
    expect(tryAgainInMs(message)).toBe(expected);
  });
});

describe('parseRateLimitHeaders', () => {
  it('reads the six x-ratelimit headers of a success', () => {
    const parsed = parseRateLimitHeaders({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-limit-tokens': '150000',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-remaining-tokens': '149984',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-reset-tokens': '6m0s',
    });
    expect(parsed).toEqual({
      limitRequests: 60,
      limitTokens: 150_000,
      remainingRequests: 59,
      remainingTokens: 149_984,
      resetRequestsMs: 1000,
      resetTokensMs: 360_000,
    });
    expect(hasRateLimitHeaders(parsed)).toBe(true);
  });

  it('reports every field as absent when no header is sent', () => {
    const parsed = parseRateLimitHeaders({ 'x-request-id': 'req_1' });
    expect(Object.values(parsed).every((v) => v === null)).toBe(true);
    expect(hasRateLimitHeaders(parsed)).toBe(false);
  });

  it.each<[string, HeaderMap, Partial<ReturnType<typeof parseRateLimitHeaders>>]>([
    ["Azure's -1 as absent", { 'x-ratelimit-limit-requests': '-1', 'x-ratelimit-remaining-tokens': '-1' }, { limitRequests: null, remainingTokens: null }],
    ['a zero remaining as zero', { 'x-ratelimit-remaining-requests': '0' }, { remainingRequests: 0 }],
    ['garbage and empty numbers as absent', { 'x-ratelimit-limit-tokens': 'lots', 'x-ratelimit-remaining-tokens': '' }, { limitTokens: null, remainingTokens: null }],
    ['an unreadable reset as absent', { 'x-ratelimit-reset-tokens': 'later' }, { resetTokensMs: null }],
    ['millisecond resets', { 'x-ratelimit-reset-requests': '12ms', 'x-ratelimit-reset-tokens': '9ms' }, { resetRequestsMs: 12, resetTokensMs: 9 }],
  ])('treats %s', (_name, headers, expected) => {
    expect(parseRateLimitHeaders(headers)).toMatchObject(expected);
  });

  it('does not count a header set with only -1 limits as limit headers', () => {
    expect(hasRateLimitHeaders(parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '-1', 'x-ratelimit-limit-tokens': '-1' }))).toBe(false);
  });
});
