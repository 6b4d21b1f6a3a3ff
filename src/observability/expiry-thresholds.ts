/**
 * The one decision of the expiry monitor, as a pure function: given a
 * certificate's notAfter, now, the configured thresholds and the steps
 * already announced for it, what (if anything) to announce now. No clock is
 * read here (DESIGN: "Inject the clock"); tests call it with plain numbers.
 *
 * Decisions:
 * - A threshold is reached when the time left is at or below it; the
 *   certificate has expired once now is past notAfter (notAfter itself is
 *   still valid, RFC 5280 §4.1.2.5).
 * - Only the most urgent step reached is announced. A certificate first seen
 *   with 5 days left (a start, a reload, a new file) gets one "7d" warning,
 *   not a "30d" and a "7d" one; the larger thresholds it skipped are recorded
 *   as announced too, so they never come later.
 * - Each step is announced once; what was announced is the caller's memory
 *   (in process, so a restart announces again). A threshold added by a
 *   reload is announced only if it is more urgent than what was already said.
 */

/** The announced step meaning "expired": below every threshold (thresholds are positive). */
export const EXPIRED_STEP = 0

/** What to announce for one certificate now. */
export type ExpiryStep =
  | { readonly event: 'expiring'; readonly thresholdMs: number }
  | { readonly event: 'expired' }

/** The outcome of `expiryStep`. */
export interface StepDecision {
  /** Undefined when nothing new was reached. */
  readonly announce: ExpiryStep | undefined
  /** Every step reached now (thresholds in ms, `EXPIRED_STEP`); record them all as announced when `announce` is acted on. */
  readonly reached: readonly number[]
}

/**
 * The step to announce for a certificate expiring at `notAfterMs`, seen at
 * `nowMs`, with `thresholdsMs` configured (any order, positive) and
 * `announced` steps already said.
 */
export function expiryStep(notAfterMs: number, nowMs: number, thresholdsMs: readonly number[], announced: ReadonlySet<number>): StepDecision {
  const left = notAfterMs - nowMs
  const reached = thresholdsMs.filter((t) => left <= t)
  if (left < 0) reached.push(EXPIRED_STEP)
  if (reached.length === 0) return { announce: undefined, reached }
  const mostUrgent = Math.min(...reached)
  if (announced.has(mostUrgent)) return { announce: undefined, reached }
  return { announce: mostUrgent === EXPIRED_STEP ? { event: 'expired' } : { event: 'expiring', thresholdMs: mostUrgent }, reached }
}

const units: readonly (readonly [string, number])[] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
]

/** A threshold as config writes it ("30d", "36h", "90s"), for metric labels, logs and webhook bodies. */
export function formatThreshold(ms: number): string {
  for (const [unit, size] of units) if (ms % size === 0) return `${ms / size}${unit}`
  return `${ms}ms`
}
