// Anomalies in daily totals (DESIGN.md §3): the robust score
// 0.6745·|x − median| / MAD of a day against the trailing 14 days (at least 7
// needed; skipped when MAD is 0), two-sided, flagged above a threshold.
//
// In:  daily totals, each marked complete or not.  Out: one judgement per day
//      asked about, and the anomalies among them.
// Pure. Only complete UTC days are judged or used as a baseline: a partial
// day (the first and last of a `--days N` range) would look like a drop.

import { DAY_SECONDS, isoDate } from './range.js';

/** 0.6745 = Φ⁻¹(0.75): makes MAD a consistent estimate of σ for normal data (Iglewicz & Hoaglin). */
export const MAD_SCALE = 0.6745;
export const DEFAULT_THRESHOLD = 3.5;
export const BASELINE_DAYS = 14;
export const MIN_BASELINE_DAYS = 7;

export interface DailyTotal {
  /** UTC midnight, Unix seconds. */
  dayStartSec: number;
  value: number;
  /** Whether the data covers the whole UTC day (and the day is over). */
  isComplete: boolean;
}

export type Judgement =
  | { dayStartSec: number; value: number; verdict: 'scored'; baseline: number; mad: number; score: number }
  | { dayStartSec: number; value: number; verdict: 'incomplete' | 'too_few_days' | 'flat_baseline' };

/** One entry of a report's `anomalies` (DESIGN.md §3). */
export interface Anomaly {
  /** The UTC day, YYYY-MM-DD. */
  date: string;
  /** What was totalled: `tokens`, `amount_usd`, … */
  metric: string;
  value: number;
  /** Median of the trailing days the score was taken against. */
  baseline: number;
  score: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The score of `value` against `baseline`, or why there is none. */
export function robustScore(
  value: number,
  baseline: readonly number[],
  minDays = MIN_BASELINE_DAYS,
): { baseline: number; mad: number; score: number } | 'too_few_days' | 'flat_baseline' {
  if (baseline.length < minDays) return 'too_few_days';
  const center = median(baseline);
  const mad = median(baseline.map((x) => Math.abs(x - center)));
  if (mad === 0) return 'flat_baseline';
  return { baseline: center, mad, score: (MAD_SCALE * Math.abs(value - center)) / mad };
}

/**
 * Judges each day in `judgeDays` (UTC midnights) against the complete days
 * among the `BASELINE_DAYS` before it in `totals`.
 */
export function judgeDays(totals: readonly DailyTotal[], judgeDays: readonly number[]): Judgement[] {
  const byDay = new Map(totals.map((t) => [t.dayStartSec, t]));
  return judgeDays.map((day): Judgement => {
    const total = byDay.get(day);
    const value = total?.value ?? 0;
    if (!total?.isComplete) return { dayStartSec: day, value, verdict: 'incomplete' };
    const baseline: number[] = [];
    for (let back = 1; back <= BASELINE_DAYS; back++) {
      const earlier = byDay.get(day - back * DAY_SECONDS);
      if (earlier?.isComplete) baseline.push(earlier.value);
    }
    const scored = robustScore(value, baseline);
    if (typeof scored === 'string') return { dayStartSec: day, value, verdict: scored };
    return { dayStartSec: day, value, verdict: 'scored', ...scored };
  });
}

/** The judged days whose score is strictly above `threshold`, in day order. */
export function anomaliesOf(judgements: readonly Judgement[], metric: string, threshold: number): Anomaly[] {
  const out: Anomaly[] = [];
  for (const j of judgements) {
    if (j.verdict !== 'scored' || !(j.score > threshold)) continue;
    out.push({ date: isoDate(j.dayStartSec), metric, value: j.value, baseline: j.baseline, score: round(j.score, 2) });
  }
  return out;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
