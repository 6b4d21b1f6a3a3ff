/**
 * Which client certificates are actually in use: the data plane notes, per
 * connection, the certificate a verified handshake presented; the PKI
 * service takes the notes every few seconds and writes them to the inventory
 * (`markSeen`), so `portcullis ca list` can show which of a partner's two
 * certificates is used during a rotation.
 *
 * Decisions:
 * - The request path never touches storage: `record` is one Set lookup and
 *   one Map write, O(1), whatever the connection rate. A certificate seen a
 *   thousand times between two flushes is one entry with the latest time.
 * - Only certificates of issuers being watched are noted (the built-in CA's
 *   issuing certificate, registered by the PKI service): others have no
 *   inventory row to update, and noting them would let a partner CA's
 *   certificates fill the table.
 * - Bounded: past `maxEntries` distinct certificates between two flushes, new
 *   ones are dropped (and counted, so the flush can say so) rather than
 *   growing memory without limit; certificates already noted keep updating.
 * - A sighting is a verified handshake, whether the certificate was then
 *   refused as revoked or not: after revoking, a certificate that is still
 *   seen tells the operator the partner still tries it.
 */
import type { Identity } from './context.js'
import { canonicalSerial } from './revocation-set.js'

/** One certificate's latest sighting. */
export interface CertificateSighting {
  /** Lowercase hex without leading zeros. */
  readonly serial: string
  readonly issuerFingerprint256: string
  /** ms, by the listener's clock. */
  readonly at: number
}

/** Default bound on distinct certificates noted between two flushes. */
export const DEFAULT_MAX_SIGHTINGS = 10_000

/** The process's collector; listeners fill it, the PKI service drains it. */
export class CertificateSightings {
  private readonly issuers = new Set<string>()
  private entries = new Map<string, CertificateSighting>()
  private dropped = 0

  constructor(private readonly maxEntries = DEFAULT_MAX_SIGHTINGS) {}

  /** Notes certificates issued by this CA certificate (SHA-256 of its DER, lowercase hex) from now on. */
  watch(issuerFingerprint256: string): void {
    this.issuers.add(issuerFingerprint256.toLowerCase())
  }

  /** Notes that a handshake presented `identity`'s certificate at `at`. O(1). */
  record(identity: Pick<Identity, 'serialNumber' | 'issuerFingerprint256'>, at: number): void {
    const issuer = identity.issuerFingerprint256
    if (issuer === undefined || !this.issuers.has(issuer)) return
    const serial = canonicalSerial(identity.serialNumber)
    const key = `${issuer}/${serial}`
    const known = this.entries.get(key)
    if (known) {
      if (at > known.at) this.entries.set(key, { serial, issuerFingerprint256: issuer, at })
      return
    }
    if (this.entries.size >= this.maxEntries) {
      this.dropped++
      return
    }
    this.entries.set(key, { serial, issuerFingerprint256: issuer, at })
  }

  /** Hands over everything noted since the last call, and how many certificates were dropped for the bound. */
  take(): { readonly sightings: readonly CertificateSighting[]; readonly dropped: number } {
    const taken = { sightings: [...this.entries.values()], dropped: this.dropped }
    this.entries = new Map()
    this.dropped = 0
    return taken
  }

  /** Puts back sightings whose write failed, so the next flush retries them (later sightings win). */
  restore(sightings: readonly CertificateSighting[]): void {
    for (const s of sightings) this.record({ serialNumber: s.serial, issuerFingerprint256: s.issuerFingerprint256 }, s.at)
  }
}
