/**
 * Where a certificate says its revocation status is published: the http(s)
 * URIs of its CRL distribution points (RFC 5280 §4.2.1.13) and the OCSP
 * responder of its Authority Information Access (ocsp-client's
 * `ocspUrlOf`). Read once per distinct certificate and cached by the caller.
 *
 * A distribution point with `reasons` (a partition by reason) or `cRLIssuer`
 * (an indirect CRL) is skipped: its CRL would not be a complete CRL from the
 * certificate's issuer, which is all we interpret (crl-der.ts). LDAP and
 * other schemes are skipped: we fetch over HTTP(S) only.
 */
import { ocspUrlOf } from '../../../pki/ocsp-client.js'
import { DerReader, Tag, readOid } from '../der.js'
import { readUris } from './crl-der.js'

const oidCrlDistributionPoints = '2.5.29.31'

/** What one certificate names for its revocation status. */
export interface CertSources {
  readonly crlUrls: readonly string[]
  readonly ocspUrl: string | undefined
}

/** The value (inside the OCTET STRING) of the extension `oid` of a DER certificate, or undefined. */
function extensionValue(der: Buffer, oid: string): DerReader | undefined {
  const cert = DerReader.inside(der, new DerReader(der).next(Tag.sequence))
  const tbs = DerReader.inside(der, cert.next(Tag.sequence))
  tbs.optional(0xa0) // version
  tbs.next(Tag.integer) // serial
  tbs.next(Tag.sequence) // signature
  tbs.next(Tag.sequence) // issuer
  tbs.next(Tag.sequence) // validity
  tbs.next(Tag.sequence) // subject
  tbs.next(Tag.sequence) // subjectPublicKeyInfo
  tbs.optional(0x81)
  tbs.optional(0x82)
  const extensions = tbs.optional(0xa3)
  if (!extensions) return undefined
  const list = DerReader.inside(der, DerReader.inside(der, extensions).next(Tag.sequence))
  while (list.hasMore()) {
    const ext = DerReader.inside(der, list.next(Tag.sequence))
    if (readOid(der, ext.next(Tag.oid)) !== oid) continue
    ext.optional(Tag.boolean)
    return DerReader.inside(der, ext.next(Tag.octetString))
  }
  return undefined
}

/** The http(s) URIs of the certificate's full-name CRL distribution points, in certificate order. */
export function crlUrlsOf(der: Buffer): string[] {
  let ext: DerReader | undefined
  try {
    ext = extensionValue(der, oidCrlDistributionPoints)
  } catch {
    return [] // verify-peer already parsed this certificate; a part we cannot read names no source
  }
  if (!ext) return []
  const urls: string[] = []
  try {
    const points = DerReader.inside(der, ext.next(Tag.sequence))
    while (points.hasMore()) {
      const point = DerReader.inside(der, points.next(Tag.sequence))
      const name = point.optional(0xa0)
      const isPartial = point.optional(0x81) !== undefined || point.optional(0xa2) !== undefined
      if (!name || isPartial) continue
      const fullName = DerReader.inside(der, name).optional(0xa0)
      if (fullName) urls.push(...readUris(der, DerReader.inside(der, fullName)))
    }
  } catch {
    return urls
  }
  return [...new Set(urls)]
}

/** Both sources of one certificate. */
export function certSourcesOf(der: Buffer): CertSources {
  return { crlUrls: crlUrlsOf(der), ocspUrl: ocspUrlOf(der) }
}
