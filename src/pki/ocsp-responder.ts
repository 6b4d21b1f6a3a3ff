/**
 * The RFC 6960 OCSP responder core: DER OCSPRequest in, DER OCSPResponse
 * out, with no I/O of its own besides the injected status lookup. The HTTP
 * transport lives in `ocsp-http.ts`.
 *
 * Decisions, each a place where the RFCs leave a choice:
 * - Signed by a delegated OCSP-signing certificate (RFC 6960 §4.2.2.2):
 *   it must be issued by the CA it answers for and carry EKU id-kp-OCSPSigning
 *   (or be the CA itself). It is sent in `certs` so clients can validate it,
 *   and the responderID is byKey (SHA-1 of its public key), which survives
 *   re-issuing the signer under a new name.
 * - CertIDs are matched on issuerNameHash and issuerKeyHash with SHA-1
 *   (openssl's default), SHA-256, SHA-384 or SHA-512, hashes computed once
 *   at start-up. A CertID for another issuer (or an unsupported hash) is
 *   `unknown` in the signed response (§2.2: "usually because the request
 *   indicates an unrecognized issuer"). If *no* CertID is ours the whole
 *   request is answered `unauthorized`, unsigned (RFC 5019 §2.2.3: the
 *   responder cannot answer authoritatively), so we do not sign statements
 *   about other CAs' certificates.
 * - Malformed input of any kind is a `malformedRequest` response; a failing
 *   status lookup or an expired signer certificate is `internalError`. The
 *   responder never throws for request data.
 * - thisUpdate = producedAt = now; nextUpdate = now + validityMs, but never
 *   past the signer certificate's notAfter (a response must not outlive the
 *   key that vouches for it). Times are whole seconds (RFC 5280 §4.1.2.5.2).
 * - The nonce extension is echoed unchanged (RFC 8954); a response carrying
 *   one is marked not cacheable.
 * - revocationReason is omitted for `unspecified`, as on the CRL.
 */
import { X509Certificate, createHash } from 'node:crypto'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import {
  CertStatus,
  KeyHash,
  OCSPResponse,
  OCSPResponseStatus,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
  id_kp_OCSPSigning,
  id_pkix_ocsp_basic,
  type CertID,
} from '@peculiar/asn1-ocsp'
import { CRLReason, Certificate } from '@peculiar/asn1-x509'
import type { Clock } from '../shared/clock.js'
import { revocationReasons, type RevocationReason } from '../shared/revocation-reasons.js'
import { serialHexFromInteger } from './crl-serial.js'
import { resolveSigningKey, type PrivateKeyInput, type SigningKey } from './crl-signing-key.js'
import { DEFAULT_MAX_REQUESTS, parseOcspRequest } from './ocsp-request.js'

/** What the inventory says about one serial of our issuer. */
export type CertStatusResult =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAt: number; readonly reason: RevocationReason }
  | { readonly status: 'unknown' }

/**
 * Looks a serial up (normalised hex, see `crl-serial.ts`). Called once per
 * CertID; may be async (storage). A throw or rejection becomes `internalError`.
 */
export type StatusLookup = (serialHex: string) => CertStatusResult | Promise<CertStatusResult>

/** Everything the responder needs, resolved once by {@link createOcspResponder}. */
export interface OcspResponderDeps {
  readonly issuerCertPem: string
  /** The delegated OCSP-signing certificate (or the issuer itself). */
  readonly signerCertPem: string
  readonly signerKey: PrivateKeyInput
  readonly status: StatusLookup
  readonly clock: Clock
  /** How long a response is valid (nextUpdate − thisUpdate), in ms. */
  readonly validityMs: number
  /** CertIDs accepted in one request; default 16. */
  readonly maxRequests?: number
}

/** OCSPResponseStatus names (RFC 6960 §4.2.1). */
export type OcspResponseStatusName = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized'

/** A response plus what the HTTP layer needs for caching headers. */
export interface OcspAnswer {
  readonly der: Buffer
  readonly responseStatus: OcspResponseStatusName
  /** Per CertID, in request order; empty unless successful. */
  readonly certStatuses: readonly CertStatusResult['status'][]
  /** ms; set when successful. */
  readonly producedAt?: number
  readonly nextUpdate?: number
  /** True when shared caches may keep it until nextUpdate: successful, no nonce, no `unknown`. */
  readonly isCacheable: boolean
}

/** Answers one DER OCSPRequest; never rejects. */
export type OcspResponder = (requestDer: Uint8Array) => Promise<OcspAnswer>

const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
}

/**
 * Builds a responder for one issuer. Parses certificates, checks the signer
 * (key matches, issued by the issuer, EKU OCSPSigning) and precomputes the
 * issuer hashes here, so a misconfiguration fails at start-up (throws), not
 * on the first request.
 */
export function createOcspResponder(deps: OcspResponderDeps): OcspResponder {
  const issuer = new X509Certificate(deps.issuerCertPem)
  const signerCert = new X509Certificate(deps.signerCertPem)
  const signing = resolveSigningKey(deps.signerKey, deps.signerCertPem)
  checkSigner(issuer, signerCert)
  if (!(Number.isFinite(deps.validityMs) && deps.validityMs >= 1000)) throw new RangeError('validityMs must be at least 1000')

  const issuerIds = issuerHashes(issuer)
  const signerAsn = AsnConvert.parse(signerCert.raw, Certificate)
  const signerKeyHash = createHash('sha1').update(new Uint8Array(signerAsn.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey)).digest()
  const signerNotBefore = Date.parse(signerCert.validFrom)
  const signerNotAfter = Date.parse(signerCert.validTo)
  const maxRequests = deps.maxRequests ?? DEFAULT_MAX_REQUESTS

  const isOurs = (id: CertID): boolean => {
    const ours = issuerIds.get(id.hashAlgorithm.algorithm)
    if (ours === undefined || !hasNoOrNullParams(id.hashAlgorithm.parameters)) return false
    return ours.name.equals(new Uint8Array(id.issuerNameHash.buffer)) && ours.key.equals(new Uint8Array(id.issuerKeyHash.buffer))
  }

  return async (requestDer) => {
    try {
      const req = parseOcspRequest(requestDer, maxRequests)
      if (req === 'malformed') return unsigned('malformedRequest')
      if (!req.certIds.some(isOurs)) return unsigned('unauthorized')

      const now = Math.floor(deps.clock.now() / 1000) * 1000
      if (now < signerNotBefore || now > signerNotAfter) return unsigned('internalError')
      const nextUpdate = Math.floor(Math.min(now + deps.validityMs, signerNotAfter) / 1000) * 1000

      const statuses: CertStatusResult[] = []
      for (const id of req.certIds) {
        const serial = isOurs(id) ? serialHexFromInteger(new Uint8Array(id.serialNumber)) : undefined
        const result = serial === undefined ? ({ status: 'unknown' } as const) : await deps.status(serial)
        if (!isValidResult(result)) return unsigned('internalError')
        statuses.push(result)
      }

      const data = new ResponseData({
        responderID: new ResponderID({ byKey: new KeyHash(signerKeyHash) }),
        producedAt: new Date(now),
        responses: req.certIds.map((certID, i) => new SingleResponse({
          certID,
          certStatus: certStatus(statuses[i]!),
          thisUpdate: new Date(now),
          nextUpdate: new Date(nextUpdate),
        })),
      })
      if (req.nonce !== undefined) data.responseExtensions = [req.nonce]
      const basic = basicResponse(new Uint8Array(AsnConvert.serialize(data)), signing, signerCert.raw)
      const der = Buffer.from(AsnConvert.serialize(new OCSPResponse({
        responseStatus: OCSPResponseStatus.successful,
        responseBytes: new ResponseBytes({ responseType: id_pkix_ocsp_basic, response: new OctetString(basic) }),
      })))
      const certStatuses = statuses.map((s) => s.status)
      return {
        der,
        responseStatus: 'successful',
        certStatuses,
        producedAt: now,
        nextUpdate,
        isCacheable: req.nonce === undefined && !certStatuses.includes('unknown'),
      }
    } catch {
      // Status lookup failures and library bugs alike: the client gets a
      // well-formed internalError and can fall back; the process keeps serving.
      return unsigned('internalError')
    }
  }
}

/**
 * The brief's one-shot form: builds a responder and answers one request. Use
 * {@link createOcspResponder} in servers so the certificates are parsed once.
 */
export async function respond(requestDer: Uint8Array, deps: OcspResponderDeps): Promise<Buffer> {
  return (await createOcspResponder(deps)(requestDer)).der
}

type ErrorStatus = Exclude<OcspResponseStatusName, 'successful'>

/** The error responses are constants (status only), encoded once at load. */
const UNSIGNED: Readonly<Record<ErrorStatus, Buffer>> = Object.freeze(
  Object.fromEntries(
    (['malformedRequest', 'internalError', 'tryLater', 'sigRequired', 'unauthorized'] as const).map((s) => [
      s,
      Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: OCSPResponseStatus[s] }))),
    ]),
  ) as Record<ErrorStatus, Buffer>,
)

/** An OCSPResponse with only a status (no responseBytes), as §2.3 prescribes for errors. */
function unsigned(status: ErrorStatus): OcspAnswer {
  return { der: UNSIGNED[status], responseStatus: status, certStatuses: [], isCacheable: false }
}

function certStatus(r: CertStatusResult): CertStatus {
  if (r.status === 'good') return new CertStatus({ good: null })
  if (r.status === 'unknown') return new CertStatus({ unknown: null })
  const code = revocationReasons[r.reason]
  const info = new RevokedInfo({ revocationTime: new Date(Math.floor(r.revokedAt / 1000) * 1000) })
  if (code !== 0) info.revocationReason = new CRLReason(code)
  return new CertStatus({ revoked: info })
}

/** Guards against a storage layer returning something outside the contract. */
function isValidResult(r: CertStatusResult): boolean {
  if (r.status === 'good' || r.status === 'unknown') return true
  return r.status === 'revoked' && Number.isFinite(r.revokedAt) && Object.hasOwn(revocationReasons, r.reason)
}

/**
 * BasicOCSPResponse assembled around the exact bytes that were signed, with
 * the signer certificate copied verbatim (re-encoding it could alter bytes
 * its own signature covers).
 */
function basicResponse(tbs: Uint8Array, signing: SigningKey, signerDer: Buffer): Buffer {
  const sig = signing.sign(tbs)
  const bitString = tlv(0x03, Buffer.concat([Buffer.from([0]), sig]))
  const certs = tlv(0xa0, tlv(0x30, signerDer))
  return tlv(0x30, Buffer.concat([tbs, Buffer.from(AsnConvert.serialize(signing.algorithm)), bitString, certs]))
}

function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...len]), content])
}

function hasNoOrNullParams(p: ArrayBuffer | null | undefined): boolean {
  if (p === undefined || p === null) return true
  const b = new Uint8Array(p)
  return b.length === 2 && b[0] === 0x05 && b[1] === 0x00
}

/** issuerNameHash and issuerKeyHash per supported hash OID (RFC 6960 §4.1.1). */
function issuerHashes(issuer: X509Certificate): Map<string, { name: Buffer; key: Buffer }> {
  const asn = AsnConvert.parse(issuer.raw, Certificate)
  const nameDer = new Uint8Array(AsnConvert.serialize(asn.tbsCertificate.subject))
  const keyBits = new Uint8Array(asn.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey)
  const out = new Map<string, { name: Buffer; key: Buffer }>()
  for (const [oid, alg] of Object.entries(HASHES)) {
    out.set(oid, { name: createHash(alg).update(nameDer).digest(), key: createHash(alg).update(keyBits).digest() })
  }
  return out
}

/**
 * RFC 6960 §4.2.2.2: the signer is the CA itself, or a certificate the CA
 * issued with id-kp-OCSPSigning. Anything else yields responses clients reject.
 */
function checkSigner(issuer: X509Certificate, signer: X509Certificate): void {
  if (signer.raw.equals(issuer.raw)) return
  if (!signer.checkIssued(issuer) || !signer.verify(issuer.publicKey)) {
    throw new Error('OCSP signer certificate is not issued by the issuer certificate')
  }
  if (!(signer.keyUsage ?? []).includes(id_kp_OCSPSigning)) {
    throw new Error('OCSP signer certificate lacks extended key usage id-kp-OCSPSigning')
  }
}
