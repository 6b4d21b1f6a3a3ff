/**
 * The `ip_filter` stage: the cheapest refusal, needing nothing but the peer
 * address, so a denied network never costs identity matching or token work.
 */
import { isIP } from 'node:net'
import { compileCidrs } from '../../shared/cidr.js'
import type { Denial } from '../../shared/reasons.js'
import type { Connection, Stage } from '../context.js'

/** A route's address rules (`access.ipAllow` / `access.ipDeny`). */
export interface IpFilterOptions {
  /** If non-empty, only these addresses and blocks are admitted. */
  readonly allow: readonly string[]
  /** Refused, checked before `allow`. */
  readonly deny: readonly string[]
}

const DENY_LISTED: Denial = Object.freeze({ reason: 'ip_denied', detail: 'address is in the deny list' })
const NOT_ALLOWED: Denial = Object.freeze({ reason: 'ip_denied', detail: 'address is not in the allow list' })
const UNPARSEABLE: Denial = Object.freeze({ reason: 'ip_denied', detail: 'peer address is not an IP literal' })

/**
 * Parses the lists once (throws on a bad entry, so compile reports it as a
 * config issue) and returns the per-request check. The address is the TCP
 * peer (`conn.remoteAddress`), never X-Forwarded-For: a header is the
 * client's word, the socket is not. Deny wins over allow. With any rule
 * configured, a peer address that is not an IP literal is refused (it cannot
 * happen on a TCP socket; if it does, deny by default).
 */
export function ipFilter(opts: IpFilterOptions): Stage {
  const allowed = compileCidrs(opts.allow)
  const blocked = compileCidrs(opts.deny)
  const check = (addr: string): Denial | undefined => {
    if (!isIpLiteral(addr)) return UNPARSEABLE
    if (blocked.has(addr)) return DENY_LISTED
    if (allowed.size > 0 && !allowed.has(addr)) return NOT_ALLOWED
    return undefined
  }
  // The peer address is fixed for a connection, so the verdict is too: one
  // lookup per connection instead of a BlockList check (which builds a
  // SocketAddress) per request — 2.7% of the gateway's CPU in the keep-alive
  // profile (docs/benchmarks.md). Kept per compiled stage, so a reload with
  // new rules starts afresh; weak, so closed connections take their entry along.
  const verdicts = new WeakMap<Connection, Denial | null>()
  return (ctx) => {
    const known = verdicts.get(ctx.conn)
    if (known !== undefined) return known ?? undefined
    const verdict = check(ctx.conn.remoteAddress)
    verdicts.set(ctx.conn, verdict ?? null)
    return verdict
  }
}

/** An IPv4/IPv6 literal, zone index allowed; false for undefined (a socket that already closed). */
function isIpLiteral(addr: string | undefined): boolean {
  if (typeof addr !== 'string') return false
  const zone = addr.indexOf('%')
  return isIP(zone < 0 ? addr : addr.slice(0, zone)) !== 0
}
