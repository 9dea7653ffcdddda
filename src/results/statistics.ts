/**
 * Statistics for fault-injection campaigns: intervals for proportions (Wilson, Clopper-Pearson),
 * the exact McNemar test for paired comparisons, percentiles, and Leveugle's sample size.
 */

export interface Interval {
  readonly value: number;
  readonly low: number;
  readonly high: number;
  readonly method: 'wilson' | 'clopper-pearson';
}

/** Two-sided standard normal quantile for a confidence level (Acklam's rational approximation). */
export function normalQuantile(probability: number): number {
  if (probability <= 0 || probability >= 1) throw new RangeError('probability must be in (0, 1)');
  const a = [-39.69683028665376, 220.9460984245205, -275.928510446969, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (probability < low) {
    const q = Math.sqrt(-2 * Math.log(probability));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (probability > 1 - low) return -normalQuantile(1 - probability);
  const q = probability - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/**
 * The confidence levels a user may ask for: below one half an interval says less than a coin,
 * and within a millionth of 1 the normal quantile runs out of double precision.
 */
export const MIN_CONFIDENCE = 0.5;
export const MAX_CONFIDENCE = 0.999999;

function zFor(confidence: number): number {
  return normalQuantile(1 - (1 - confidence) / 2);
}

/** Wilson score interval for `successes` out of `trials`. */
export function wilson(successes: number, trials: number, confidence = 0.95): Interval {
  if (trials === 0) return { value: Number.NaN, low: 0, high: 1, method: 'wilson' };
  const z = zFor(confidence);
  const p = successes / trials;
  const denominator = 1 + (z * z) / trials;
  const centre = (p + (z * z) / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + (z * z) / (4 * trials * trials))) / denominator;
  return { value: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), method: 'wilson' };
}

/** Clopper-Pearson exact interval, from the beta quantiles. */
export function clopperPearson(successes: number, trials: number, confidence = 0.95): Interval {
  if (trials === 0) return { value: Number.NaN, low: 0, high: 1, method: 'clopper-pearson' };
  const alpha = 1 - confidence;
  const low = successes === 0 ? 0 : betaQuantile(alpha / 2, successes, trials - successes + 1);
  const high = successes === trials ? 1 : betaQuantile(1 - alpha / 2, successes + 1, trials - successes);
  return { value: successes / trials, low, high, method: 'clopper-pearson' };
}

/** Regularised incomplete beta I_x(a, b), by Lentz's continued fraction. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let result = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    for (const numerator of [(m * (b - m) * x) / ((a + m2 - 1) * (a + m2)), (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))]) {
      d = 1 + numerator * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + numerator / c;
      if (Math.abs(c) < tiny) c = tiny;
      result *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return result;
}

function betaQuantile(probability: number, a: number, b: number): number {
  let low = 0;
  let high = 1;
  for (let iteration = 0; iteration < 100; iteration++) {
    const middle = (low + high) / 2;
    if (incompleteBeta(middle, a, b) < probability) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

/** ln Γ(x), Lanczos approximation. */
export function logGamma(x: number): number {
  const coefficients = [676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.6150291621406, 12.507343278686905, -0.13857109526572012, 9.984369578019572e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const shifted = x - 1;
  let sum = 0.9999999999998099;
  coefficients.forEach((coefficient, index) => (sum += coefficient / (shifted + index + 1)));
  const t = shifted + coefficients.length - 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

export interface McNemarResult {
  /** pairs where only the first succeeded, and where only the second did */
  readonly onlyFirst: number;
  readonly onlySecond: number;
  /** exact two-sided p-value (binomial on the discordant pairs) */
  readonly pValue: number;
}

export function mcNemarExact(onlyFirst: number, onlySecond: number): McNemarResult {
  const discordant = onlyFirst + onlySecond;
  if (discordant === 0) return { onlyFirst, onlySecond, pValue: 1 };
  const smaller = Math.min(onlyFirst, onlySecond);
  let tail = 0;
  for (let k = 0; k <= smaller; k++) tail += Math.exp(logChoose(discordant, k) - discordant * Math.LN2);
  return { onlyFirst, onlySecond, pValue: Math.min(1, 2 * tail) };
}

function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** Nearest-rank percentile of already sorted values; NaN for none. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  // fraction * n can land a hair above an integer (0.07 * 100 = 7.000000000000001): undo that
  const exact = fraction * sorted.length;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(exact - exact * 1e-12)));
  return sorted[rank - 1];
}

/**
 * Injections needed for a proportion within `margin` at `confidence` (Leveugle et al., DATE
 * 2009), p = 0.5; for a finite population of `population` faults when given.
 */
export function sampleSize(margin: number, confidence: number, population?: number): number {
  const t = zFor(confidence);
  const p = 0.5;
  if (population === undefined) return Math.ceil((t * t * p * (1 - p)) / (margin * margin));
  return Math.ceil((population * t * t * p * (1 - p)) / (margin * margin * (population - 1) + t * t * p * (1 - p)));
}
