/**
 * Builds the CA's X.509 v2 CRL (RFC 5280 §5). A pure function of its inputs:
 * the caller (the CRL publisher loop) decides when to build, supplies the
 * revoked entries from storage, the next CRL number and the validity window
 * from the injected clock, and stores or serves the result.
 *
 * What goes in, and why:
 * - version v2, because extensions are present (§5.1.2.1);
 * - issuer copied byte for byte from the issuer certificate's subject, so
 *   path validators match it by binary comparison as well as by RFC 4518
 *   normalisation;
 * - thisUpdate and nextUpdate, whole seconds; nextUpdate is mandatory for
 *   conforming CAs (§5.1.2.5) and is what relying parties cache against;
 * - cRLNumber (§5.2.3, required) and authorityKeyIdentifier (§5.2.1,
 *   required) with the issuer's subjectKeyIdentifier, so a validator can pick
 *   the right key after the CA is re-keyed under the same name;
 * - one entry per serial in ascending numeric order (deterministic output
 *   and easy diffing), each with a reasonCode extension unless the reason is
 *   `unspecified`, which §5.3.1 says SHOULD be absent.
 *
 * Throws on invalid input (bad serial, duplicate serial, unknown reason,
 * nextUpdate not after thisUpdate, key not matching the issuer, issuer not
 * allowed to sign CRLs): these are bugs or configuration errors, never
 * request-time conditions.
 */
import 'reflect-metadata'
import { createHash, webcrypto } from 'node:crypto'
import { AsnConvert } from '@peculiar/asn1-schema'
import { AuthorityKeyIdentifier, Certificate, KeyIdentifier, id_ce_authorityKeyIdentifier, id_ce_cRLNumber } from '@peculiar/asn1-x509'
import { Extension, Name, PemConverter, X509Certificate, X509CrlGenerator } from '@peculiar/x509'
import { revocationReasons, type RevocationReason } from '../shared/revocation-reasons.js'
import { normalizeSerialHex } from './crl-serial.js'
import { resolveSigningKey, type PrivateKeyInput } from './crl-signing-key.js'

/** One revoked certificate as stored in the inventory. */
export interface RevokedEntry {
  /** Certificate serial in hex (any case, optional ':' separators). */
  readonly serial: string
  /** Revocation time, ms since the epoch (truncated to whole seconds). */
  readonly revokedAt: number
  readonly reason: RevocationReason
}

/** Everything needed to build one CRL; all times are ms since the epoch. */
export interface BuildCrlInput {
  readonly issuerCertPem: string
  readonly issuerKey: PrivateKeyInput
  readonly revoked: readonly RevokedEntry[]
  /** Monotonically increasing per issuer; 0 ≤ n < 2^159 (20 octets, §5.2.3). */
  readonly crlNumber: bigint
  readonly thisUpdate: number
  readonly nextUpdate: number
}

/** The signed CRL in both encodings: DER for HTTP (`application/pkix-crl`), PEM for files. */
export interface BuiltCrl {
  readonly der: Buffer
  readonly pem: string
}

const MAX_CRL_NUMBER = 1n << 159n
const KEY_USAGE_OID = '2.5.29.15'
const SKI_OID = '2.5.29.14'

/** Signs a CRL for `issuerCertPem`'s CA listing `revoked`. See the module doc for the contents. */
export async function buildCrl(input: BuildCrlInput): Promise<BuiltCrl> {
  const signing = resolveSigningKey(input.issuerKey, input.issuerCertPem)
  const issuer = new X509Certificate(input.issuerCertPem)
  checkIssuerMaySignCrls(issuer)

  if (input.crlNumber < 0n || input.crlNumber >= MAX_CRL_NUMBER) throw new Error('crlNumber out of range')
  const thisUpdate = wholeSeconds(input.thisUpdate)
  const nextUpdate = wholeSeconds(input.nextUpdate)
  if (!(nextUpdate > thisUpdate)) throw new Error('nextUpdate must be after thisUpdate')

  const entries = sortedEntries(input.revoked)
  const cryptoKey = await webcrypto.subtle.importKey(
    'pkcs8',
    signing.keyObject.export({ type: 'pkcs8', format: 'der' }),
    signing.webCrypto,
    false,
    ['sign'],
  )
  const crl = await X509CrlGenerator.create({
    // Parsed from the certificate's own DER so the encoding is kept as issued.
    issuer: new Name(issuerSubjectDer(issuer)),
    thisUpdate: new Date(thisUpdate),
    nextUpdate: new Date(nextUpdate),
    signingAlgorithm: { name: signing.webCrypto.name, hash: signing.hash } as EcdsaParams,
    signingKey: cryptoKey as CryptoKey,
    extensions: [
      new Extension(id_ce_authorityKeyIdentifier, false, authorityKeyIdentifier(issuer)),
      new Extension(id_ce_cRLNumber, false, derInteger(input.crlNumber)),
    ],
    entries: entries.map((e) => ({
      serialNumber: e.serial,
      revocationDate: new Date(e.revokedAt),
      // 0 (unspecified) is falsy, so the generator leaves the extension out, as §5.3.1 asks.
      reason: revocationReasons[e.reason],
    })),
  })
  const der = Buffer.from(crl.rawData)
  return { der, pem: PemConverter.encode(crl.rawData, 'X509 CRL') + '\n' }
}

function wholeSeconds(ms: number): number {
  if (!Number.isFinite(ms)) throw new Error('time must be a finite number of ms')
  return Math.floor(ms / 1000) * 1000
}

function sortedEntries(revoked: readonly RevokedEntry[]): { serial: string; revokedAt: number; reason: RevocationReason }[] {
  const seen = new Set<string>()
  const out = revoked.map((e) => {
    const serial = normalizeSerialHex(e.serial)
    if (serial === undefined) throw new Error(`invalid serial: ${e.serial}`)
    if (seen.has(serial)) throw new Error(`duplicate serial: ${serial}`)
    seen.add(serial)
    if (!Object.hasOwn(revocationReasons, e.reason)) throw new Error(`invalid revocation reason: ${String(e.reason)}`)
    return { serial, revokedAt: wholeSeconds(e.revokedAt), reason: e.reason }
  })
  return out.sort((a, b) => {
    const x = BigInt(`0x${a.serial}`)
    const y = BigInt(`0x${b.serial}`)
    return x < y ? -1 : x > y ? 1 : 0
  })
}

/** RFC 5280 §4.2.1.3: a CRL issuer with a keyUsage extension must assert cRLSign. */
function checkIssuerMaySignCrls(issuer: X509Certificate): void {
  const ku = issuer.getExtension(KEY_USAGE_OID)
  if (ku === null) return
  const bits = parseKeyUsageBits(Buffer.from(ku.value))
  if (!bits.has(6)) throw new Error('issuer certificate keyUsage lacks cRLSign')
}

/** Bit numbers set in a DER BIT STRING (keyUsage). */
function parseKeyUsageBits(der: Buffer): Set<number> {
  const set = new Set<number>()
  // 03 len unused b0 [b1]; keyUsage never needs more than 2 content bytes + unused-bits octet.
  if (der[0] !== 0x03) return set
  for (let i = 3; i < der.length; i++) {
    for (let b = 0; b < 8; b++) if ((der[i]! & (0x80 >> b)) !== 0) set.add((i - 3) * 8 + b)
  }
  return set
}

function issuerSubjectDer(issuer: X509Certificate): ArrayBuffer {
  const cert = AsnConvert.parse(issuer.rawData, Certificate)
  return AsnConvert.serialize(cert.tbsCertificate.subject)
}

/**
 * The issuer's subjectKeyIdentifier, or (when the CA has none) the RFC 5280
 * §4.2.1.2 method 1 value: SHA-1 of the subjectPublicKey bits.
 */
function authorityKeyIdentifier(issuer: X509Certificate): ArrayBuffer {
  const ski = issuer.getExtension(SKI_OID)
  let keyId: Uint8Array
  if (ski !== null) {
    keyId = new Uint8Array(AsnConvert.parse(ski.value, KeyIdentifier).buffer)
  } else {
    const cert = AsnConvert.parse(issuer.rawData, Certificate)
    keyId = createHash('sha1').update(new Uint8Array(cert.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey)).digest()
  }
  return AsnConvert.serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) }))
}

/** DER INTEGER for a non-negative bigint (CRLNumber may exceed 2^53). */
function derInteger(n: bigint): ArrayBuffer {
  let hex = n.toString(16)
  if (hex.length % 2 === 1) hex = `0${hex}`
  let content = Buffer.from(hex, 'hex')
  if ((content[0]! & 0x80) !== 0) content = Buffer.concat([Buffer.from([0]), content])
  const out = Buffer.concat([Buffer.from([0x02, content.length]), content])
  return out.buffer.slice(out.byteOffset, out.byteOffset + out.length)
}
