// The month-end forecast (src/org/forecast.ts) as a table of cases: month to
// date, the rate from trailing complete days, the 90 % range, month edges;
// and `costs --forecast` as a process against the simulator's ground truth.

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { costsCommand, usageCommand } from '../src/cli/org.js';
import type { DailyTotal } from '../src/org/anomalies.js';
import { FORECAST_TRAILING_DAYS, forecastMonth, monthBounds, type ForecastInput, type MonthForecast } from '../src/org/forecast.js';
import { COSTS_SPEC } from '../src/org/kinds.js';
import { dayStart } from '../src/org/range.js';
import { dailyTotals } from '../src/org/report.js';
import { syntheticCosts } from '../src/sim/org.js';
import { optionsOf } from './support/argv.js';
import { runCli } from './support/cli.js';
import { perTestFixture } from './support/fixture.js';

const DAY = 86_400;
const at = (iso: string): number => Date.parse(iso) / 1000;
/** Complete days from `firstIso`, one value each. */
const days = (firstIso: string, values: number[], isComplete = true): DailyTotal[] =>
  values.map((value, i) => ({ dayStartSec: at(firstIso) + i * DAY, value, isComplete }));
const tens = (n: number): number[] => Array.from({ length: n }, () => 10);

type Expected = Partial<Pick<MonthForecast, 'month' | 'monthToDate' | 'daysLeft' | 'trailingDays' | 'rateSource' | 'dailyRate' | 'expected' | 'low' | 'high'>>;

const cases: Array<[name: string, input: ForecastInput, expected: Expected]> = [
  [
    'a flat history: the rest of the month at the same daily cost, no range',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: days('2026-06-01', tens(14)) },
    { month: '2026-06', monthToDate: 140, daysLeft: 16, trailingDays: 7, rateSource: 'trailing', dailyRate: 10, expected: 300, low: 300, high: 300 },
  ],
  [
    "today's partial spend is counted and only the rest of today is projected",
    { nowSec: at('2026-06-15T12:00:00Z'), daily: [...days('2026-06-01', tens(14)), ...days('2026-06-15', [5], false)] },
    { monthToDate: 145, daysLeft: 15.5, expected: 300 },
  ],
  [
    'days that vary give a range of ±1.645·σ·√(R + R²/n) around the expected total',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: [...days('2026-06-01', tens(7)), ...days('2026-06-08', [8, 12, 8, 12, 8, 12, 10])] },
    { monthToDate: 140, dailyRate: 10, expected: 300, low: 300 - 1.645 * 2 * Math.sqrt(16 + 256 / 7), high: 300 + 1.645 * 2 * Math.sqrt(16 + 256 / 7) },
  ],
  [
    "on the 1st the trailing days come from last month and last month's spend is not counted",
    { nowSec: at('2026-07-01T06:00:00Z'), daily: [...days('2026-06-01', tens(30)), ...days('2026-07-01', [2], false)] },
    { month: '2026-07', monthToDate: 2, daysLeft: 30.75, trailingDays: 7, expected: 2 + 307.5 },
  ],
  [
    'only the last N complete days set the rate (a cheaper first half of the month does not)',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: [...days('2026-06-01', [1, 1, 1, 1, 1, 1, 1]), ...days('2026-06-08', tens(7))] },
    { monthToDate: 77, dailyRate: 10, expected: 77 + 160 },
  ],
  [
    'a missing or partial day is left out of the rate, not counted as zero',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: [...days('2026-06-08', [10, 10, 10]), ...days('2026-06-11', [3], false), ...days('2026-06-13', [10, 10])] },
    { monthToDate: 53, trailingDays: 5, dailyRate: 10 },
  ],
  [
    'a trailing window of 2 days, as asked',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: days('2026-06-01', [...tens(12), 20, 20]), trailingDays: 2 },
    { trailingDays: 2, dailyRate: 20, expected: 160 + 16 * 20, low: 480, high: 480 },
  ],
  [
    'the low bound never falls below what is already spent',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: days('2026-06-01', [...tens(12), 0, 40]), trailingDays: 2 },
    { monthToDate: 160, dailyRate: 20, low: 160 },
  ],
  [
    'one complete trailing day: its cost is the rate, and there is no range',
    { nowSec: at('2026-06-15T00:00:00Z'), daily: days('2026-06-14', [12]) },
    { trailingDays: 1, dailyRate: 12, expected: 12 + 16 * 12, low: 204, high: 204 },
  ],
  [
    "no complete day yet (a new organisation): the month's own pace",
    { nowSec: at('2026-06-03T00:00:00Z'), daily: days('2026-06-01', [4, 6], false) },
    { rateSource: 'month_so_far', monthToDate: 10, dailyRate: 5, expected: 10 + 28 * 5 },
  ],
  [
    'nothing spent and no history: zero, not NaN',
    { nowSec: at('2026-06-03T00:00:00Z'), daily: [] },
    { rateSource: 'none', monthToDate: 0, expected: 0, low: 0, high: 0 },
  ],
  [
    'the last second of the month leaves almost nothing to project',
    { nowSec: at('2026-02-28T23:59:59Z'), daily: days('2026-02-01', tens(28)) },
    { month: '2026-02', monthToDate: 280, daysLeft: 1 / DAY },
  ],
];

describe('forecastMonth', () => {
  it.each(cases)('%s', (_name, input, expected) => {
    const forecast = forecastMonth(input);
    for (const [key, value] of Object.entries(expected)) {
      if (typeof value === 'number') expect(forecast[key as keyof MonthForecast], key).toBeCloseTo(value, 9);
      else expect(forecast[key as keyof MonthForecast], key).toBe(value);
    }
    expect(forecast.low).toBeLessThanOrEqual(forecast.expected);
    expect(forecast.high).toBeGreaterThanOrEqual(forecast.expected);
  });
});

describe('monthBounds', () => {
  it.each([
    ['2026-06-15T12:00:00Z', '2026-06-01T00:00:00Z', '2026-07-01T00:00:00Z'],
    ['2026-12-31T23:59:59Z', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z'],
    ['2028-02-29T00:00:00Z', '2028-02-01T00:00:00Z', '2028-03-01T00:00:00Z'],
  ])('%s is in [%s, %s)', (now, start, end) => {
    expect(monthBounds(at(now))).toEqual({ startSec: at(start), endSec: at(end) });
  });
});

describe('costs --forecast', () => {
  const fixture = perTestFixture(null);
  const ADMIN_KEY = 'sk-admin-forecast-test-0123456789';

  it('is a flag of costs only', () => {
    expect(optionsOf(costsCommand, ['costs', '--forecast']).forecast).toBe(true);
    expect(optionsOf(costsCommand, ['costs']).forecast).toBe(false);
    expect(() => optionsOf(usageCommand, ['usage', '--forecast'])).toThrow(/Unknown argument: forecast/);
  });

  it("prints the month's forecast in JSON, table, CSV (on stderr) and HTML, equal to the projection of the Costs API's own days", async () => {
    const sim = await fixture.simulator({ adminKey: ADMIN_KEY });
    const env = { OPENAI_ADMIN_KEY: ADMIN_KEY };
    const json = await runCli(['costs', '--base-url', sim.url, '--days', '2', '--forecast', '--format', 'json'], { env });
    expect(json.code, json.stderr).toBe(0);
    const forecast = JSON.parse(json.stdout).forecast;

    // Ground truth: the simulator's history (seed 1, anchored on the day it started) up to the forecast's as_of.
    const nowSec = forecast.as_of as number;
    const start = Math.min(monthBounds(nowSec).startSec, dayStart(nowSec) - FORECAST_TRAILING_DAYS * DAY);
    const truth = forecastMonth({
      daily: dailyTotals(COSTS_SPEC, syntheticCosts({ startSec: start, endSec: nowSec, groupBy: [], filters: {} }, { seed: 1, anchorDaySec: dayStart(nowSec) }), nowSec),
      nowSec,
    });
    expect(forecast.month).toBe(truth.month);
    expect(forecast.month_to_date_usd).toBeCloseTo(truth.monthToDate, 5);
    expect(forecast.expected_usd).toBeCloseTo(truth.expected, 5);
    expect(forecast.low_usd).toBeCloseTo(truth.low, 5);
    expect(forecast.high_usd).toBeCloseTo(truth.high, 5);
    expect(forecast.trailing_days).toBe(7);
    expect(forecast.low_usd).toBeLessThan(forecast.expected_usd);

    const table = await runCli(['costs', '--base-url', sim.url, '--days', '2', '--forecast'], { env });
    expect(table.stdout).toMatch(new RegExp(`Forecast for ${truth.month}: \\$[\\d,]+\\.\\d\\d \\(90% range`));
    const csv = await runCli(['costs', '--base-url', sim.url, '--days', '2', '--forecast', '--format', 'csv'], { env });
    expect(csv.stdout).not.toContain('Forecast');
    expect(csv.stderr).toContain(`Forecast for ${truth.month}`);
    const html = fixture.dir.file('costs.html');
    const page = await runCli(['costs', '--base-url', sim.url, '--days', '2', '--forecast', '--html', html], { env });
    expect(page.code, page.stderr).toBe(0);
    expect(await readFile(html, 'utf8')).toContain(`Forecast for ${truth.month}`);

    const without = await runCli(['costs', '--base-url', sim.url, '--days', '2', '--format', 'json'], { env });
    expect(JSON.parse(without.stdout).forecast).toBeUndefined();
  }, 60_000);
});
