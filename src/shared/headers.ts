// Reading what the server says about its limits: the six x-ratelimit-*
// headers, retry-after(-ms), and the "Please try again in 1.2s" text.
//
// In:  response headers (lower-case names), an error message.  Out: numbers in ms.
// Pure functions; the limiter and the retry policy consume them.

/** Headers as a plain object with lower-case names. */
export type HeaderMap = Record<string, string>;

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000001,
};

/**
 * Parses a Go `time.Duration` string as OpenAI sends in `x-ratelimit-reset-*`:
 * `20ms`, `1s`, `9.816s`, `6m0s`, `1m30s`, `1h2m3.5s`. A bare number is seconds.
 * Returns milliseconds, or null when the text is not a duration.
 */
export function parseGoDuration(text: string | undefined | null): number | null {
  if (text === undefined || text === null) return null;
  const value = text.trim();
  if (value === '') return null;
  if (/^\d+(\.\d+)?$/.test(value)) return roundToNanoseconds(Number(value) * 1000);
  const pattern = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = pattern.exec(value); match; match = pattern.exec(value)) {
    const unit = UNIT_MS[match[2] as string] as number;
    total += Number(match[1]) * unit;
    consumed = pattern.lastIndex;
  }
  if (consumed !== value.length || consumed === 0) return null;
  return roundToNanoseconds(total);
}

/** Decimal fractions are inexact in binary (1.001 × 1000 = 1000.9999999999999): round to whole nanoseconds. */
function roundToNanoseconds(ms: number): number {
  return Math.round(ms * 1e6) / 1e6;
}

/** Formats milliseconds the way Go prints a Duration (`20ms`, `1.5s`, `6m0s`, `0s`). */
export function formatGoDuration(ms: number): string {
  // Whole milliseconds first, so that rounding can never print `60s` or `59m60s`.
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = (total % 60_000) / 1000;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

export interface RateLimitHeaders {
  limitRequests: number | null;
  limitTokens: number | null;
  remainingRequests: number | null;
  remainingTokens: number | null;
  /** Time until the request budget is back to full, ms. */
  resetRequestsMs: number | null;
  /** Time until the token budget is back to full, ms. */
  resetTokensMs: number | null;
}

export function parseRateLimitHeaders(headers: HeaderMap): RateLimitHeaders {
  return {
    limitRequests: nonNegativeNumber(headers['x-ratelimit-limit-requests']),
    limitTokens: nonNegativeNumber(headers['x-ratelimit-limit-tokens']),
    remainingRequests: nonNegativeNumber(headers['x-ratelimit-remaining-requests']),
    remainingTokens: nonNegativeNumber(headers['x-ratelimit-remaining-tokens']),
    resetRequestsMs: parseGoDuration(headers['x-ratelimit-reset-requests']),
    resetTokensMs: parseGoDuration(headers['x-ratelimit-reset-tokens']),
  };
}

export function hasRateLimitHeaders(parsed: RateLimitHeaders): boolean {
  return parsed.limitRequests !== null || parsed.limitTokens !== null;
}

function nonNegativeNumber(text: string | undefined): number | null {
  // Number('') is 0: an empty header must read as "not sent", not as an exhausted budget.
  if (text === undefined || text.trim() === '') return null;
  const n = Number(text);
  // Azure may send -1; treat anything negative as "not sent".
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/**
 * The wait the server asked for, in ms: `retry-after-ms`, else `retry-after`
 * (seconds or an HTTP date). null when it named none.
 */
export function retryAfterMs(headers: HeaderMap, nowMs: number): number | null {
  const ms = headers['retry-after-ms'];
  if (ms !== undefined) {
    const n = Number.parseFloat(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const after = headers['retry-after'];
  if (after !== undefined) {
    const seconds = Number(after);
    if (after.trim() !== '' && Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : null;
    const date = Date.parse(after);
    if (Number.isFinite(date)) return Math.max(0, date - nowMs);
  }
  return null;
}

/** The "Please try again in 1.2s" (or "in 644ms", "in 20s", "in 6m0s") hint in a 429 message, in ms. */
export function tryAgainInMs(message: string | undefined): number | null {
  if (!message) return null;
  const match = /try again in ([0-9][0-9.hmsµun]*)/i.exec(message);
  if (!match) return null;
  return parseGoDuration((match[1] as string).replace(/\.$/, ''));
}
