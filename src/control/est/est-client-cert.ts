/**
 * Judges the client certificate presented to the EST server. The server asks
 * for one but lets the handshake finish without it (a token-holding device
 * has none yet), so OpenSSL's verdict is not used at all: this module decides.
 *
 * Decisions:
 * - Only certificates this CA issued count: the leaf must name our issuing
 *   CA as issuer and carry its signature. A certificate from any other CA is
 *   `cert_unknown_ca`, even one the gateway's listeners trust — EST renews
 *   what this CA made, nothing else.
 * - Validity is judged by the injected clock, not by OpenSSL's wall clock,
 *   like every other time decision (DESIGN.md "Inject the clock").
 * - The inventory is read on every request, not the synced revoked set: a
 *   revocation stops renewals at once, and the record (partner, profile) is
 *   what re-enrollment copies. A certificate we signed but never recorded
 *   (the in-memory OCSP signer) or whose fingerprint differs is refused.
 * - The EKU must name clientAuth (every client profile of this CA writes
 *   it): the certificate authenticates a client here.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import { createHash, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import type { LoadedCa } from '../../pki/ca-load.js'
import type { Clock } from '../../shared/clock.js'
import type { Reason } from '../../shared/reasons.js'
import type { CertificateInventory, CertificateRecord } from '../../storage/types.js'

const crypto = webcrypto as unknown as Crypto
const clientAuthOid = '1.3.6.1.5.5.7.3.2'

/** A presented certificate this CA issued, valid now, recorded and not revoked. */
export interface VerifiedClient {
  readonly cert: x509.X509Certificate
  readonly record: CertificateRecord
}

/** Why a presented certificate does not authenticate its holder. */
export interface ClientCertRefusal {
  readonly reason: Reason
  readonly detail: string
}

/** Judges the DER leaf a client presented; see the module comment for the order and meaning of checks. */
export async function verifyClientCert(
  der: Uint8Array,
  deps: { readonly ca: LoadedCa; readonly inventory: CertificateInventory; readonly clock: Clock },
): Promise<VerifiedClient | ClientCertRefusal> {
  let cert: x509.X509Certificate
  try {
    cert = new x509.X509Certificate(new Uint8Array(der))
  } catch {
    return { reason: 'cert_invalid', detail: 'unparsable certificate' }
  }
  const issuer = deps.ca.intermediate
  const isOurs = cert.issuer === issuer.subject && (await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true }, crypto).catch(() => false))
  if (!isOurs) return { reason: 'cert_unknown_ca', detail: `issued by "${cert.issuer}", not by this CA` }

  const now = deps.clock.now()
  if (now < cert.notBefore.getTime()) return { reason: 'cert_not_yet_valid', detail: `valid from ${cert.notBefore.toISOString()}` }
  if (now > cert.notAfter.getTime()) return { reason: 'cert_expired', detail: `expired at ${cert.notAfter.toISOString()}` }
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)
  if (!eku || !eku.usages.map(String).includes(clientAuthOid)) return { reason: 'cert_wrong_usage', detail: 'no clientAuth extended key usage' }

  const serial = cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, '')
  const record = await deps.inventory.get(serial)
  const fingerprint = createHash('sha256').update(der).digest('hex')
  if (!record || record.fingerprint256 !== fingerprint) return { reason: 'cert_invalid', detail: `serial ${serial} is not in the inventory` }
  if (record.status === 'revoked') return { reason: 'cert_revoked', detail: `serial ${serial} revoked (${record.revocationReason ?? 'unspecified'})` }
  return { cert, record }
}
