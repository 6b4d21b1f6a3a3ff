/**
 * Address sets from CIDR lists, parsed once at compile time and checked per
 * request (IP filters, trusted proxies). Backed by node:net BlockList, whose
 * lookups are native and allocation-free on our side.
 */
import { BlockList, isIP } from 'node:net'

/** A compiled set of addresses and blocks. */
export interface CidrSet {
  /**
   * True when `addr` (an IPv4 or IPv6 literal as Node reports it in
   * `socket.remoteAddress`) lies in one of the blocks. Anything that is not an
   * IP literal is never a member: callers enforcing an allow list therefore
   * refuse it, and callers must not rely on a deny list to catch it.
   */
  has(addr: string): boolean
  /** Number of entries in the source list; 0 means "no rule". */
  readonly size: number
}

/**
 * Parses `list` ("10.0.0.0/8", "2001:db8::/32", or a bare address = a /32 or
 * /128) into a {@link CidrSet}. Throws an Error naming the first bad entry, so
 * compile reports it as a config issue instead of failing on a request.
 *
 * Families: IPv4-mapped IPv6 (`::ffff:10.0.0.1`, as a dual-stack socket
 * reports an IPv4 peer) matches IPv4 blocks, and a `::ffff:a.b.c.d/(96+n)`
 * block matches the IPv4 peer a.b.c.d — BlockList does both. No other
 * translation is done (NAT64 `64:ff9b::/96`, 6to4, deprecated IPv4-compatible
 * `::a.b.c.d` are distinct addresses): write such blocks out explicitly.
 * A zone index (`fe80::1%eth0`) is ignored when matching.
 */
export function compileCidrs(list: readonly string[]): CidrSet {
  const blocks = new BlockList()
  for (const entry of list) {
    const [addr = '', bitsText, extra] = entry.split('/')
    const family = isIP(addr)
    if (family === 0 || addr.includes('%') || extra !== undefined) throw new Error(`invalid address or CIDR block "${entry}"`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    const max = family === 4 ? 32 : 128
    if (bitsText === undefined) {
      blocks.addAddress(addr, type)
      continue
    }
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) throw new Error(`invalid prefix length in "${entry}"`)
    blocks.addSubnet(addr, Number(bitsText), type)
  }
  const size = list.length
  return Object.freeze({
    size,
    has(addr: string): boolean {
      if (size === 0) return false
      const zone = addr.indexOf('%')
      const bare = zone >= 0 ? addr.slice(0, zone) : addr
      const family = isIP(bare)
      if (family === 4) return blocks.check(bare, 'ipv4')
      if (family === 6) return blocks.check(bare, 'ipv6')
      return false
    },
  })
}
