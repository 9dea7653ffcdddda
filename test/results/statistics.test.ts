/**
 * The campaign statistics against values computed independently: published examples and values
 * from SciPy 1.17 (stats.norm, stats.beta.ppf, stats.binomtest), or by hand where noted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clopperPearson, incompleteBeta, mcNemarExact, normalQuantile, percentile, sampleSize, wilson } from '../../src/results/statistics.js';

/** |actual - expected| <= tolerance, with both numbers in the failure message. */
function expectNear(actual: number, expected: number, tolerance = 5e-5): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

describe('normalQuantile', () => {
  it.each([
    [0.975, 1.959963984540054],
    [0.995, 2.5758293035489],
    [0.95, 1.6448536269514722],
    [0.5, 0],
    [0.01, -2.3263478740408408],
  ])('Φ⁻¹(%s) = %s', (probability, expected) => {
    expectNear(normalQuantile(probability), expected, 1e-8);
  });

  it('rejects probabilities outside (0, 1)', () => {
    expect(() => normalQuantile(0)).toThrow(RangeError);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });
});

describe('Wilson score interval', () => {
  it('81 of 263 at 95% is [0.2553, 0.3662]', () => {
    const interval = wilson(81, 263);
    expect(interval.method).toBe('wilson');
    expect(interval.value).toBe(81 / 263);
    expectNear(interval.low, 0.2552885);
    expectNear(interval.high, 0.3662096);
  });

  it('81 of 263 at 99% is [0.2401, 0.3853]', () => {
    const interval = wilson(81, 263, 0.99);
    expectNear(interval.low, 0.2401369);
    expectNear(interval.high, 0.3852825);
  });

  it('stays inside [0, 1] at the extremes: 0 of 10 and 10 of 10', () => {
    expect(wilson(0, 10).low).toBe(0);
    expectNear(wilson(0, 10).high, 0.2775328);
    expectNear(wilson(10, 10).low, 0.7224672);
    expect(wilson(10, 10).high).toBeLessThanOrEqual(1);
  });

  it('no trials: value NaN, interval [0, 1]', () => {
    expect(wilson(0, 0)).toEqual({ value: Number.NaN, low: 0, high: 1, method: 'wilson' });
  });

  it('always holds the observed proportion, inside [0, 1]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (trials, fraction) => {
        const successes = Math.round(fraction * trials);
        const { value, low, high } = wilson(successes, trials);
        return low >= 0 && high <= 1 && low <= value + 1e-12 && value <= high + 1e-12;
      }),
    );
  });
});

describe('Clopper-Pearson exact interval', () => {
  it('0 of 100: upper bound 1 - 0.025^(1/100) ≈ 0.0362', () => {
    const interval = clopperPearson(0, 100);
    expect(interval.method).toBe('clopper-pearson');
    expect(interval.low).toBe(0);
    expectNear(interval.high, 1 - 0.025 ** (1 / 100), 1e-7);
    expectNear(interval.high, 0.0362167);
  });

  it('100 of 100 mirrors 0 of 100', () => {
    const interval = clopperPearson(100, 100);
    expect(interval.high).toBe(1);
    expectNear(interval.low, 0.025 ** (1 / 100), 1e-7);
  });

  it('81 of 263 at 95% is [0.2527, 0.3676]', () => {
    const interval = clopperPearson(81, 263);
    expectNear(interval.low, 0.2527367);
    expectNear(interval.high, 0.3676219);
  });

  it('682 of 925 (R binom.test documentation, Conover 1971) is [0.7076683, 0.7654066]', () => {
    const interval = clopperPearson(682, 925);
    expectNear(interval.low, 0.7076683, 1e-6);
    expectNear(interval.high, 0.7654066, 1e-6);
  });

  it('5 of 20 at 90% is [0.1041, 0.4556]', () => {
    const interval = clopperPearson(5, 20, 0.9);
    expectNear(interval.low, 0.1040808);
    expectNear(interval.high, 0.455582);
  });

  it('is never narrower than Wilson on the same counts (it is conservative)', () => {
    for (const [successes, trials] of [[81, 263], [5, 20], [1, 50], [49, 50]]) {
      const exact = clopperPearson(successes, trials);
      const score = wilson(successes, trials);
      expect(exact.high - exact.low).toBeGreaterThan(score.high - score.low);
    }
  });

  it('the regularised incomplete beta matches closed forms', () => {
    // I_x(1, b) = 1 - (1 - x)^b and I_x(a, 1) = x^a
    expectNear(incompleteBeta(0.3, 1, 5), 1 - 0.7 ** 5, 1e-12);
    expectNear(incompleteBeta(0.3, 4, 1), 0.3 ** 4, 1e-12);
    expectNear(incompleteBeta(0.5, 7, 7), 0.5, 1e-12);
    expect(incompleteBeta(0, 2, 3)).toBe(0);
    expect(incompleteBeta(1, 2, 3)).toBe(1);
  });
});

describe('exact McNemar test', () => {
  it('2 against 10 discordant pairs: p = 2 · (1 + 12 + 66) / 2^12 ≈ 0.0386', () => {
    const result = mcNemarExact(2, 10);
    expect(result).toMatchObject({ onlyFirst: 2, onlySecond: 10 });
    expectNear(result.pValue, 158 / 4096, 1e-12);
  });

  it('is symmetric in its arguments', () => {
    expect(mcNemarExact(10, 2).pValue).toBeCloseTo(mcNemarExact(2, 10).pValue, 12);
    expectNear(mcNemarExact(9, 1).pValue, 0.021484375, 1e-12);
  });

  it.each([
    [0, 0],
    [5, 5],
    [0, 1],
    [3, 4],
    [40, 40],
  ])('%s against %s: p = 1', (onlyFirst, onlySecond) => {
    expectNear(mcNemarExact(onlyFirst, onlySecond).pValue, 1, 1e-12);
  });

  it('0 against 20: p = 2 / 2^20', () => {
    expectNear(mcNemarExact(0, 20).pValue, 2 / 2 ** 20, 1e-15);
  });

  it('40 against 60: p ≈ 0.0569 (SciPy binomtest)', () => {
    expectNear(mcNemarExact(40, 60).pValue, 0.05688793364, 1e-9);
  });
});

describe('percentile (nearest rank)', () => {
  // the nearest-rank examples of the Wikipedia article "Percentile"
  const five = [15, 20, 35, 40, 50];
  const ten = [3, 6, 7, 8, 8, 10, 13, 15, 16, 20];

  it.each([
    [0.05, 15],
    [0.3, 20],
    [0.4, 20],
    [0.5, 35],
    [1, 50],
  ])('of [15, 20, 35, 40, 50] at %s is %s', (fraction, expected) => {
    expect(percentile(five, fraction)).toBe(expected);
  });

  it.each([
    [0.25, 7],
    [0.5, 8],
    [0.75, 15],
    [1, 20],
  ])('of [3, 6, 7, 8, 8, 10, 13, 15, 16, 20] at %s is %s', (fraction, expected) => {
    expect(percentile(ten, fraction)).toBe(expected);
  });

  it('the 0th percentile is the smallest value, and no values give NaN', () => {
    expect(percentile(five, 0)).toBe(15);
    expect(percentile([], 0.5)).toBeNaN();
  });

  it('p50, p90 and p99 of 1..100 are 50, 90 and 99', () => {
    const values = Array.from({ length: 100 }, (_, index) => index + 1);
    expect([0.5, 0.9, 0.99].map((fraction) => percentile(values, fraction))).toEqual([50, 90, 99]);
  });

  // 0.07 * 100 is 7.000000000000001 in floating point: a plain ceil would give rank 8
  it('the 7th percentile of 1..100 is 7 (needs a tolerance against floating-point error)', () => {
    const values = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(values, 0.07)).toBe(7);
  });
});

describe("Leveugle's sample size (p = 0.5)", () => {
  it.each([
    [0.05, 0.95, 385],
    [0.02, 0.95, 2401],
    [0.01, 0.95, 9604],
    [0.01, 0.99, 16588],
    [0.05, 0.99, 664],
  ])('margin %s at %s confidence needs %s injections', (margin, confidence, expected) => {
    expect(sampleSize(margin, confidence)).toBe(expected);
  });

  it('a finite population of 10,000 faults, margin 0.05 at 95%: 370', () => {
    // by hand: t = 1.95996, t²·p(1-p) = 0.960365; n = N·0.960365 / (e²·(N - 1) + 0.960365)
    //        = 9603.65 / (0.0025 · 9999 + 0.960365) = 9603.65 / 25.95786 = 369.97 -> 370
    expect(sampleSize(0.05, 0.95, 10_000)).toBe(370);
  });

  it('a finite population of 1,000 faults, margin 0.02 at 95%: 707 (of 2,401 for an infinite one)', () => {
    // 1000 · 0.960365 / (0.0004 · 999 + 0.960365) = 960.365 / 1.359965 = 706.17 -> 707
    expect(sampleSize(0.02, 0.95, 1_000)).toBe(707);
  });

  it('never exceeds the population nor the infinite-population size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 1_000_000 }), fc.constantFrom(0.01, 0.02, 0.05), (population, margin) => {
        const finite = sampleSize(margin, 0.95, population);
        return finite <= population && finite <= sampleSize(margin, 0.95);
      }),
    );
  });
});
