/**
 * When a certificate the gateway holds for itself must be replaced. Pure (no
 * clock, no I/O), so the decision is tested with pinned times and shared by
 * every caller that renews on a schedule.
 */

/** The validity window of a certificate, ms since the epoch. */
export interface ValidityWindow {
  readonly notBefore: number
  readonly notAfter: number
}

/** Renew once two thirds of the lifetime have passed (as ACME clients and cert-manager do): a third is left to retry failures. */
export const DEFAULT_RENEWAL_RATIO = 2 / 3

/**
 * True when `cert` should be replaced at `now`: once `ratio` of its lifetime
 * has passed, when it has expired, when it is not yet valid (a certificate
 * from the future means a clock step or a foreign file; serving it would fail
 * every strict peer), or when its window is empty or inverted.
 *
 * Throws RangeError for a ratio outside (0, 1] or non-finite inputs: those are
 * caller bugs, not certificate states.
 */
export function renewalDue(cert: ValidityWindow, now: number, ratio = DEFAULT_RENEWAL_RATIO): boolean {
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`renewal ratio must be in (0, 1], got ${ratio}`)
  if (![cert.notBefore, cert.notAfter, now].every(Number.isFinite)) throw new RangeError('renewalDue needs finite times')
  const lifetime = cert.notAfter - cert.notBefore
  if (lifetime <= 0) return true
  if (now < cert.notBefore || now >= cert.notAfter) return true
  return now >= cert.notBefore + Math.floor(lifetime * ratio)
}
