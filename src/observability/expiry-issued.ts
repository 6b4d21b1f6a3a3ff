/**
 * The built-in CA's side of expiry monitoring: its root and issuing
 * certificates, and the certificates it issued (the inventory), which can be
 * thousands.
 *
 * Decisions:
 * - The inventory is read in pages of 1000, valid and not yet expired only
 *   (revoked certificates need no renewal; expired ones are history), once
 *   per check interval, not per scrape.
 * - A certificate is "superseded" when the same holder (partner, profile,
 *   subject and SANs) has a later-issued certificate that also expires
 *   later: it was renewed, and warning about the old one would be noise. Two
 *   live instances sharing one subject and SAN set look the same, so the
 *   older of them is not announced (docs/operations.md says so).
 * - Only current certificates within the largest threshold are "due". The
 *   monitor gives per-certificate metric series to the `ISSUED_SERIES_LIMIT`
 *   soonest of them and counts all of them per partner, which keeps the
 *   metric's cardinality bounded whatever the inventory holds.
 * - Inventory rows are not parsed: subjects are shown as the CA recorded
 *   them (what `ca list` prints), and PEM is dropped as soon as a page is
 *   read, so a scan of thousands costs little memory and no event-loop time
 *   in DER parsing.
 */
import type { CertificateInventory, CertificateRecord } from '../storage/types.js'
import { parseCertificates, type WatchedCertificate } from './expiry-certificates.js'

/** What the expiry monitor reads from the built-in CA (`PkiService.expiryView`); read-only use. */
export interface PkiExpiryView {
  /** The CA's folder, for logs. */
  readonly caDir: string
  readonly rootPem: string
  readonly intermediatePem: string
  readonly inventory: CertificateInventory
}

/** Most issued certificates given their own `portcullis_certificate_expiry_seconds` series (the soonest to expire). */
export const ISSUED_SERIES_LIMIT = 100

/** How far ahead the inventory scan looks: everything not expired (far beyond any certificate lifetime). */
const SCAN_HORIZON_MS = 100 * 365 * 86_400_000
const PAGE_SIZE = 1000

/** An inventory row reduced to what the monitor needs. */
export interface IssuedSummary {
  readonly serial: string
  readonly subject: string
  readonly partner: string | undefined
  readonly profile: string
  /** Partner, profile and subject and SANs: one holder's certificates share it. */
  readonly holder: string
  readonly notBefore: number
  readonly notAfter: number
  readonly fingerprint256: string
}

/** The metric `name` of an issued certificate: its partner, or its profile in parentheses (never a partner name). */
export function issuedName(c: Pick<IssuedSummary, 'partner' | 'profile'>): string {
  return c.partner ?? `(${c.profile})`
}

function summarise(r: CertificateRecord): IssuedSummary {
  return {
    serial: r.serial,
    subject: r.subject,
    partner: r.partner,
    profile: r.profile,
    holder: JSON.stringify([r.partner ?? '', r.profile, r.subject, [...r.sans].sort()]),
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    fingerprint256: r.fingerprint256,
  }
}

/** Every valid, not yet expired certificate in the inventory at `now`, in pages. */
export async function scanInventory(inventory: CertificateInventory, now: number): Promise<IssuedSummary[]> {
  const out: IssuedSummary[] = []
  let after: string | undefined
  for (;;) {
    const page = await inventory.list({ status: 'valid', expiringWithinMs: SCAN_HORIZON_MS, now, limit: PAGE_SIZE, ...(after !== undefined && { after }) })
    for (const r of page) out.push(summarise(r))
    if (page.length < PAGE_SIZE) return out
    after = page[page.length - 1]!.serial
  }
}

/** The outcome of `selectDue`. */
export interface IssuedSelection {
  /** Current (not superseded) certificates with at most `windowMs` left, soonest first. */
  readonly due: readonly IssuedSummary[]
  /** How many were left out because their holder has a newer one. */
  readonly superseded: number
}

/** Picks the certificates to watch out of a scan (pure: `now` and the window are given). */
export function selectDue(certs: readonly IssuedSummary[], now: number, windowMs: number): IssuedSelection {
  const byHolder = new Map<string, IssuedSummary[]>()
  for (const c of certs) {
    const list = byHolder.get(c.holder)
    if (list) list.push(c)
    else byHolder.set(c.holder, [c])
  }
  const due: IssuedSummary[] = []
  let superseded = 0
  for (const list of byHolder.values()) {
    // Newest issued first; a certificate is superseded by any later-issued one that outlives it.
    list.sort((a, b) => b.notBefore - a.notBefore)
    let latestEnd = -Infinity
    let laterIssuedEnd = -Infinity
    let previousStart = Infinity
    for (const c of list) {
      if (c.notBefore < previousStart) laterIssuedEnd = latestEnd
      previousStart = c.notBefore
      if (laterIssuedEnd > c.notAfter) superseded++
      else if (c.notAfter - now <= windowMs) due.push(c)
      latestEnd = Math.max(latestEnd, c.notAfter)
    }
  }
  due.sort((a, b) => a.notAfter - b.notAfter || (a.serial < b.serial ? -1 : 1))
  return { due, superseded }
}

/** An issued certificate as a watched one (no parsing: the inventory row has what is shown). */
export function issuedCertificate(c: IssuedSummary, issuer: string): WatchedCertificate {
  const where = [c.partner !== undefined && `partner ${c.partner}`, `profile ${c.profile}`].filter(Boolean).join(', ')
  return {
    kind: 'issued',
    name: issuedName(c),
    location: `pki inventory (${where})`,
    subject: c.subject,
    issuer,
    serial: c.serial,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    fingerprint256: c.fingerprint256,
  }
}

/** The CA's root and issuing certificates. Throws when they do not parse (they did at start). */
export function caCertificates(view: PkiExpiryView): WatchedCertificate[] {
  return [
    ...parseCertificates(view.rootPem, (i) => (i === 0 ? 'ca_root' : undefined), { name: 'pki', location: `pki.caDir (${view.caDir}/root.crt)` }),
    ...parseCertificates(view.intermediatePem, (i) => (i === 0 ? 'ca_intermediate' : undefined), { name: 'pki', location: `pki.caDir (${view.caDir}/intermediate.crt)` }),
  ]
}
