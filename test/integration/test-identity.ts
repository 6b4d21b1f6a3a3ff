/**
 * An Identity for a certificate made by openssl, with fields read by
 * node:crypto's X509Certificate — independently of the gateway's own
 * certificate-to-Identity code, so unit tests of header and assertion code do
 * not depend on it (and one bug cannot hide in both).
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Identity } from '../../src/proxy/context.js'

/** Identity of the leaf in `certPath`; `chainPaths` are intermediates the client would send. */
export function identityOf(certPath: string, chainPaths: readonly string[] = [], extra: Partial<Identity> = {}): Identity {
  const x = new X509Certificate(readFileSync(certPath))
  const sans = (x.subjectAltName ?? '').split(', ').filter(Boolean)
  const pick = (prefix: string) => sans.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length))
  const uris = pick('URI:')
  const spiffe = uris.filter((u) => u.startsWith('spiffe://'))
  return {
    subject: x.subject.split('\n').reverse().join(','),
    subjectFields: {},
    issuer: x.issuer.split('\n').reverse().join(','),
    serialNumber: x.serialNumber.toLowerCase(),
    fingerprint256: x.fingerprint256.replace(/:/g, '').toLowerCase(),
    san: { dns: pick('DNS:'), uri: uris, email: pick('email:'), ip: pick('IP Address:') },
    spiffeId: spiffe.length === 1 ? spiffe[0] : undefined,
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
    der: x.raw,
    chainDer: chainPaths.map((p) => new X509Certificate(readFileSync(p)).raw),
    ...extra,
  }
}
