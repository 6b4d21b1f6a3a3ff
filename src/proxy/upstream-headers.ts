/**
 * The request headers an upstream receives. They are rebuilt, not copied:
 * every client header is classified (header-names.ts) and only ordinary
 * end-to-end headers pass; framing is re-created from parsed values; then the
 * gateway adds what it vouches for. Runs after checkFraming, so every name is
 * a token and every value clean.
 *
 * Order per request:
 * 1. client headers, minus hop-by-hop (Connection and what it names,
 *    Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
 *    HTTP2-Settings, Proxy-Authorization, Expect, Host, pseudo-headers),
 *    minus every identity header (Client-Cert*, X-Forwarded-Client-Cert,
 *    Portcullis-*, X-Client-Cert*, X-SSL-*, ...), minus forwarding headers
 *    unless the peer is a trusted proxy, minus the route's `remove`;
 * 2. Content-Length from the parsed value; `te: trailers` when asked for;
 * 3. X-Request-Id, X-Forwarded-* and/or Forwarded;
 * 4. Client-Cert, Client-Cert-Chain, X-Forwarded-Client-Cert,
 *    Portcullis-Identity (mTLS principals, per route flags);
 * 5. the route's `set`.
 *
 * `set` and `remove` act on end-to-end headers only. Naming a header the
 * gateway owns (framing, hop-by-hop, forwarding, identity, X-Request-Id) is a
 * config error at compile time rather than a silent no-op: a `set` of
 * `X-Forwarded-For` or `Client-Cert` would let config forge what upstreams
 * trust, and those have their own options (`forwarded`, `clientCert`, `xfcc`,
 * `identityAssertion`).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { BlockList, isIP } from 'node:net'
import type { RouteConfig } from '../config/schema/index.js'
import { clientCertValues } from './client-cert-headers.js'
import type { RequestContext } from './context.js'
import { isCleanFieldValue, isToken, parseContentLength } from './framing.js'
import { headerKind } from './header-names.js'
import type { IdentityAssertionSigner } from './identity-assertion.js'

export { requestIdFrom } from './request-id.js'

/** Upstream request headers: lowercased names; repeated fields as arrays (Cookie joined with "; "). */
export type UpstreamHeaders = Record<string, string | string[]>

/** What buildUpstreamHeaders reads from the request; IncomingMessage and Http2ServerRequest both fit. */
export interface HeaderSource {
  readonly rawHeaders: readonly string[]
  readonly headers: IncomingHttpHeaders
}

/**
 * A route `headers:` section (or trusted-proxy list) that cannot be compiled.
 * `key` is the offending config key relative to the section
 * (`set.Client-Cert`, `remove.Host`, `identityAssertion`, `trustedProxies`);
 * the message starts with it, as config issues do.
 */
export class HeaderPolicyError extends Error {
  override name = 'HeaderPolicyError'
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`${key}: ${problem}`)
  }
}

/** One route's header rules, resolved at compile time. */
export interface HeaderPolicy {
  readonly isXForwarded: boolean
  readonly isForwarded: boolean
  readonly isClientCertEnabled: boolean
  readonly isXfccEnabled: boolean
  /** Signer and audience when the route sends Portcullis-Identity. */
  readonly assertion: { readonly signer: IdentityAssertionSigner; readonly audience: string } | undefined
  /** Trusted proxy addresses; undefined when none (the common, cheap case). */
  readonly trustedProxies: BlockList | undefined
  /** Lowercased names removed from the client's headers. */
  readonly remove: ReadonlySet<string>
  /** Lowercased name/value pairs set last. */
  readonly set: readonly (readonly [string, string])[]
}

/** Options that come from outside the route's `headers:` section. */
export interface HeaderPolicyOptions {
  /** CIDRs or addresses (the listener's `trustedProxies`) whose forwarding headers are kept and extended. */
  readonly trustedProxies: readonly string[]
  /** Required when the route enables `identityAssertion`. */
  readonly assertion?: IdentityAssertionSigner
  /** Default `aud` of the assertion. */
  readonly upstreamName: string
}

/**
 * Compiles a route's `headers:` section. Throws a HeaderPolicyError naming the
 * offending key for a name the gateway owns, a malformed name
 * or value, a header both set and removed, a bad trusted-proxy CIDR, or
 * `identityAssertion: true` without a top-level `identityAssertion:` section.
 */
export function compileHeaderPolicy(route: RouteConfig['headers'], opts: HeaderPolicyOptions): HeaderPolicy {
  const remove = new Set<string>()
  for (const name of route.remove) {
    const lower = name.toLowerCase()
    checkEndToEnd(`remove.${name}`, lower)
    remove.add(lower)
  }
  const set: (readonly [string, string])[] = []
  for (const [name, value] of Object.entries(route.set)) {
    const lower = name.toLowerCase()
    checkEndToEnd(`set.${name}`, lower)
    if (remove.has(lower)) throw new HeaderPolicyError(`set.${name}`, 'also listed in remove')
    if (value !== value.trim() || !isCleanFieldValue(value)) {
      throw new HeaderPolicyError(`set.${name}`, 'value must be visible ASCII without leading or trailing whitespace')
    }
    set.push(Object.freeze([lower, value] as const))
  }
  if (route.identityAssertion && !opts.assertion) {
    throw new HeaderPolicyError('identityAssertion', 'the route asks for it but the top-level identityAssertion section is missing')
  }
  return Object.freeze({
    isXForwarded: route.forwarded !== 'forwarded',
    isForwarded: route.forwarded !== 'x-forwarded',
    isClientCertEnabled: route.clientCert,
    isXfccEnabled: route.xfcc,
    assertion:
      route.identityAssertion && opts.assertion
        ? Object.freeze({ signer: opts.assertion, audience: opts.assertion.audience ?? opts.upstreamName })
        : undefined,
    trustedProxies: compileTrustedProxies(opts.trustedProxies),
    remove,
    set: Object.freeze(set),
  })
}

function checkEndToEnd(key: string, lower: string): void {
  if (!isToken(lower)) throw new HeaderPolicyError(key, 'not a valid header name')
  const kind = headerKind(lower)
  if (kind !== undefined) {
    throw new HeaderPolicyError(key, `${lower} is managed by the gateway (${kind.replace(/_/g, '-')}) and cannot be set or removed per route`)
  }
}

function compileTrustedProxies(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined
  const list = new BlockList()
  for (const text of cidrs) {
    const [addr = '', bits] = text.split('/')
    const family = isIP(addr)
    if (family === 0) throw new HeaderPolicyError('trustedProxies', `${text} is not an address or CIDR`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) list.addAddress(addr, type)
    else list.addSubnet(addr, Number(bits), type)
  }
  return list
}

/** An IPv4-mapped IPv6 address ("::ffff:10.0.0.1", as dual-stack sockets report) as plain IPv4. */
function plainAddress(addr: string): string {
  return addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr
}

function isTrusted(list: BlockList | undefined, addr: string): boolean {
  if (list === undefined || addr === '') return false
  const family = isIP(addr)
  return family !== 0 && list.check(addr, family === 4 ? 'ipv4' : 'ipv6')
}

function append(out: UpstreamHeaders, name: string, value: string): void {
  const prev = out[name]
  if (prev === undefined) out[name] = value
  else if (typeof prev === 'string') out[name] = name === 'cookie' ? `${prev}; ${value}` : [prev, value]
  else prev.push(value)
}

/** Lowercased tokens of a comma-separated list (Connection, TE). */
function listTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  const text = Array.isArray(value) ? value.join(',') : value
  return text.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0)
}

/** RFC 7239 node: IPv6 in quotes and brackets, "unknown" when we do not know. */
function forwardedNode(addr: string): string {
  if (addr === '') return 'unknown'
  return isIP(addr) === 6 ? `"[${addr}]"` : addr
}

/** An RFC 7239 value: a token as is, anything else quoted (authorities are checked by framing: no quotes inside). */
function forwardedValue(value: string): string {
  return isToken(value) ? value : `"${value}"`
}

/**
 * Builds the upstream request headers for an admitted request. Synchronous
 * unless the route sends Portcullis-Identity and the signer has no cached
 * token for this certificate and upstream. Throws on a Content-Length that
 * checkFraming would have refused (a bug: framing must run first).
 */
export function buildUpstreamHeaders(
  ctx: RequestContext,
  req: HeaderSource,
  policy: HeaderPolicy,
): UpstreamHeaders | Promise<UpstreamHeaders> {
  // Null prototype: a client header named "__proto__" must stay a header.
  const out: UpstreamHeaders = Object.create(null) as UpstreamHeaders
  const peer = plainAddress(ctx.conn.remoteAddress)
  const isFromTrustedProxy = isTrusted(policy.trustedProxies, peer)
  const nominated = req.headers.connection === undefined ? undefined : new Set(listTokens(req.headers.connection))
  const { remove } = policy
  let priorFor: string | undefined
  let priorForwarded: string | undefined

  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    if (name.charCodeAt(0) === 0x3a /* : */) continue // HTTP/2 pseudo-headers
    const lower = name.toLowerCase()
    const value = raw[i + 1]!
    const kind = headerKind(lower)
    if (kind !== undefined) {
      if (kind !== 'forwarding' || !isFromTrustedProxy) continue
      // A trusted proxy's view is kept, and extended below for the family we emit.
      if (lower === 'x-forwarded-for') {
        if (policy.isXForwarded) priorFor = priorFor === undefined ? value : `${priorFor}, ${value}`
        continue
      }
      if (lower === 'forwarded') {
        if (policy.isForwarded) priorForwarded = priorForwarded === undefined ? value : `${priorForwarded}, ${value}`
        continue
      }
      if (!policy.isXForwarded && lower.startsWith('x-forwarded-')) continue
    }
    if (nominated?.has(lower) || remove.has(lower)) continue
    append(out, lower, value)
  }

  const contentLength = req.headers['content-length']
  if (contentLength !== undefined) {
    const length = parseContentLength(contentLength)
    if (length === undefined) throw new Error('non-canonical Content-Length reached buildUpstreamHeaders; checkFraming must run first')
    out['content-length'] = String(length)
  }
  // Only "trailers" survives from TE: it is how gRPC-style upstreams learn trailers are understood.
  if (listTokens(req.headers.te).includes('trailers')) out.te = 'trailers'

  out['x-request-id'] = ctx.id
  const authority = (req.headers[':authority'] ?? req.headers.host ?? ctx.host).toString().toLowerCase()
  if (policy.isXForwarded) {
    out['x-forwarded-for'] = priorFor === undefined ? peer || 'unknown' : `${priorFor}, ${peer || 'unknown'}`
    if (!isFromTrustedProxy || out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = 'https'
    if (!isFromTrustedProxy || out['x-forwarded-host'] === undefined) out['x-forwarded-host'] = authority
  }
  if (policy.isForwarded) {
    const element = `for=${forwardedNode(peer)};host=${forwardedValue(authority)};proto=https`
    out.forwarded = priorForwarded === undefined ? element : `${priorForwarded}, ${element}`
  }

  const principal = ctx.principal
  let pending: Promise<string> | undefined
  if (principal?.kind === 'mtls') {
    const identity = principal.identity
    if (policy.isClientCertEnabled || policy.isXfccEnabled) {
      const values = clientCertValues(identity)
      if (policy.isClientCertEnabled) {
        out['client-cert'] = values.clientCert
        if (values.clientCertChain !== undefined) out['client-cert-chain'] = values.clientCertChain
      }
      if (policy.isXfccEnabled) out['x-forwarded-client-cert'] = values.xfcc
    }
    if (policy.assertion) {
      const token = policy.assertion.signer.sign(identity, policy.assertion.audience)
      if (typeof token === 'string') out['portcullis-identity'] = token
      else pending = token
    }
  }

  for (const [name, value] of policy.set) out[name] = value

  if (pending === undefined) return out
  return pending.then((token) => {
    out['portcullis-identity'] = token
    return out
  })
}
