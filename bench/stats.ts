/**
 * The bench's statistics: percentiles of one run's latencies, and the
 * min/median/max of a figure over runs (each run is one sample; with 2
 * shared cores the spread matters as much as the middle).
 */

/** Nearest-rank percentile of ascending `sorted` values; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  // The epsilon keeps float error from moving the rank: 99.9% of 10,000 is 9990, not 9990.000000000002.
  const rank = Math.ceil((p * sorted.length) / 100 - 1e-9)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/** A figure over runs. `median` of an even count is the mean of the middle two. */
export interface Summary {
  readonly min: number
  readonly median: number
  readonly max: number
  readonly runs: number
}

/** Summarises one figure's samples; NaN samples (a failed run) are left out. */
export function summarize(samples: readonly number[]): Summary | undefined {
  const values = samples.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (values.length === 0) return undefined
  const mid = values.length >> 1
  const median = values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2
  return { min: values[0]!, median, max: values[values.length - 1]!, runs: values.length }
}
