/**
 * The in-memory set of revoked client certificates the data plane enforces.
 * It lives for the process, not for a config version: a revocation takes
 * effect at once, with no reload, and survives reloads. Listeners consult it
 * on every connection — full and resumed handshakes alike — and close the
 * established connections of a certificate the moment it is added.
 *
 * Matching: by serial number (lowercase hex, leading zeros removed), and by
 * issuer when both the entry and the connection's identity name the issuing
 * CA's fingerprint. An entry without an issuer matches the serial under any
 * issuer: serials are only unique per CA, but refusing a stranger's
 * certificate with a colliding serial is the safe way to be wrong.
 */
import type { Identity } from './context.js'

/** A revoked certificate, as the CA's inventory or a CRL describes it. */
export interface RevokedCertificate {
  /** Serial number in hex (any case, leading zeros allowed). */
  readonly serialNumber: string
  /** SHA-256 of the issuing CA's DER certificate, lowercase hex; undefined = any issuer. */
  readonly issuerFingerprint256?: string
  /** RFC 5280 CRLReason name, e.g. "keyCompromise". */
  readonly reason: string
  /** ms since epoch. */
  readonly revokedAt: number
}

/** Canonical serial form: lowercase hex without leading zeros ("0" for zero). */
export function canonicalSerial(hex: string): string {
  const s = hex.replace(/[:\s]/g, '').toLowerCase().replace(/^0+/, '')
  return s === '' ? '0' : s
}

/** Revoked certificates by canonical serial; several issuers may share a serial. */
export class RevocationSet {
  private readonly bySerial = new Map<string, RevokedCertificate[]>()
  private readonly listeners = new Set<(added: readonly RevokedCertificate[]) => void>()

  /** Number of entries. */
  get size(): number {
    let n = 0
    for (const list of this.bySerial.values()) n += list.length
    return n
  }

  /**
   * Adds entries (an entry already present for the same serial and issuer is
   * kept as it was) and tells subscribers about the new ones, synchronously,
   * so established connections close before add() returns.
   */
  add(entries: readonly RevokedCertificate[]): readonly RevokedCertificate[] {
    const added: RevokedCertificate[] = []
    for (const entry of entries) {
      const serial = canonicalSerial(entry.serialNumber)
      const issuer = entry.issuerFingerprint256?.toLowerCase()
      const list = this.bySerial.get(serial) ?? []
      if (list.some((e) => e.issuerFingerprint256 === issuer)) continue
      const stored = Object.freeze({ ...entry, serialNumber: serial, issuerFingerprint256: issuer })
      list.push(stored)
      this.bySerial.set(serial, list)
      added.push(stored)
    }
    if (added.length > 0) for (const notify of this.listeners) notify(added)
    return added
  }

  /** The entry revoking this identity's certificate, or undefined. One Map lookup on the common path. */
  lookup(identity: Identity): RevokedCertificate | undefined {
    const list = this.bySerial.get(canonicalSerial(identity.serialNumber))
    if (!list) return undefined
    const issuer = identity.issuerFingerprint256
    return list.find((e) => e.issuerFingerprint256 === undefined || issuer === undefined || e.issuerFingerprint256 === issuer)
  }

  /** Subscribes to additions; returns the unsubscribe function. */
  subscribe(onAdded: (added: readonly RevokedCertificate[]) => void): () => void {
    this.listeners.add(onAdded)
    return () => this.listeners.delete(onAdded)
  }
}
