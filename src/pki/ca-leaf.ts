/**
 * Builds and signs one leaf certificate from a profile, and describes it as
 * an inventory record. Shared by `issueCertificate` and `signCsr`, so both
 * paths write exactly the same extensions.
 *
 * Nothing from a CSR reaches this function except the public key, the
 * already-checked SANs and subject: every extension is ours.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import { createHash, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import type { Clock } from '../shared/clock.js'
import { CaError } from './ca-errors.js'
import type { LoadedCa } from './ca-load.js'
import type { San } from './ca-names.js'
import { ocspNoCheckOid, profiles } from './profiles.js'
import type { ProfileName } from './profiles.js'
import { randomSerial } from './serial.js'

const crypto = webcrypto as unknown as Crypto

/** notBefore is this far before "now", so a peer whose clock is a little slow accepts a fresh certificate. */
export const leafBackdateMs = 5 * 60_000

/**
 * One issued certificate as the inventory (storage layer) records it.
 * Times are ms since epoch; hex is lowercase without separators, as in `Identity`.
 */
export interface IssuedRecord {
  readonly serial: string
  /** Subject DN as @peculiar/x509 prints it (RFC 4514 attribute names, first RDN first). */
  readonly subject: string
  readonly sans: readonly San[]
  readonly profile: ProfileName
  /** The partner the certificate was issued to (partner CSRs and the partner profile). */
  readonly partner?: string
  readonly notBefore: number
  readonly notAfter: number
  /** SHA-256 of the DER certificate. */
  readonly fingerprint256: string
  readonly pem: string
}

/** What a leaf is made of; every field already validated by the caller. */
export interface LeafParams {
  readonly profile: ProfileName
  readonly subject: x509.Name
  readonly sans: readonly San[]
  /** DER SubjectPublicKeyInfo of the holder's key. */
  readonly spkiDer: Uint8Array
  readonly validityMs: number
  readonly partner?: string
  readonly clock: Clock
}

function generalName(san: San): x509.JsonGeneralName {
  return { type: san.type === 'uri' ? 'url' : san.type, value: san.value }
}

/**
 * Signs a leaf with the intermediate. notAfter is capped at the
 * intermediate's own notAfter (a leaf outliving its issuer fails chain
 * validation later, at a worse moment); the record carries the real value.
 * Throws `ca_expired` when the intermediate is not valid now.
 */
export async function signLeaf(ca: LoadedCa, params: LeafParams): Promise<{ certPem: string; record: IssuedRecord }> {
  const now = params.clock.now()
  const caNotAfter = ca.intermediate.notAfter.getTime()
  if (now < ca.intermediate.notBefore.getTime() || now >= caNotAfter) throw new CaError('ca_expired', ca.intermediate.subject)
  const profile = profiles[params.profile]
  const publicKey = new x509.PublicKey(new Uint8Array(params.spkiDer))

  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([...profile.extendedKeyUsage], false),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
    new x509.AuthorityKeyIdentifierExtension(ca.intermediateKeyId),
  ]
  if (params.sans.length > 0) {
    // RFC 5280 4.2.1.6: critical when the subject is empty; ours never is, so non-critical.
    extensions.push(new x509.SubjectAlternativeNameExtension(params.sans.map(generalName), false))
  }
  if (profile.hasRevocationPointers && ca.urls.crlUrl) extensions.push(new x509.CRLDistributionPointsExtension([ca.urls.crlUrl]))
  if (profile.hasRevocationPointers && ca.urls.ocspUrl) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [ca.urls.ocspUrl] }))
  // id-pkix-ocsp-nocheck: the extension value is an ASN.1 NULL (05 00).
  if (profile.hasOcspNoCheck) extensions.push(new x509.Extension(ocspNoCheckOid, false, new Uint8Array([0x05, 0x00])))

  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: params.subject,
      issuer: ca.intermediate.subjectName,
      notBefore: new Date(now - leafBackdateMs),
      notAfter: new Date(Math.min(now + params.validityMs, caNotAfter)),
      publicKey,
      signingKey: ca.signer.privateKey,
      signingAlgorithm: ca.signer.signingAlgorithm,
      extensions,
    },
    crypto,
  )
  const certPem = cert.toString('pem') + '\n'
  const record: IssuedRecord = {
    serial: cert.serialNumber.toLowerCase(),
    subject: cert.subject,
    sans: params.sans,
    profile: params.profile,
    ...(params.partner === undefined ? {} : { partner: params.partner }),
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    fingerprint256: createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex'),
    pem: certPem,
  }
  return { certPem, record }
}
