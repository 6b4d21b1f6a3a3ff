/**
 * The `authz` stage: decides on the principal authn established. Deny by
 * default: a route admits only what its `access:` names.
 */
import type { Denial } from '../../shared/reasons.js'
import type { Principal, Stage } from '../context.js'

/** A route's access rules (`access:` minus the address lists). */
export interface AuthzOptions {
  /** Identity names (from `identities:`) admitted. */
  readonly identities: readonly string[]
  /** Admit any verified client certificate. */
  readonly allowAnyClientCert: boolean
  /** Admit requests without a client certificate: a public route. */
  readonly allowAnonymous: boolean
}

const NO_PRINCIPAL: Denial = Object.freeze({ reason: 'identity_denied', detail: 'no principal (authn did not run)' })
const ANONYMOUS_DENIED: Denial = Object.freeze({ reason: 'identity_denied', detail: 'anonymous caller on a route that requires an identity' })

/**
 * Admits when:
 * - the principal is mtls and `allowAnyClientCert` is set, or one of its
 *   identity names is listed in `identities`;
 * - the principal is anonymous and `allowAnonymous` is set;
 * - the route is public (`allowAnonymous`) and the caller presented a
 *   certificate anyway: a route that admits anyone without proof must not
 *   refuse someone with proof (they could just drop the certificate), and
 *   clients that always present one would otherwise break.
 * Everything else, including a missing principal, is `identity_denied`. The
 * log detail names the certificate subject, its identity names and the
 * route's list: all public facts, no secrets.
 */
export function authz(opts: AuthzOptions): Stage {
  const listed = new Set(opts.identities)
  const { allowAnyClientCert, allowAnonymous } = opts
  const listText = JSON.stringify([...listed])
  return (ctx) => {
    const p = ctx.principal
    if (p === undefined) return NO_PRINCIPAL
    if (p.kind === 'anonymous') return allowAnonymous ? undefined : ANONYMOUS_DENIED
    if (allowAnyClientCert || allowAnonymous) return undefined
    for (const name of p.names) if (listed.has(name)) return undefined
    return denyMtls(p, listText)
  }
}

function denyMtls(p: Extract<Principal, { kind: 'mtls' }>, listText: string): Denial {
  return {
    reason: 'identity_denied',
    detail: `subject ${JSON.stringify(p.identity.subject)} with identities ${JSON.stringify(p.names)} not in the route's list ${listText}`,
  }
}
