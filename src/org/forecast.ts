// The month's spend projected to its end (DESIGN.md §8, `costs --forecast`
// and the monitor's oai_org_cost_forecast_usd gauge).
//
// In:  daily cost totals (complete or not), the clock, and how many trailing
//      complete days set the daily rate.
// Out: month to date, the expected month total and a low/high range.
// Pure. The model: what is spent so far this month, plus the time left in
// the month (fractional days: the rest of today counts) at the mean daily
// cost of the trailing complete days. The range is a 90 % prediction
// interval for that remainder, assuming days vary as the trailing ones did:
// the sum of R future days has variance R·σ² from the days themselves plus
// R²·σ²/n from estimating the mean from n days, so
//   remainder = R·mean ± 1.645·σ·√(R + R²/n).
// The low bound never goes below what is already spent.

import type { DailyTotal } from './anomalies.js';
import { DAY_SECONDS, dayStart } from './range.js';

/** Trailing complete days whose mean is the daily rate: one whole week, so weekday rhythm averages out. */
export const FORECAST_TRAILING_DAYS = 7;
/** Two-sided 90 % quantile of the normal distribution. */
export const FORECAST_Z = 1.645;

export interface MonthForecast {
  /** UTC month, `YYYY-MM`. */
  month: string;
  /** Unix seconds: the month's first second and the next month's. */
  monthStartSec: number;
  monthEndSec: number;
  /** When the projection was made (Unix seconds). */
  asOfSec: number;
  /** Spent from the month's start up to asOf. */
  monthToDate: number;
  /** Days (fractional) left in the month after asOf. */
  daysLeft: number;
  /** Complete days the rate was taken from (0 = the month so far was used, see rateSource). */
  trailingDays: number;
  /** `trailing`: mean of trailing complete days; `month_so_far`: none were complete, the month's own pace; `none`: nothing to go on. */
  rateSource: 'trailing' | 'month_so_far' | 'none';
  /** Mean daily cost the remainder is projected at. */
  dailyRate: number;
  /** Standard deviation of the trailing days (0 with fewer than two). */
  dailyStdDev: number;
  expected: number;
  low: number;
  high: number;
}

export interface ForecastInput {
  /** Daily totals in any order; days of the month and the trailing days before today. */
  daily: readonly DailyTotal[];
  nowSec: number;
  /** Default FORECAST_TRAILING_DAYS. */
  trailingDays?: number;
}

/** First second of the UTC month holding `timeSec`, and of the next month. */
export function monthBounds(timeSec: number): { startSec: number; endSec: number } {
  const date = new Date(timeSec * 1000);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  return { startSec: Date.UTC(year, month, 1) / 1000, endSec: Date.UTC(year, month + 1, 1) / 1000 };
}

export function forecastMonth(input: ForecastInput): MonthForecast {
  const { nowSec } = input;
  const wanted = input.trailingDays ?? FORECAST_TRAILING_DAYS;
  const { startSec, endSec } = monthBounds(nowSec);
  const today = dayStart(nowSec);

  let monthToDate = 0;
  for (const day of input.daily) {
    if (day.dayStartSec >= startSec && day.dayStartSec < endSec && day.dayStartSec <= today) monthToDate += day.value;
  }

  // The trailing complete days: the `wanted` whole days before today (they may lie in the previous month).
  const byDay = new Map(input.daily.map((d) => [d.dayStartSec, d]));
  const trailing: number[] = [];
  for (let back = 1; back <= wanted; back++) {
    const day = byDay.get(today - back * DAY_SECONDS);
    if (day?.isComplete) trailing.push(day.value);
  }

  const daysLeft = Math.max(0, (endSec - nowSec) / DAY_SECONDS);
  const elapsedDays = (nowSec - startSec) / DAY_SECONDS;
  let rateSource: MonthForecast['rateSource'];
  let dailyRate: number;
  let dailyStdDev = 0;
  if (trailing.length > 0) {
    rateSource = 'trailing';
    dailyRate = mean(trailing);
    dailyStdDev = trailing.length >= 2 ? sampleStdDev(trailing, dailyRate) : 0;
  } else if (elapsedDays > 0 && monthToDate > 0) {
    // A new organisation (or a gap in the data): its own pace this month, without a range.
    rateSource = 'month_so_far';
    dailyRate = monthToDate / elapsedDays;
  } else {
    rateSource = 'none';
    dailyRate = 0;
  }

  const expected = monthToDate + daysLeft * dailyRate;
  const n = trailing.length;
  const spread = n >= 2 ? FORECAST_Z * dailyStdDev * Math.sqrt(daysLeft + (daysLeft * daysLeft) / n) : 0;
  return {
    month: new Date(startSec * 1000).toISOString().slice(0, 7),
    monthStartSec: startSec,
    monthEndSec: endSec,
    asOfSec: nowSec,
    monthToDate,
    daysLeft,
    trailingDays: n,
    rateSource,
    dailyRate,
    dailyStdDev,
    expected,
    low: Math.max(monthToDate, expected - spread),
    high: expected + spread,
  };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function sampleStdDev(values: readonly number[], center: number): number {
  const squares = values.reduce((sum, x) => sum + (x - center) ** 2, 0);
  return Math.sqrt(squares / (values.length - 1));
}

/** The `forecast` object of `costs --forecast --format json` (snake_case like the rest of the report). */
export interface ForecastJson {
  month: string;
  as_of: number;
  month_to_date_usd: number;
  expected_usd: number;
  low_usd: number;
  high_usd: number;
  /** Share of outcomes the low–high range is meant to cover. */
  range_coverage: number;
  daily_rate_usd: number;
  days_left: number;
  trailing_days: number;
  rate_source: MonthForecast['rateSource'];
}

export function forecastJson(f: MonthForecast): ForecastJson {
  const usd = (x: number): number => Math.round(x * 1e6) / 1e6;
  return {
    month: f.month,
    as_of: f.asOfSec,
    month_to_date_usd: usd(f.monthToDate),
    expected_usd: usd(f.expected),
    low_usd: usd(f.low),
    high_usd: usd(f.high),
    range_coverage: 0.9,
    daily_rate_usd: usd(f.dailyRate),
    days_left: Math.round(f.daysLeft * 1000) / 1000,
    trailing_days: f.trailingDays,
    rate_source: f.rateSource,
  };
}

/** One sentence per line saying what the forecast is and how it was made (table, CSV's stderr, HTML). */
export function forecastSentences(f: MonthForecast): string[] {
  const usd = (x: number): string => `$${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  const range = f.high > f.low ? ` (90% range ${usd(f.low)} – ${usd(f.high)})` : '';
  const basis =
    f.rateSource === 'trailing'
      ? `the mean of the last ${f.trailingDays} complete day${f.trailingDays === 1 ? '' : 's'}, ${usd(f.dailyRate)} a day`
      : f.rateSource === 'month_so_far'
        ? `the month's own pace, ${usd(f.dailyRate)} a day (no complete day before today to go on)`
        : 'nothing (no spend yet)';
  return [
    `Forecast for ${f.month}: ${usd(f.expected)}${range}.`,
    `  ${usd(f.monthToDate)} spent so far, plus ${f.daysLeft.toFixed(1)} days left at ${basis}.`,
  ];
}
