/**
 * Strict parsing of an RFC 6960 OCSPRequest into what the responder needs:
 * the CertIDs and the nonce. Anything the responder could misread is refused
 * as `malformed` (answered with `malformedRequest`), never thrown:
 *
 * - the DER must be one definite-length SEQUENCE with no trailing bytes;
 * - version must be v1; the request list must hold 1..maxRequests entries
 *   (bounding the signing and lookup work one request can cause);
 * - an extension may appear once; an unknown *critical* extension is refused
 *   (X.509 critical semantics: we must not answer as if we had honoured it);
 * - the nonce (id-pkix-ocsp-nonce) must be 1..32 octets, RFC 8954 §2.1.
 *
 * The optional request signature is not verified: Portcullis's OCSP answers
 * are public information (as for every public CA's responder), so requests
 * are not authenticated, and a signature we do not check must not be
 * mistaken for an authorisation.
 */
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import { OCSPRequest, id_pkix_ocsp_nonce, type CertID } from '@peculiar/asn1-ocsp'
import { Extension } from '@peculiar/asn1-x509'

/** A request the responder can answer. */
export interface ParsedOcspRequest {
  readonly certIds: readonly CertID[]
  /** The request's nonce extension, echoed unchanged in the response. */
  readonly nonce?: Extension
}

/** Upper bound on CertIDs per request unless the caller sets another. */
export const DEFAULT_MAX_REQUESTS = 16

/** RFC 8954 §2.1: nonces are at most 32 octets. */
const MAX_NONCE_OCTETS = 32

/**
 * Parses `der` as an OCSPRequest. Returns 'malformed' for anything that is
 * not a well-formed request within the limits above.
 */
export function parseOcspRequest(der: Uint8Array, maxRequests = DEFAULT_MAX_REQUESTS): ParsedOcspRequest | 'malformed' {
  if (!isSingleDerSequence(der)) return 'malformed'
  let req: OCSPRequest
  try {
    req = AsnConvert.parse(der, OCSPRequest)
  } catch {
    return 'malformed'
  }
  const tbs = req.tbsRequest
  if (tbs.version !== 0) return 'malformed'
  const list = tbs.requestList
  if (!Array.isArray(list) || list.length === 0 || list.length > maxRequests) return 'malformed'

  const exts = checkExtensions(tbs.requestExtensions ?? [], [id_pkix_ocsp_nonce])
  if (exts === 'malformed') return 'malformed'
  for (const r of list) {
    if (checkExtensions(r.singleRequestExtensions ?? [], []) === 'malformed') return 'malformed'
  }
  const nonce = exts.get(id_pkix_ocsp_nonce)
  if (nonce !== undefined && !isValidNonce(new Uint8Array(nonce.extnValue.buffer))) return 'malformed'
  const certIds = list.map((r) => r.reqCert)
  return nonce === undefined ? { certIds } : { certIds, nonce }
}

/** Duplicate IDs and unknown critical extensions are malformed; unknown non-critical ones are ignored. */
function checkExtensions(exts: readonly Extension[], known: readonly string[]): Map<string, Extension> | 'malformed' {
  const byId = new Map<string, Extension>()
  for (const e of exts) {
    if (byId.has(e.extnID)) return 'malformed'
    if (e.critical && !known.includes(e.extnID)) return 'malformed'
    byId.set(e.extnID, e)
  }
  return byId
}

/**
 * RFC 8954 encodes the nonce as an OCTET STRING inside extnValue; older
 * clients put the raw bytes there. Either way the nonce proper must be
 * 1..32 octets.
 */
function isValidNonce(extnValue: Uint8Array): boolean {
  let nonce = extnValue
  if (extnValue[0] === 0x04 && isSingleDerTlv(extnValue, 0x04)) {
    try {
      nonce = new Uint8Array(AsnConvert.parse(extnValue, OctetString).buffer)
    } catch {
      return false
    }
  }
  return nonce.length >= 1 && nonce.length <= MAX_NONCE_OCTETS
}

function isSingleDerSequence(der: Uint8Array): boolean {
  return isSingleDerTlv(der, 0x30)
}

/** One TLV with `tag`, a minimal definite length, and nothing after it. */
function isSingleDerTlv(der: Uint8Array, tag: number): boolean {
  if (der.length < 2 || der[0] !== tag) return false
  const first = der[1]!
  if (first < 0x80) return 2 + first === der.length
  const n = first & 0x7f
  if (n === 0 || n > 4 || der.length < 2 + n) return false // 0x80 is BER indefinite length
  if (der[2] === 0) return false // non-minimal length encoding
  let len = 0
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!
  if (len < 0x80) return false // long form where short form was required
  return 2 + n + len === der.length
}
