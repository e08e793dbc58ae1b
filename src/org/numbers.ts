// How the organisation reports write numbers and times for people (tables,
// chart axes, page labels); JSON and CSV keep the raw values.
//
// In: numbers and Unix seconds.  Out: short strings.  Pure.

import type { BucketWidth } from './kinds.js';
import { DAY_SECONDS, isoSeconds } from './range.js';

/** How a metric's values read: USD, bytes, or plain counts. */
export type ValueUnit = 'count' | 'usd' | 'bytes';

const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 1234567 → "1,234,567"; USD → "$1,234.5678" (4 decimals: a day of a small model costs cents). */
export function formatValue(value: number, unit: ValueUnit): string {
  if (unit === 'usd') return `$${value.toLocaleString('en-US', { minimumFractionDigits: 4, maximumFractionDigits: 4 })}`;
  if (unit === 'bytes') return formatBytes(value);
  return Number.isInteger(value) ? INTEGER.format(value) : value.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** 1234567 → "1.23M", 0.0123 USD → "$0.0123": for axes and sparkline totals. */
export function formatCompact(value: number, unit: ValueUnit = 'count'): string {
  if (unit === 'bytes') return formatBytes(value);
  const prefix = unit === 'usd' ? '$' : '';
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${prefix}${trim(value / 1e9)}B`;
  if (abs >= 1e6) return `${prefix}${trim(value / 1e6)}M`;
  if (abs >= 1e4) return `${prefix}${trim(value / 1e3)}k`;
  if (unit === 'usd') return `${prefix}${value === 0 ? '0' : abs >= 1 ? value.toFixed(2) : value.toFixed(4)}`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}

function formatBytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${trim(v)} ${units[i]}`;
}

/**
 * A bucket as a short UTC label: `2026-11-01` for a whole day,
 * `2026-11-01 13:00` for an aligned hour or minute, and `start → end` for a
 * bucket cut short by the range.
 */
export function bucketLabel(startSec: number, endSec: number, width: BucketWidth): string {
  const start = isoSeconds(startSec);
  const day = start.slice(0, 10);
  const time = start.slice(11, 16);
  const full = width === '1d' ? DAY_SECONDS : width === '1h' ? 3_600 : 60;
  if (endSec - startSec === full) return width === '1d' ? day : `${day} ${time}`;
  const end = isoSeconds(endSec);
  const endText = end.slice(0, 10) === day ? end.slice(11, 16) : end.slice(11, 16) === '00:00' ? end.slice(0, 10) : `${end.slice(0, 10)} ${end.slice(11, 16)}`;
  return `${day} ${time} → ${endText}`;
}

/** A range as `2026-10-29 17:19 → 2026-11-28 17:19 UTC`. */
export function rangeLabel(startSec: number, endSec: number): string {
  const short = (t: number): string => {
    const iso = isoSeconds(t);
    return iso.slice(11, 19) === '00:00:00' ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
  };
  return `${short(startSec)} → ${short(endSec)} UTC`;
}
