/**
 * The one table of denial reasons. Every answer Portcullis gives instead of an
 * upstream response, and every refused handshake, carries one of these codes.
 *
 * Codes are snake_case, leave the process (problem+json `reason`, access log
 * `reason`, metrics labels) and are never renamed or reused, like Envoy's
 * `response_code_details`. `docs/errors.md` has one section per code; a test
 * checks both directions.
 *
 * `status` is the HTTP status used when the denial is rendered as
 * RFC 9457 problem+json. Handshake-level reasons (`cert_*`) are rendered only
 * when the listener opts in with `clientAuth.rejectWithProblem`; otherwise the
 * connection is closed and the reason goes to the log.
 */
export const reasons = {
  // Routing
  route_not_found: { status: 404, title: 'No matching route' },
  method_not_allowed: { status: 405, title: 'Method not allowed on this route' },
  misdirected_request: { status: 421, title: 'Host does not match the TLS server name' },

  // Request framing and limits (strict HTTP parsing)
  bad_request: { status: 400, title: 'Malformed request' },
  invalid_path: { status: 400, title: 'Path rejected by normalisation' },
  uri_too_long: { status: 414, title: 'URI too long' },
  header_too_large: { status: 431, title: 'Request header fields too large' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  request_timeout: { status: 408, title: 'Request not received in time' },

  // Handshake-level (no HTTP exchange exists; logged as type "handshake")
  tls_handshake_failed: { status: 400, title: 'TLS handshake failed' },
  handshake_timeout: { status: 408, title: 'TLS handshake not completed in time' },

  // Client certificate (handshake-level; see module doc)
  client_cert_required: { status: 401, title: 'Client certificate required' },
  cert_unknown_ca: { status: 403, title: 'Client certificate issued by an untrusted CA' },
  cert_expired: { status: 403, title: 'Client certificate expired' },
  cert_not_yet_valid: { status: 403, title: 'Client certificate not yet valid' },
  cert_wrong_usage: { status: 403, title: 'Client certificate not valid for client authentication' },
  cert_revoked: { status: 403, title: 'Client certificate revoked' },
  cert_revocation_unknown: { status: 403, title: 'Client certificate revocation status unavailable' },
  cert_invalid: { status: 403, title: 'Client certificate rejected' },
  cert_path_length: { status: 403, title: 'Client certificate chain breaks a CA path length or basic constraint' },
  cert_name_constraints: { status: 403, title: 'Client certificate names outside its CA name constraints' },
  cert_weak_key: { status: 403, title: 'Client certificate chain uses a weak key' },
  cert_weak_signature: { status: 403, title: 'Client certificate chain uses a forbidden signature algorithm' },
  cert_chain_too_long: { status: 403, title: 'Client certificate chain too long' },
  cert_validity_too_long: { status: 403, title: 'Client certificate lifetime too long' },

  // Access control
  ip_denied: { status: 403, title: 'Address not allowed' },
  identity_denied: { status: 403, title: 'Identity not allowed on this route' },

  // Upstream
  upstream_unavailable: { status: 503, title: 'No healthy upstream target' },
  upstream_connect_failed: { status: 502, title: 'Upstream connection failed' },
  upstream_tls_failed: { status: 502, title: 'Upstream TLS verification failed' },
  upstream_reset: { status: 502, title: 'Upstream closed the connection' },
  upstream_bad_response: { status: 502, title: 'Upstream sent an invalid response' },
  upstream_timeout: { status: 504, title: 'Upstream did not answer in time' },
  // The client went away (or the exchange was cancelled) before the upstream answered; nginx's 499. Logged, never rendered.
  client_closed: { status: 499, title: 'Client closed the request' },

  // EST enrollment (src/control/est/): answered by the EST server, never by a listener
  est_auth_required: { status: 401, title: 'Enrollment needs a token or a client certificate' },
  est_token_invalid: { status: 401, title: 'Enrollment token not recognised' },
  est_token_expired: { status: 401, title: 'Enrollment token expired' },
  est_token_used: { status: 401, title: 'Enrollment token already used' },
  est_partner_unknown: { status: 403, title: 'No enrollment policy for this partner' },
  est_unsupported_media_type: { status: 415, title: 'Expected an application/pkcs10 request' },
  est_csr_malformed: { status: 400, title: 'Not a base64 PKCS#10 certificate request' },
  est_csr_refused: { status: 403, title: 'Certificate request refused by partner policy' },
  est_reenroll_mismatch: { status: 400, title: 'Re-enrollment must keep the subject and names' },

  // Bugs and shutdown
  service_unavailable: { status: 503, title: 'Gateway is shutting down' },
  internal_error: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { readonly status: number; readonly title: string }>

/** A stable denial code: a key of {@link reasons}. */
export type Reason = keyof typeof reasons

/**
 * A request (or handshake) that does not go on. A value, not an Error: control
 * flow shows in signatures, and no stack trace is built on the path attackers
 * flood.
 */
export interface Denial {
  readonly reason: Reason
  /** For the access log only; never sent to the client. */
  readonly detail?: string
  /** Extra response headers, e.g. Retry-After or Allow. */
  readonly headers?: Readonly<Record<string, string>>
}

/** True when `code` names a reason in the table. */
export function isReason(code: string): code is Reason {
  return Object.hasOwn(reasons, code)
}
