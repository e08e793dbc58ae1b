// Time for the organisation reports: the dates users type, the report range,
// and the buckets the API returns for a range.
//
// In:  `--start`/`--end` text (YYYY-MM-DD = UTC midnight, or Unix seconds),
//      `--days N`, a bucket width, and the current time.
// Out: a range in Unix seconds [startSec, endSec) and its bucket boundaries.
// Owns the bucket rule (OPENAI-API.md §5, a real capture): the first bucket
// starts exactly at start_time, later ones at UTC minute/hour/day boundaries;
// the last one is cut at end_time. Pure: the clock is passed in.

import { ConfigError } from '../shared/errors.js';
import { BUCKET_SECONDS, type BucketWidth } from './kinds.js';

export const DAY_SECONDS = 86_400;

/** A report's time range in Unix seconds; `endSec` is exclusive, as in the API. */
export interface TimeRange {
  startSec: number;
  endSec: number;
}

export interface Bucket {
  startSec: number;
  endSec: number;
}

/** `YYYY-MM-DD` (UTC midnight) or Unix seconds → Unix seconds; ConfigError naming the flag otherwise. */
export function parseDateFlag(name: string, value: unknown): number {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  if (/^\d{1,12}$/.test(text)) return Number(text);
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (match) {
    const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
    const ms = Date.UTC(year, month - 1, day);
    const back = new Date(ms);
    // Date.UTC rolls 2026-02-30 over into March; a date that does not round-trip does not exist.
    if (back.getUTCFullYear() === year && back.getUTCMonth() === month - 1 && back.getUTCDate() === day) return ms / 1000;
  }
  throw new ConfigError(`Expected \`${name}\` to be a date YYYY-MM-DD (UTC) or Unix seconds, got \`${String(value)}\``);
}

export interface RangeFlags {
  start?: unknown;
  end?: unknown;
  days?: unknown;
}

/**
 * The range the flags name: `--start` [`--end`] (end defaults to now),
 * `--end` alone (the `defaultDays` before it), `--days N` ending now, or
 * `defaultDays` ending now when none is given.
 */
export function resolveRange(flags: RangeFlags, nowSec: number, defaultDays: number): TimeRange {
  const hasDays = flags.days !== undefined;
  if (hasDays && flags.start !== undefined) {
    throw new ConfigError('--days and --start cannot be used together: --days N means the N days that end now');
  }
  if (hasDays && flags.end !== undefined) {
    throw new ConfigError('--days and --end cannot be used together: --days N means the N days that end now');
  }
  const endSec = flags.end === undefined ? Math.floor(nowSec) : parseDateFlag('end', flags.end);
  let startSec: number;
  if (flags.start !== undefined) {
    startSec = parseDateFlag('start', flags.start);
  } else {
    const days = hasDays ? flags.days : defaultDays;
    if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0) {
      throw new ConfigError(`Expected \`days\` to be a number > 0, got \`${String(days)}\``);
    }
    startSec = Math.floor(endSec - days * DAY_SECONDS);
  }
  if (endSec <= startSec) {
    throw new ConfigError(`Expected \`end\` to be after \`start\` (end is exclusive), got ${isoSeconds(startSec)} → ${isoSeconds(endSec)}`);
  }
  return { startSec, endSec };
}

/** The start of the UTC bucket of `width` that holds `timeSec`. */
export function alignDown(timeSec: number, width: BucketWidth): number {
  const size = BUCKET_SECONDS[width];
  return Math.floor(timeSec / size) * size;
}

/** The buckets the API returns for `range`: first at start, later ones aligned to UTC, the last cut at end. */
export function bucketsOf(range: TimeRange, width: BucketWidth): Bucket[] {
  const buckets: Bucket[] = [];
  for (let start = range.startSec; start < range.endSec; ) {
    const end = Math.min(alignDown(start, width) + BUCKET_SECONDS[width], range.endSec);
    buckets.push({ startSec: start, endSec: end });
    start = end;
  }
  return buckets;
}

/** UTC midnight of the day holding `timeSec`. */
export function dayStart(timeSec: number): number {
  return Math.floor(timeSec / DAY_SECONDS) * DAY_SECONDS;
}

/** `YYYY-MM-DD` of the UTC day holding `timeSec`. */
export function isoDate(timeSec: number): string {
  return new Date(timeSec * 1000).toISOString().slice(0, 10);
}

/** `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds. */
export function isoSeconds(timeSec: number): string {
  return new Date(timeSec * 1000).toISOString().replace('.000Z', 'Z');
}
