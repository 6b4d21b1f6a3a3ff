/**
 * Maps the errors undici and Node raise while talking to an upstream to our
 * denial reasons, by their stable `code` only (never by message text, which
 * changes between releases). This runs on failure paths only.
 *
 * Decisions:
 * - A connect timeout (UND_ERR_CONNECT_TIMEOUT) is `upstream_connect_failed`,
 *   not `upstream_timeout`: the request was never sent, so it is safe to retry
 *   on another target, and operators read it with the other connect faults
 *   (refused, DNS, unreachable), as Envoy's UF flag does.
 * - `upstream_timeout` is a target that accepted the request and then did not
 *   answer (response headers) or went quiet mid-body.
 * - TLS alerts raised after the handshake looked complete on our side (TLS 1.3
 *   sends "certificate required" after the client's Finished) are still
 *   `upstream_tls_failed`: the code says TLS, whatever the phase.
 * - undici 7 raises llhttp parse errors as HTTPParserError without a code
 *   (its numeric-to-name lookup yields undefined), so those are recognised by
 *   their class, the next most stable identity.
 * - undici reports an unsolicited 100/101 from the upstream as a plain socket
 *   error (UND_ERR_SOCKET), indistinguishable by code from a close, so those
 *   show as `upstream_reset`.
 */
import { errors } from 'undici'
import type { Reason } from '../../shared/reasons.js'

/** Code of the error our SPKI pin check returns (see connector.ts). */
export const PIN_MISMATCH_CODE = 'ERR_PORTCULLIS_SPKI_PIN_MISMATCH'

const byCode: ReadonlyMap<string, Reason> = new Map<string, Reason>([
  // The connection could not be made; nothing was sent.
  ['UND_ERR_CONNECT_TIMEOUT', 'upstream_connect_failed'],
  ['ECONNREFUSED', 'upstream_connect_failed'],
  ['ENOTFOUND', 'upstream_connect_failed'],
  ['EAI_AGAIN', 'upstream_connect_failed'],
  ['EAI_FAIL', 'upstream_connect_failed'],
  ['EHOSTUNREACH', 'upstream_connect_failed'],
  ['EHOSTDOWN', 'upstream_connect_failed'],
  ['ENETUNREACH', 'upstream_connect_failed'],
  ['ENETDOWN', 'upstream_connect_failed'],
  ['EADDRNOTAVAIL', 'upstream_connect_failed'],
  ['ETIMEDOUT', 'upstream_connect_failed'],
  // Certificate verification (OpenSSL X509_V_ERR names as Node reports them) and pinning.
  [PIN_MISMATCH_CODE, 'upstream_tls_failed'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'upstream_tls_failed'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'upstream_tls_failed'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'upstream_tls_failed'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'upstream_tls_failed'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'upstream_tls_failed'],
  ['CERT_HAS_EXPIRED', 'upstream_tls_failed'],
  ['CERT_NOT_YET_VALID', 'upstream_tls_failed'],
  ['CERT_SIGNATURE_FAILURE', 'upstream_tls_failed'],
  ['CERT_REVOKED', 'upstream_tls_failed'],
  ['CERT_UNTRUSTED', 'upstream_tls_failed'],
  ['CERT_REJECTED', 'upstream_tls_failed'],
  ['INVALID_CA', 'upstream_tls_failed'],
  ['INVALID_PURPOSE', 'upstream_tls_failed'],
  ['PATH_LENGTH_EXCEEDED', 'upstream_tls_failed'],
  ['HOSTNAME_MISMATCH', 'upstream_tls_failed'],
  ['EPROTO', 'upstream_tls_failed'],
  // The upstream accepted the request and then did not answer in time.
  ['UND_ERR_HEADERS_TIMEOUT', 'upstream_timeout'],
  ['UND_ERR_BODY_TIMEOUT', 'upstream_timeout'],
  // The connection broke.
  ['ECONNRESET', 'upstream_reset'],
  ['ECONNABORTED', 'upstream_reset'],
  ['EPIPE', 'upstream_reset'],
  ['UND_ERR_SOCKET', 'upstream_reset'],
  // The upstream spoke, but not valid HTTP/1.1.
  ['UND_ERR_HEADERS_OVERFLOW', 'upstream_bad_response'],
  ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream_bad_response'],
  ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'upstream_bad_response'],
  // Our own pools were closed (reload drain, shutdown).
  ['UND_ERR_CLOSED', 'upstream_unavailable'],
  ['UND_ERR_DESTROYED', 'upstream_unavailable'],
  // The client's body did not match its Content-Length (it went away or lied).
  ['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'bad_request'],
  // Cancelled from our side (client gone, total timeout).
  ['UND_ERR_ABORTED', 'client_closed'],
  ['UND_ERR_ABORT', 'client_closed'],
  ['ABORT_ERR', 'client_closed'],
  // undici refused what we asked for: a header or path the caller should have refused first. A bug.
  ['UND_ERR_INVALID_ARG', 'internal_error'],
  ['UND_ERR_NOT_SUPPORTED', 'internal_error'],
])

/**
 * The reason for an error, or undefined when it is not one we know. Known
 * codes first; `ERR_SSL_*` / `ERR_TLS_*` are TLS failures; `HPE_*` codes and
 * undici's HTTPParserError are invalid responses.
 */
export function reasonForError(err: unknown): Reason | undefined {
  const byItsCode = reasonForCode((err as { code?: unknown } | null)?.code)
  if (byItsCode !== undefined) return byItsCode
  if (err instanceof errors.HTTPParserError) return 'upstream_bad_response'
  return undefined
}

/** The reason for an error code alone (see reasonForError). */
export function reasonForCode(code: unknown): Reason | undefined {
  if (typeof code !== 'string') return undefined
  const known = byCode.get(code)
  if (known !== undefined) return known
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'upstream_tls_failed'
  if (code.startsWith('HPE_')) return 'upstream_bad_response'
  return undefined
}

/**
 * Reasons that say something about the target's health: they count toward
 * passive ejection. Client-side and local reasons never do, so a client that
 * aborts uploads cannot get healthy targets ejected.
 */
export function isTargetFault(reason: Reason): boolean {
  return (
    reason === 'upstream_connect_failed' ||
    reason === 'upstream_tls_failed' ||
    reason === 'upstream_reset' ||
    reason === 'upstream_timeout' ||
    reason === 'upstream_bad_response'
  )
}

/** Failures before the request left (no byte sent): any method may go to another target. */
export function isConnectPhase(reason: Reason): boolean {
  return reason === 'upstream_connect_failed' || reason === 'upstream_tls_failed'
}

/**
 * Methods a client may repeat with the same effect (RFC 9110 §9.2.2), so a
 * bodiless request that met a reset before any response can be sent again.
 * A switch, not a Set, so the hot path does no hashing.
 */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'PUT':
    case 'DELETE':
    case 'TRACE':
      return true
    default:
      return false
  }
}
