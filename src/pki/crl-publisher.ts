/**
 * When to rebuild the CRL: a pure decision of the current CRL's window, the
 * clock and the revocation state, so the publisher loop around it (which
 * locks, re-checks and then calls `buildCrl`) stays trivial to test. Like the
 * CA's renewal check, it takes `now` instead of reading the time.
 *
 * Rebuilding at a fraction of the validity (two thirds by default) rather
 * than at nextUpdate leaves relying parties that fetch late — and the
 * publisher itself if a rebuild fails — a third of the window to recover
 * before caches hold an expired CRL and hard-fail validators start refusing.
 */

/** What the publisher knows about the CRL it currently serves. */
export interface CurrentCrl {
  /** ms since the epoch. */
  readonly thisUpdate: number
  readonly nextUpdate: number
  /**
   * The revocation revision the CRL was built from (e.g. a storage counter
   * bumped on every revoke). Compared with `latestRevision`; omitted when the
   * caller triggers rebuilds on revocation itself.
   */
  readonly revision?: number
}

/** Why a rebuild is due; snake_case because it goes to logs and metrics. */
export type CrlRegenerationReason = 'missing' | 'revoked' | 'not_yet_valid' | 'expired' | 'refresh_due'

/** Options for {@link crlRegenerationReason}. */
export interface CrlRegenerationOptions {
  /** Fraction of [thisUpdate, nextUpdate] after which to rebuild; 0 < ratio ≤ 1. Default 2/3. */
  readonly ratio?: number
  /** The newest revocation revision in storage. */
  readonly latestRevision?: number
}

/**
 * Returns why the CRL must be rebuilt now, or undefined if the current one
 * is still good. A CRL whose thisUpdate is in the future (clock stepped back)
 * is rebuilt too, since validators reject it as not yet valid.
 */
export function crlRegenerationReason(
  current: CurrentCrl | undefined,
  now: number,
  options: CrlRegenerationOptions = {},
): CrlRegenerationReason | undefined {
  const ratio = options.ratio ?? 2 / 3
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError('ratio must be in (0, 1]')
  if (current === undefined) return 'missing'
  if (options.latestRevision !== undefined && (current.revision === undefined || current.revision < options.latestRevision)) {
    return 'revoked'
  }
  if (now < current.thisUpdate) return 'not_yet_valid'
  if (now >= current.nextUpdate) return 'expired'
  const refreshAt = current.thisUpdate + (current.nextUpdate - current.thisUpdate) * ratio
  return now >= refreshAt ? 'refresh_due' : undefined
}

/** Boolean form of {@link crlRegenerationReason} for callers that only need yes/no. */
export function shouldRegenerate(current: CurrentCrl | undefined, now: number, ratio = 2 / 3, latestRevision?: number): boolean {
  const opts: CrlRegenerationOptions = latestRevision === undefined ? { ratio } : { ratio, latestRevision }
  return crlRegenerationReason(current, now, opts) !== undefined
}
