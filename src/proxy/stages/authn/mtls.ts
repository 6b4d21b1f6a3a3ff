/**
 * The `authn` stage for mutual TLS: turns the connection's verified client
 * certificate into the request's principal. The certificate was verified in
 * the handshake; this stage only names it and re-checks its validity window,
 * since one connection can outlive its certificate.
 */
import type { Denial } from '../../../shared/reasons.js'
import type { Identity, Principal, Stage } from '../../context.js'

/** Options compiled once per route. */
export interface MtlsAuthnOptions {
  /** The route admits requests without a certificate (listener mode "optional"). */
  readonly allowAnonymous: boolean
  /** Identity names of a certificate; compileIdentityMatchers' result (cached per Identity). */
  readonly match: (identity: Identity) => readonly string[]
}

const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' })
const REQUIRED: Denial = Object.freeze({ reason: 'client_cert_required', detail: 'no client certificate on the connection' })
const EXPIRED: Denial = Object.freeze({ reason: 'cert_expired', detail: 'client certificate expired while the connection was open' })
const NOT_YET_VALID: Denial = Object.freeze({ reason: 'cert_not_yet_valid', detail: 'client certificate not yet valid at request time' })

/**
 * Sets `ctx.principal`:
 * - `{ kind: 'mtls', identity, names }` when the connection carries a verified
 *   certificate, whatever `allowAnonymous` says (a presented certificate is
 *   always the principal, never dropped to anonymous);
 * - `{ kind: 'anonymous' }` when it carries none and the route allows it;
 * - otherwise answers `client_cert_required`.
 * The certificate's notBefore/notAfter are compared with `ctx.receivedAt` (the
 * injected clock): the handshake checked them once, but HTTP/2 and keep-alive
 * connections can stay open past expiry, and a certificate must not keep
 * working after it expires. Answers cert_expired / cert_not_yet_valid.
 */
export function mtlsAuthn(opts: MtlsAuthnOptions): Stage {
  const { allowAnonymous, match } = opts
  return (ctx) => {
    const identity = ctx.conn.identity
    if (identity === undefined) {
      if (!allowAnonymous) return REQUIRED
      ctx.principal = ANONYMOUS
      return undefined
    }
    if (ctx.receivedAt > identity.notAfter) return EXPIRED
    if (ctx.receivedAt < identity.notBefore) return NOT_YET_VALID
    ctx.principal = { kind: 'mtls', identity, names: match(identity) }
    return undefined
  }
}
