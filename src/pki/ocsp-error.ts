/**
 * The one error type of the OCSP client: a query that produced no usable
 * answer. Its own module so the transport and the verifier share it.
 */

/** Why a query failed. `code` is stable; match on it, never on the message. */
export type OcspErrorCode =
  | 'unreachable'
  | 'http_status'
  | 'malformed'
  | 'unsuccessful'
  | 'bad_signature'
  | 'unauthorized_signer'
  | 'wrong_certificate'
  | 'stale'
  | 'nonce_mismatch'

/** A query that produced no usable answer. The message names the cause for operators. */
export class OcspError extends Error {
  override readonly name = 'OcspError'
  constructor(
    readonly code: OcspErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}
