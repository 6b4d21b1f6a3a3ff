/**
 * An RFC 6960 OCSP client: asks a responder about one certificate and
 * verifies the answer. Used by the stapler (`proxy/tls/ocsp-stapling.ts`)
 * for the gateway's own server certificates, and by OCSP checking of
 * partners' certificates.
 *
 * Decisions:
 * - Requests are POSTed (`application/ocsp-request`, RFC 6960 Appendix A)
 *   with a SHA-1 CertID: RFC 5019 §2.1.1 makes SHA-1 the one hash every
 *   responder must understand (it is a lookup key here, not a signature).
 *   Responses are matched whatever hash their CertID uses (SHA-1/256/384/512).
 * - The HTTP exchange is bounded in time and size (`ocsp-transport.ts`).
 * - The signer is the issuer itself, or a delegated responder certificate
 *   sent in `certs` that the issuer signed, that carries EKU
 *   id-kp-OCSPSigning and is valid at `now` (§4.2.2.2). Nothing else is
 *   trusted: not a certificate merely chaining to the same root, not the
 *   local trust store. The delegated signer's own revocation is not checked
 *   (the id-pkix-ocsp-nocheck convention, §4.2.2.2.1).
 * - Signatures: ECDSA and RSA PKCS#1 v1.5 with SHA-256/384/512, and Ed25519.
 *   SHA-1 and RSA-PSS signatures are refused as `bad_signature`: the former
 *   is forgeable in principle, the latter is rare enough that a bug in
 *   parsing its parameters is likelier than a responder using it.
 * - Time checks follow openssl's `OCSP_check_validity`: thisUpdate may be up
 *   to `MAX_CLOCK_SKEW_MS` in the future and nextUpdate up to as much in the
 *   past. Both failures are `stale` (the answer is not current). A response
 *   without nextUpdate is accepted (§4.2.2.1 allows it); callers decide how
 *   long to use it.
 * - An unknown *critical* extension in the response or the SingleResponse is
 *   `malformed` (X.509 semantics: we cannot honour it, so we must not act on it).
 * - A nonce is off by default: many CDN-fronted responders serve pre-signed
 *   responses and ignore it. When sent, it must come back unchanged.
 */
import { X509Certificate, createHash, randomBytes, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import {
  BasicOCSPResponse,
  CertID,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  Request,
  TBSRequest,
  id_kp_OCSPSigning,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
  type SingleResponse,
} from '@peculiar/asn1-ocsp'
import {
  AlgorithmIdentifier,
  AuthorityInfoAccessSyntax,
  Certificate,
  Extension,
  id_ad_ocsp,
  id_pe_authorityInfoAccess,
} from '@peculiar/asn1-x509'
import { crlReasonName } from '../shared/revocation-reasons.js'
import { OcspError } from './ocsp-error.js'
import { postOcspRequest } from './ocsp-transport.js'

/** One question to a responder. */
export interface OcspQuery {
  /** The certificate asked about (DER). */
  readonly certDer: Uint8Array
  /** Its issuer's certificate (DER). */
  readonly issuerDer: Uint8Array
  /** Responder URL (http: or https:). */
  readonly url: string
  /** Bound on the whole exchange: connect, send, headers and body. */
  readonly timeoutMs: number
  /** Injected clock, ms since the epoch. */
  readonly now: () => number
  /** Send a nonce and require it back. Default false: many CDN responders ignore nonces. */
  readonly nonce?: boolean
}

/** Re-exported so callers take the whole client API from this module. */
export { OcspError, type OcspErrorCode } from './ocsp-error.js'
export { MAX_RESPONSE_BYTES } from './ocsp-transport.js'

/** A verified answer about the certificate. */
export interface OcspAnswer {
  readonly status: 'good' | 'revoked' | 'unknown'
  /** ms; set when revoked. */
  readonly revokedAt?: number
  /** RFC 5280 reason name, when revoked and the responder gave one. */
  readonly reason?: string
  readonly thisUpdate: number
  readonly nextUpdate?: number
  /** The whole OCSPResponse, for stapling and caching. */
  readonly responseDer: Uint8Array
}

/** Tolerated clock difference with the responder (openssl's default validity period). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000
/** Nonce length sent (RFC 8954 §2.1: at least 1, at most 32 octets; 16 is common). */
const NONCE_OCTETS = 16
/** DER NULL: the parameters of the SHA-1 AlgorithmIdentifier, as openssl writes them. */
const NULL_PARAMS = new Uint8Array([0x05, 0x00]).buffer

const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
}

/** Signature OIDs accepted, with the digest node:crypto needs (null: the algorithm fixes it). */
const SIGNATURES: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
}

/** The first http(s) OCSP URL in the certificate's Authority Information Access, or undefined. */
export function ocspUrlOf(certDer: Uint8Array): string | undefined {
  let cert: Certificate
  try {
    cert = AsnConvert.parse(certDer, Certificate)
  } catch {
    return undefined
  }
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_pe_authorityInfoAccess)
  if (!ext) return undefined
  try {
    const aia = AsnConvert.parse(ext.extnValue, AuthorityInfoAccessSyntax)
    for (const d of aia) {
      const uri = d.accessMethod === id_ad_ocsp ? d.accessLocation.uniformResourceIdentifier : undefined
      if (uri && /^https?:\/\//i.test(uri)) return uri
    }
  } catch {
    return undefined
  }
  return undefined
}

/**
 * Asks `q.url` about `q.certDer` and verifies the answer (see
 * {@link verifyOcspResponse}). Rejects with an OcspError; never with anything else.
 */
export async function queryOcsp(q: OcspQuery): Promise<OcspAnswer> {
  const nonce = q.nonce ? randomBytes(NONCE_OCTETS) : undefined
  let body: Uint8Array
  try {
    body = buildRequest(q.certDer, q.issuerDer, nonce)
  } catch (cause) {
    throw new OcspError('malformed', 'the certificate or issuer does not parse', { cause })
  }
  const responseDer = await postOcspRequest(q.url, body, q.timeoutMs)
  return verifyOcspResponse(responseDer, { certDer: q.certDer, issuerDer: q.issuerDer, now: q.now, ...(nonce ? { nonce } : {}) })
}

/**
 * Verifies a DER OCSPResponse about `q.certDer` per RFC 6960 §3.2 (see the
 * module doc) and returns the status it states. `nonce`, when given, must be
 * echoed. Throws an OcspError.
 */
export function verifyOcspResponse(
  der: Uint8Array,
  q: Pick<OcspQuery, 'certDer' | 'issuerDer' | 'now'> & { readonly nonce?: Uint8Array },
): OcspAnswer {
  const now = q.now()
  const issuer = parseCertificate(q.issuerDer, 'issuer')
  const cert = parseCertificate(q.certDer, 'certificate')

  const response = parseDer(der, OCSPResponse, 'OCSPResponse')
  if (response.responseStatus !== OCSPResponseStatus.successful) {
    throw new OcspError('unsuccessful', `the responder answered ${OCSPResponseStatus[response.responseStatus] ?? response.responseStatus}`)
  }
  const bytes = response.responseBytes
  if (!bytes || bytes.responseType !== id_pkix_ocsp_basic) throw new OcspError('malformed', 'the response is not a BasicOCSPResponse')
  const basic = parseDer(new Uint8Array(bytes.response.buffer), BasicOCSPResponse, 'BasicOCSPResponse')
  const tbs = basic.tbsResponseDataRaw
  if (!tbs) throw new OcspError('malformed', 'the response data could not be located')

  const signer = findSigner(basic, issuer, now)
  if (!isSignatureValid(basic.signatureAlgorithm, new Uint8Array(tbs), new Uint8Array(basic.signature), signer)) {
    throw new OcspError('bad_signature', 'the response signature does not verify with the responder key')
  }

  const data = basic.tbsResponseData
  checkCriticalExtensions(data.responseExtensions, [id_pkix_ocsp_nonce], 'response')
  if (q.nonce) checkNonce(data.responseExtensions, q.nonce)

  const single = data.responses.find((r) => isCertIdFor(r.certID, cert.raw, issuer.raw))
  if (!single) throw new OcspError('wrong_certificate', 'the response does not answer for this certificate and issuer')
  checkCriticalExtensions(single.singleExtensions, [], 'single response')

  const thisUpdate = single.thisUpdate.getTime()
  const nextUpdate = single.nextUpdate?.getTime()
  if (thisUpdate > now + MAX_CLOCK_SKEW_MS) throw new OcspError('stale', `thisUpdate ${single.thisUpdate.toISOString()} is in the future (clock skew?)`)
  if (nextUpdate !== undefined && nextUpdate < now - MAX_CLOCK_SKEW_MS) throw new OcspError('stale', `the response expired at ${single.nextUpdate!.toISOString()}`)

  return { ...statusOf(single), thisUpdate, ...(nextUpdate !== undefined ? { nextUpdate } : {}), responseDer: der }
}

function statusOf(single: SingleResponse): Pick<OcspAnswer, 'status' | 'revokedAt' | 'reason'> {
  const s = single.certStatus
  if (s.revoked) {
    const code = s.revoked.revocationReason?.reason
    const reason = code === undefined ? undefined : crlReasonName(code)
    return { status: 'revoked', revokedAt: s.revoked.revocationTime.getTime(), ...(reason ? { reason } : {}) }
  }
  if (s.good !== undefined) return { status: 'good' }
  return { status: 'unknown' }
}

interface ParsedCert {
  readonly raw: Certificate
  readonly x509: X509Certificate
}

function parseCertificate(der: Uint8Array, what: string): ParsedCert {
  try {
    return { raw: AsnConvert.parse(der, Certificate), x509: new X509Certificate(der) }
  } catch (cause) {
    throw new OcspError('malformed', `the ${what} does not parse`, { cause })
  }
}

/** Parses exactly one DER value of `type`: trailing bytes are refused, like a truncated value. */
function parseDer<T>(der: Uint8Array, type: new () => T, what: string): T {
  try {
    if (derLength(der) !== der.length) throw new Error('trailing or missing bytes')
    return AsnConvert.parse(der, type)
  } catch (cause) {
    throw new OcspError('malformed', `the ${what} does not parse`, { cause })
  }
}

/** Total length of the DER TLV at the start of `der` (definite lengths only). */
function derLength(der: Uint8Array): number {
  const first = der[1]
  if (der.length < 2 || first === undefined) return -1
  if (first < 0x80) return 2 + first
  const n = first & 0x7f
  if (n === 0 || n > 4 || der.length < 2 + n) return -1
  let len = 0
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!
  return 2 + n + len
}

/**
 * The key that must have signed the response: the issuer's if the
 * responderID names the issuer, else an authorised delegated signer's from
 * `certs`. Throws unauthorized_signer when neither.
 */
function findSigner(basic: BasicOCSPResponse, issuer: ParsedCert, now: number): KeyObject {
  const id = basic.tbsResponseData.responderID
  const names = (c: Certificate): boolean => {
    if (id.byKey) return Buffer.from(id.byKey.buffer).equals(keyHash(c, 'sha1'))
    if (id.byName) return Buffer.from(AsnConvert.serialize(id.byName)).equals(Buffer.from(AsnConvert.serialize(c.tbsCertificate.subject)))
    return false
  }
  if (names(issuer.raw)) return issuer.x509.publicKey
  const candidate = (basic.certs ?? []).find(names)
  if (!candidate) throw new OcspError('unauthorized_signer', 'the responder is neither the issuer nor a certificate sent with the response')
  let delegated: X509Certificate
  try {
    delegated = new X509Certificate(Buffer.from(AsnConvert.serialize(candidate)))
  } catch (cause) {
    throw new OcspError('malformed', 'the responder certificate does not parse', { cause })
  }
  if (!delegated.checkIssued(issuer.x509) || !delegated.verify(issuer.x509.publicKey)) {
    throw new OcspError('unauthorized_signer', `the responder certificate (${delegated.subject.replace(/\n/g, ', ')}) is not issued by the certificate's issuer`)
  }
  if (!(delegated.keyUsage ?? []).includes(id_kp_OCSPSigning)) {
    throw new OcspError('unauthorized_signer', 'the responder certificate lacks extended key usage id-kp-OCSPSigning')
  }
  if (now < Date.parse(delegated.validFrom) || now > Date.parse(delegated.validTo)) {
    throw new OcspError('unauthorized_signer', `the responder certificate is not valid now (${delegated.validFrom} to ${delegated.validTo})`)
  }
  return delegated.publicKey
}

function isSignatureValid(alg: AlgorithmIdentifier, tbs: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  const digest = SIGNATURES[alg.algorithm]
  if (digest === undefined) throw new OcspError('bad_signature', `unsupported signature algorithm ${alg.algorithm}`)
  try {
    return nodeVerify(digest, tbs, { key, dsaEncoding: 'der' }, signature)
  } catch {
    return false // key type and algorithm disagree
  }
}

/** SHA-x of the subjectPublicKey bits (RFC 6960 §4.1.1 issuerKeyHash; byKey ResponderID with SHA-1). */
function keyHash(c: Certificate, hash: string): Buffer {
  return createHash(hash).update(new Uint8Array(c.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey)).digest()
}

function nameHash(c: Certificate, hash: string): Buffer {
  return createHash(hash).update(new Uint8Array(AsnConvert.serialize(c.tbsCertificate.subject))).digest()
}

function isCertIdFor(id: CertID, cert: Certificate, issuer: Certificate): boolean {
  const hash = HASHES[id.hashAlgorithm.algorithm]
  if (!hash) return false
  return (
    Buffer.from(id.serialNumber).equals(Buffer.from(cert.tbsCertificate.serialNumber)) &&
    Buffer.from(id.issuerNameHash.buffer).equals(nameHash(issuer, hash)) &&
    Buffer.from(id.issuerKeyHash.buffer).equals(keyHash(issuer, hash))
  )
}

function checkCriticalExtensions(exts: readonly Extension[] | undefined, known: readonly string[], where: string): void {
  const unknown = (exts ?? []).find((e) => e.critical && !known.includes(e.extnID))
  if (unknown) throw new OcspError('malformed', `the ${where} has an unknown critical extension ${unknown.extnID}`)
}

/** The nonce must come back as sent: RFC 8954's OCTET STRING in extnValue, or the raw bytes of older responders. */
function checkNonce(exts: readonly Extension[] | undefined, nonce: Uint8Array): void {
  const ext = exts?.find((e) => e.extnID === id_pkix_ocsp_nonce)
  const value = ext && Buffer.from(ext.extnValue.buffer)
  const wrapped = Buffer.from(AsnConvert.serialize(new OctetString(nonce)))
  if (!value || !(value.equals(wrapped) || value.equals(nonce))) {
    throw new OcspError('nonce_mismatch', ext ? 'the response nonce differs from the request nonce' : 'the responder did not echo the nonce')
  }
}

function buildRequest(certDer: Uint8Array, issuerDer: Uint8Array, nonce: Uint8Array | undefined): Uint8Array {
  const cert = AsnConvert.parse(certDer, Certificate)
  const issuer = AsnConvert.parse(issuerDer, Certificate)
  const reqCert = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: '1.3.14.3.2.26', parameters: NULL_PARAMS }),
    issuerNameHash: new OctetString(nameHash(issuer, 'sha1')),
    issuerKeyHash: new OctetString(keyHash(issuer, 'sha1')),
    serialNumber: cert.tbsCertificate.serialNumber,
  })
  const tbsRequest = new TBSRequest({ requestList: [new Request({ reqCert })] })
  if (nonce) {
    const extnValue = new OctetString(AsnConvert.serialize(new OctetString(nonce)))
    tbsRequest.requestExtensions = [new Extension({ extnID: id_pkix_ocsp_nonce, critical: false, extnValue })]
  }
  return new Uint8Array(AsnConvert.serialize(new OCSPRequest({ tbsRequest })))
}
