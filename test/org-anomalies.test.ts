// Anomalies in daily totals (DESIGN.md §3): the robust score against the
// trailing 14 days, as tables of cases.

import { describe, expect, it } from 'vitest';
import { anomaliesOf, judgeDays, median, robustScore, type DailyTotal } from '../src/org/anomalies.js';

const DAY = 86_400;
/** 2026-11-02, a Monday, UTC midnight. */
const D0 = Date.UTC(2026, 10, 2) / 1000;

/** Complete days from D0, one per value. */
function days(values: number[], from = D0): DailyTotal[] {
  return values.map((value, i) => ({ dayStartSec: from + i * DAY, value, isComplete: true }));
}

describe('median', () => {
  it.each([
    { values: [3], expected: 3 },
    { values: [5, 1, 3], expected: 3 },
    { values: [4, 1, 3, 2], expected: 2.5 },
    { values: [10, 10, 10, 1000], expected: 10 },
  ])('of $values is $expected', ({ values, expected }) => {
    expect(median(values)).toBe(expected);
  });

  it('of nothing is NaN', () => {
    expect(median([])).toBeNaN();
  });
});

describe('robustScore', () => {
  const baseline = [100, 102, 98, 101, 99, 103, 97];
  // median 100; |deviations| 0,2,2,1,1,3,3 → MAD 2.
  it.each([
    { value: 100, score: 0 },
    { value: 110, score: (0.6745 * 10) / 2 },
    { value: 90, score: (0.6745 * 10) / 2 },
    { value: 400, score: (0.6745 * 300) / 2 },
  ])('scores $value against a baseline with median 100 and MAD 2 as $score (two-sided)', ({ value, score }) => {
    const result = robustScore(value, baseline);
    expect(result).toMatchObject({ baseline: 100, mad: 2 });
    expect((result as { score: number }).score).toBeCloseTo(score, 10);
  });

  it('needs at least 7 baseline days', () => {
    expect(robustScore(500, baseline.slice(0, 6))).toBe('too_few_days');
    expect(robustScore(500, baseline)).not.toBe('too_few_days');
  });

  it('skips a flat baseline (MAD 0) instead of dividing by zero', () => {
    expect(robustScore(500, [7, 7, 7, 7, 7, 7, 7, 9])).toBe('flat_baseline');
  });
});

describe('judgeDays', () => {
  const ordinary = [100, 104, 96, 102, 98, 101, 99, 103, 97, 100, 105, 95, 102, 98];

  it('judges a day against the 14 days before it, not itself and not later days', () => {
    const totals = days([...ordinary, 300, 100]);
    const [spike, after] = judgeDays(totals, [D0 + 14 * DAY, D0 + 15 * DAY]);
    expect(spike).toMatchObject({ verdict: 'scored', value: 300, baseline: 100 });
    // The day after has the spike in its window; the median and MAD barely move.
    expect(after).toMatchObject({ verdict: 'scored', value: 100 });
    expect((after as { score: number }).score).toBeLessThan(1);
  });

  it('uses only the trailing 14 days even when more history exists', () => {
    // 10 days at 1,000 long ago, then 14 ordinary days: the old level is outside the window.
    const totals = days([...Array(10).fill(1_000), ...ordinary, 100]);
    const [judged] = judgeDays(totals, [D0 + 24 * DAY]);
    expect(judged).toMatchObject({ verdict: 'scored', baseline: 100 });
  });

  it('does not judge partial days and leaves them out of baselines', () => {
    const totals = days([...ordinary, 5]);
    totals[14] = { ...(totals[14] as DailyTotal), isComplete: false };
    // Half the baseline is partial: 7 complete days remain, enough.
    for (let i = 0; i < 7; i++) totals[i] = { ...(totals[i] as DailyTotal), value: 1, isComplete: false };
    const [partial] = judgeDays(totals, [D0 + 14 * DAY]);
    expect(partial).toMatchObject({ verdict: 'incomplete', value: 5 });
    totals[14] = { ...(totals[14] as DailyTotal), value: 100, isComplete: true };
    expect(judgeDays(totals, [D0 + 14 * DAY])[0]).toMatchObject({ verdict: 'scored', baseline: median(ordinary.slice(7)) });
  });

  it('says why a day was not scored: missing data, too few earlier days, flat baseline', () => {
    const totals = days([5, 5, 5, 5, 5, 5, 5, 5, 9]);
    const judged = judgeDays(totals, [D0 - DAY, D0 + 3 * DAY, D0 + 8 * DAY]);
    expect(judged.map((j) => j.verdict)).toEqual(['incomplete', 'too_few_days', 'flat_baseline']);
  });
});

describe('anomaliesOf', () => {
  const totals = days([100, 104, 96, 102, 98, 101, 99, 103, 97, 100, 105, 95, 102, 98, 300, 100, 20]);
  const judged = judgeDays(totals, totals.map((t) => t.dayStartSec));

  it('flags days above the threshold in both directions, with date, metric, value, baseline and score', () => {
    const anomalies = anomaliesOf(judged, 'tokens', 3.5);
    expect(anomalies.map((a) => [a.date, a.value])).toEqual([
      ['2026-11-16', 300],
      ['2026-11-18', 20],
    ]);
    expect(Object.keys(anomalies[0] as object)).toEqual(['date', 'metric', 'value', 'baseline', 'score']);
    expect(anomalies[0]).toMatchObject({ metric: 'tokens', baseline: 100 });
  });

  it('flags only scores strictly above the threshold', () => {
    const scored = judged.filter((j) => j.verdict === 'scored') as Array<{ score: number; value: number }>;
    const drop = scored.find((j) => j.value === 20) as { score: number };
    // The drop scores lower than the spike: at exactly its score, only the spike is above.
    expect(anomaliesOf(judged, 'tokens', drop.score).map((a) => a.value)).toEqual([300]);
    expect(anomaliesOf(judged, 'tokens', Number.POSITIVE_INFINITY)).toEqual([]);
  });
});
