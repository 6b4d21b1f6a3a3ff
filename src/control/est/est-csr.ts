/**
 * The EST request body and the re-enrollment rule, before the CA's own CSR
 * checks (`signCsr`) run.
 *
 * Decisions:
 * - The body is base64 of a DER PKCS#10 (RFC 7030 §4.2.1), with or without
 *   line breaks and with or without a Content-Transfer-Encoding header (RFC
 *   8951 §3.2). Anything else — PEM, binary DER, stray characters — is
 *   refused rather than guessed at. It becomes one PEM block for `signCsr`,
 *   so EST and `portcullis ca sign` judge a CSR with the same code.
 * - Re-enrollment keeps the identity (RFC 7030 §4.2.2): the CSR's subject
 *   and subjectAltName must equal the current certificate's. Subjects are
 *   compared attribute by attribute in order (as `x509.Name` reads them, so
 *   PrintableString and UTF8String spellings of one value are equal); SANs
 *   as sets (order carries no meaning), DNS names without case. The key may
 *   change (re-key) or not (renew): both are re-enrollment.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { maxCsrBytes } from '../../pki/ca-sign-csr.js'

/** Largest accepted body: the CA's CSR cap (a PEM is longer than the base64 DER in it). */
export const maxEstBodyBytes = maxCsrBytes

const base64Body = /^[A-Za-z0-9+/]+={0,2}$/
const sanOid = '2.5.29.17'

/** The PEM CSR in an EST body, or undefined when the body is not base64 of a DER SEQUENCE. */
export function estBodyToPem(body: Buffer): string | undefined {
  const text = body.toString('latin1').replace(/[\r\n\t ]/g, '')
  if (text.length === 0 || text.length % 4 !== 0 || !base64Body.test(text)) return undefined
  const der = Buffer.from(text, 'base64')
  // A DER SEQUENCE, and canonical base64 (no bits hidden in padding).
  if (der[0] !== 0x30 || der.toString('base64') !== text) return undefined
  const lines = text.match(/.{1,64}/g) ?? []
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`
}

/** SANs as comparable strings: `dns:name` (lower case), `url:…`, `ip:…`, `email:…`, sorted. */
function sanSet(extensions: readonly x509.Extension[]): string[] | undefined {
  const exts = extensions.filter((e) => e.type === sanOid)
  if (exts.length > 1) return undefined
  const ext = exts[0]
  if (!ext) return []
  const items = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items
  return items.map((n) => `${n.type}:${n.type === 'dns' ? n.value.toLowerCase() : n.value}`).sort()
}

/**
 * Why a re-enrollment CSR does not keep the current certificate's identity,
 * or undefined when subject and SANs match. Throws on a CSR that does not
 * parse (the caller has parsed it with `estBodyToPem` and lets `signCsr`
 * report malformed input).
 */
export function reenrollMismatch(csrPem: string, current: x509.X509Certificate): string | undefined {
  const csr = new x509.Pkcs10CertificateRequest(csrPem)
  const wanted = JSON.stringify(current.subjectName.toJSON())
  if (JSON.stringify(csr.subjectName.toJSON()) !== wanted) {
    return `subject "${csr.subject}" differs from the current certificate's "${current.subject}"`
  }
  const csrSans = sanSet(csr.extensions)
  const certSans = sanSet(current.extensions)
  if (!csrSans || !certSans) return 'more than one subjectAltName extension'
  if (csrSans.join(',') !== certSans.join(',')) {
    return `subjectAltName [${csrSans.join(', ')}] differs from the current certificate's [${certSans.join(', ')}]`
  }
  return undefined
}
