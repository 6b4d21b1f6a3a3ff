/**
 * Client certificate → Identity, once per connection.
 *
 * Cost, measured on Node 20 / OpenSSL 3.0 for an EC P-256 leaf with four SANs:
 * our DER reader (cert-fields.ts) ~25 µs plus SHA-256 ~5 µs. The alternatives
 * were slower and weaker: @peculiar/x509 parse + SAN ~1.1 ms; node:crypto
 * `new X509Certificate(der)` ~120 µs and its `subjectAltName` is a string that
 * must be re-parsed (values with "," or quotes come JSON-quoted), IPv6 printed
 * unabbreviated, and no keyUsage at all. Reading DER also gives names in
 * certificate order, which Node's subject object loses.
 */
import { createHash } from 'node:crypto'
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls'
import type { Identity } from '../context.js'
import { readCertFields, type CertFields } from './cert-fields.js'

/** Certificates above the leaf, as verification found them. */
export interface VerifiedChain {
  /** DER of the CA that signed the leaf (an intermediate or the anchor). */
  readonly issuerDer: Buffer | undefined
  /** DER of the intermediates between leaf and anchor, leaf side first. */
  readonly intermediatesDer: readonly Buffer[]
}

/** Lowercase hex SHA-256 of DER bytes. */
export function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest().toString('hex') // 4x faster than digest('hex') on Node 20
}

/**
 * SPIFFE ID syntax (SPIFFE-ID spec 2.1-2.3): lowercase trust domain of
 * [a-z0-9.-_], then path segments of [A-Za-z0-9.-_] that are not "." or "..";
 * no query, fragment, port, user info or trailing slash.
 */
export function isSpiffeId(uri: string): boolean {
  if (uri.length > 2048) return false
  const m = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)*)$/.exec(uri)
  if (!m) return false
  return m[2]!.split('/').every((seg) => seg !== '.' && seg !== '..')
}

/**
 * The one SPIFFE ID of a certificate: an X509-SVID has exactly one URI SAN
 * with the spiffe scheme. Zero, several, or a malformed one give undefined,
 * so a matcher on spiffeId never picks one of several at random.
 */
function spiffeIdOf(uris: readonly string[]): string | undefined {
  const spiffe = uris.filter((u) => u.slice(0, 7).toLowerCase() === 'spiffe:')
  return spiffe.length === 1 && isSpiffeId(spiffe[0]!) ? spiffe[0] : undefined
}

/** Builds an Identity from a parsed leaf and the chain verification found. Frozen. */
export function identityFromCertificate(der: Buffer, fields: CertFields, chain: VerifiedChain): Identity {
  const san = Object.freeze({
    dns: Object.freeze([...fields.san.dns]),
    uri: Object.freeze([...fields.san.uri]),
    email: Object.freeze([...fields.san.email]),
    ip: Object.freeze([...fields.san.ip]),
  })
  const spiffeId = spiffeIdOf(san.uri)
  const identity: Identity = {
    subject: fields.subject.text,
    subjectFields: fields.subject.fields,
    issuer: fields.issuer.text,
    serialNumber: fields.serialNumber,
    fingerprint256: sha256Hex(der),
    ...(chain.issuerDer ? { issuerFingerprint256: sha256Hex(chain.issuerDer) } : {}),
    san,
    ...(spiffeId !== undefined ? { spiffeId } : {}),
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    der,
    chainDer: Object.freeze([...chain.intermediatesDer]),
  }
  return Object.freeze(identity)
}

/**
 * Identity from Node's peer certificate object. Without `verified`, the issuer
 * and intermediates are taken from Node's chain (`issuerCertificate` links,
 * self-signed certificates excluded as anchors); verifyPeer passes the chain
 * it verified instead, because Node completes the chain from the default
 * context's store and, on resumed sessions, does not have the client's
 * intermediates at all. Throws DerError when the certificate is malformed.
 */
export function identityFromPeer(peer: PeerCertificate | DetailedPeerCertificate, verified?: VerifiedChain): Identity {
  const der = peer.raw
  const fields = readCertFields(der)
  if (verified) return identityFromCertificate(der, fields, verified)
  const above: Buffer[] = []
  let link = 'issuerCertificate' in peer ? peer.issuerCertificate : undefined
  const seen = new Set<DetailedPeerCertificate>()
  while (link && link.raw && !seen.has(link) && !link.raw.equals(der)) {
    seen.add(link)
    above.push(link.raw)
    if (link.issuerCertificate === link) break
    link = link.issuerCertificate
  }
  const intermediatesDer = above.filter((c) => !isSelfIssued(c))
  return identityFromCertificate(der, fields, { issuerDer: above[0], intermediatesDer })
}

/** Subject equals issuer: a root, so an anchor rather than an intermediate the client sent. */
function isSelfIssued(der: Buffer): boolean {
  const f = readCertFields(der)
  return f.subject.text === f.issuer.text
}
