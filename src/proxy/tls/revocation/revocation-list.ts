/**
 * A verified CRL as the data plane consults it: the revoked serials as a
 * sorted table of fixed-width keys built by the worker (crl-der.ts), looked
 * up by binary search, and the scope the CRL declares.
 *
 * Why a sorted table rather than a Set of serial strings: the table arrives
 * from the worker as transferred buffers, so a CRL of any size costs the
 * event loop nothing to install. Building a Set of 100k strings in the main
 * thread, even in slices of 20k entries, measured 60-285 ms of work on the
 * shared test machine plus old-space GC pauses of 5-30 ms, and ~10 MB of
 * heap; the table is ~2.6 MB outside the heap. A lookup is ~17 comparisons
 * of at most 20 bytes (a few µs) on a connection whose status is not yet
 * cached by certificate.
 */
import { crlReasonName } from '../../../shared/revocation-reasons.js'
import type { CrlData } from './crl-worker.js'
import { noReason } from './crl-der.js'

/** One revoked certificate on a list. */
export interface ListedRevocation {
  readonly revokedAt: number
  readonly reason: string
}

/** A certificate as a CRL's scope sees it. */
export interface ScopeCheck {
  readonly isCa: boolean
  /** The certificate's CRL distribution point URLs. */
  readonly crlUrls: readonly string[]
}

type Table = Pick<CrlData, 'keyWidth' | 'keys' | 'revokedAt' | 'reasons' | 'onlyUserCerts' | 'onlyCaCerts' | 'scopeUrls'>

/** A CRL whose signature and issuer were checked by the caller. Immutable. */
export class RevocationList {
  private readonly key: Uint8Array

  private constructor(
    /** Where it came from, for details: the URL or the file path. */
    readonly origin: string,
    readonly issuer: string,
    readonly thisUpdate: number,
    readonly nextUpdate: number | undefined,
    readonly crlNumber: string | undefined,
    private readonly table: Table,
  ) {
    this.key = new Uint8Array(table.keyWidth)
  }

  /** Wraps the worker's table; no per-entry work. */
  static from(data: CrlData, origin: string): RevocationList {
    return new RevocationList(origin, data.issuer, data.thisUpdate, data.nextUpdate, data.crlNumber, data)
  }

  /** Number of revoked serials. */
  get size(): number {
    return this.table.revokedAt.length
  }

  /** The entry for a canonical serial (lowercase hex, no leading zeros), or undefined. */
  find(serial: string): ListedRevocation | undefined {
    const { keyWidth, keys, revokedAt, reasons } = this.table
    const bytes = Buffer.from(serial.length % 2 === 1 ? `0${serial}` : serial, 'hex')
    if (bytes.length > keyWidth) return undefined
    const key = this.key
    key.fill(0)
    key.set(bytes, keyWidth - bytes.length)
    let lo = 0
    let hi = revokedAt.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const at = mid * keyWidth
      let order = 0
      for (let i = 0; i < keyWidth && order === 0; i++) order = keys[at + i]! - key[i]!
      if (order === 0) {
        const code = reasons[mid]!
        return { revokedAt: revokedAt[mid]!, reason: code === noReason ? 'unspecified' : (crlReasonName(code) ?? `reason ${code}`) }
      }
      if (order < 0) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }

  /**
   * Why this CRL does not speak for `cert` (RFC 5280 §6.3.3 b), or undefined
   * when it does: its issuingDistributionPoint limits it to end-entity or CA
   * certificates, or to distribution points the certificate does not name.
   */
  scopeProblem(cert: ScopeCheck): string | undefined {
    if (this.table.onlyUserCerts && cert.isCa) return `CRL ${this.origin} covers end-entity certificates only`
    if (this.table.onlyCaCerts && !cert.isCa) return `CRL ${this.origin} covers CA certificates only`
    const scope = this.table.scopeUrls
    if (scope && cert.crlUrls.length > 0 && !cert.crlUrls.some((u) => scope.includes(u))) {
      return `CRL ${this.origin} is for distribution point ${scope.join(', ')}, which the certificate does not name`
    }
    return undefined
  }

  /** Whether two lists state the same thing (same issue of the CRL). */
  isSameIssue(other: RevocationList | undefined): boolean {
    return !!other && other.thisUpdate === this.thisUpdate && other.crlNumber === this.crlNumber && other.size === this.size
  }
}
