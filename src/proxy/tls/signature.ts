/**
 * Checks that a certificate was signed by an issuer's key, from the parsed
 * TBS bytes, algorithm and signature (cert-fields.ts) with `crypto.verify`.
 *
 * Why not `X509Certificate.verify`: it needs an X509Certificate of the leaf,
 * and on the server the only cheap one, `socket.getPeerX509Certificate()`,
 * empties the peer chain in Node 20 (a later `getPeerCertificate(true)` sees
 * the leaf alone); `new X509Certificate(der)` costs ~115 µs more than this.
 *
 * Only algorithms a gateway should accept in 2025: ECDSA and RSA (PKCS #1
 * v1.5 or PSS) with SHA-256/384/512, Ed25519, Ed448. SHA-1 and MD5 are
 * "unsupported", which refuses the certificate.
 */
import { constants, verify, type KeyObject } from 'node:crypto'
import type { AlgorithmIdentifier, CertFields } from './cert-fields.js'
import { DerError, DerReader, Tag, readOid } from './der.js'

/** Names of refused algorithms a partner's CA may still use, for refusal details ("ecdsa-with-SHA1", not an OID). */
const refusedNames: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.2': 'md2WithRSAEncryption',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10040.4.3': 'dsa-with-SHA1',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS with SHA-1 or mismatched parameters',
}

/** "ecdsa-with-SHA1 (1.2.840.10045.4.1)" for known weak algorithms, the bare OID otherwise. */
export function describeSignatureAlgorithm(oid: string): string {
  const name = refusedNames[oid]
  return name ? `${name} (${oid})` : oid
}

/** The outcome: only "valid" lets a path go on. */
export type SignatureCheck = 'valid' | 'invalid' | 'unsupported'

const ecdsa: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
}
const rsaPkcs1: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
}
const hashes: Readonly<Record<string, string>> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
}
const oidRsaPss = '1.2.840.113549.1.1.10'
const oidMgf1 = '1.2.840.113549.1.1.8'
const eddsa = new Set(['1.3.101.112', '1.3.101.113'])

/** AlgorithmIdentifier inside an explicit tag: its OID and (for MGF1) the nested hash OID. */
function readHashAlgorithm(buf: Buffer, start: number, end: number): { oid: string; inner: string | undefined } {
  const seq = DerReader.inside(buf, new DerReader(buf, start, end).next(Tag.sequence))
  const oid = readOid(buf, seq.next(Tag.oid))
  let inner: string | undefined
  if (seq.peekTag() === Tag.sequence) inner = readHashAlgorithm(buf, seq.next().start, end).oid
  else seq.optional(0x05) // NULL parameters
  return { oid, inner }
}

/**
 * RSASSA-PSS parameters (RFC 4055 3.1): hash and MGF1 hash must be the same
 * SHA-2; defaults (SHA-1) are refused. Returns undefined when unsupported.
 */
function pssParams(params: Buffer | undefined): { hash: string; saltLength: number } | undefined {
  if (!params) return undefined
  const seq = DerReader.inside(params, new DerReader(params).next(Tag.sequence))
  const hashTag = seq.optional(0xa0)
  const mgfTag = seq.optional(0xa1)
  const saltTag = seq.optional(0xa2)
  if (!hashTag || !mgfTag) return undefined
  const hash = hashes[readHashAlgorithm(params, hashTag.body, hashTag.end).oid]
  const mgf = readHashAlgorithm(params, mgfTag.body, mgfTag.end)
  if (!hash || mgf.oid !== oidMgf1 || mgf.inner === undefined || hashes[mgf.inner] !== hash) return undefined
  let saltLength = 20
  if (saltTag) {
    const int = new DerReader(params, saltTag.body, saltTag.end).next(Tag.integer)
    if (int.end - int.body > 2) return undefined
    saltLength = params.readUIntBE(int.body, int.end - int.body)
  }
  return { hash, saltLength }
}

/** Whether a signature algorithm is one we verify at all (cheap; no key needed). */
export function isAcceptedAlgorithm(algorithm: AlgorithmIdentifier): boolean {
  const { oid, params } = algorithm
  if (ecdsa[oid] || rsaPkcs1[oid] || eddsa.has(oid)) return true
  if (oid !== oidRsaPss) return false
  try {
    return pssParams(params) !== undefined
  } catch {
    return false
  }
}

/** Whether `fields` (a parsed certificate, or a CRL's signed part) carries a valid signature by `issuerKey`. */
export function checkSignature(fields: Pick<CertFields, 'signatureAlgorithm' | 'tbs' | 'signature'>, issuerKey: KeyObject): SignatureCheck {
  const { oid, params } = fields.signatureAlgorithm
  try {
    let ok: boolean
    if (ecdsa[oid]) ok = verify(ecdsa[oid], fields.tbs, issuerKey, fields.signature)
    else if (rsaPkcs1[oid]) ok = verify(rsaPkcs1[oid], fields.tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PADDING }, fields.signature)
    else if (eddsa.has(oid)) ok = verify(null, fields.tbs, issuerKey, fields.signature)
    else if (oid === oidRsaPss) {
      const pss = pssParams(params)
      if (!pss) return 'unsupported'
      ok = verify(pss.hash, fields.tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength }, fields.signature)
    } else return 'unsupported'
    return ok ? 'valid' : 'invalid'
  } catch (err) {
    if (err instanceof DerError) return 'unsupported'
    return 'invalid' // key type and algorithm do not fit, malformed signature: not a valid signature by this key
  }
}
