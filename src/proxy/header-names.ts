/**
 * Which request headers Portcullis owns, by lowercased name: the table both
 * the upstream-header builder and the route `set`/`remove` check read, so a
 * name cannot be dropped in one place and settable in another.
 */

/** What a header name is to the gateway. */
export type HeaderKind =
  /** Meaningful for one connection only (RFC 9110 7.6.1) or framing we re-create: never forwarded. */
  | 'hop_by_hop'
  /** Identity a client could forge and an upstream might trust: always dropped, ours re-added. */
  | 'identity'
  /** Client address / scheme / host as seen by earlier proxies: kept only from trusted proxies. */
  | 'forwarding'
  /** Set by us on every request (X-Request-Id). */
  | 'ours'

const exact = new Map<string, HeaderKind>([
  ['connection', 'hop_by_hop'],
  ['keep-alive', 'hop_by_hop'],
  ['proxy-connection', 'hop_by_hop'],
  ['transfer-encoding', 'hop_by_hop'],
  ['upgrade', 'hop_by_hop'],
  ['te', 'hop_by_hop'],
  ['trailer', 'hop_by_hop'],
  ['http2-settings', 'hop_by_hop'],
  // Credentials meant for a proxy, i.e. for us; we take none, so they go no further.
  ['proxy-authorization', 'hop_by_hop'],
  // The upstream client sets Host from the target (or the preserved client Host).
  ['host', 'hop_by_hop'],
  // Re-emitted from the parsed value, never copied.
  ['content-length', 'hop_by_hop'],
  // Node answered 100-continue to the client already; undici refuses the header.
  ['expect', 'hop_by_hop'],
  ['client-cert', 'identity'],
  ['client-cert-chain', 'identity'],
  ['x-forwarded-client-cert', 'identity'],
  ['x-arr-clientcert', 'identity'],
  ['forwarded', 'forwarding'],
  ['x-real-ip', 'forwarding'],
  ['x-request-id', 'ours'],
])

/**
 * Prefixes of identity headers set by other TLS terminators (nginx, HAProxy,
 * Traefik, AWS ALB, ...) that some upstream somewhere trusts, and our own
 * namespace. Checked only for names that did not match exactly.
 */
const identityPrefixes = ['portcullis-', 'x-client-cert', 'x-ssl-', 'x-forwarded-tls-client-cert', 'x-amzn-mtls-', 'ssl-client-']

/** The kind of a lowercased header name, or undefined for an ordinary end-to-end header. */
export function headerKind(lower: string): HeaderKind | undefined {
  const kind = exact.get(lower)
  if (kind !== undefined) return kind
  const first = lower.charCodeAt(0)
  // Only names starting with x, p or s can match a prefix: skip the loop for the rest.
  if (first !== 0x78 && first !== 0x70 && first !== 0x73) return undefined
  for (const prefix of identityPrefixes) if (lower.startsWith(prefix)) return 'identity'
  if (lower.startsWith('x-forwarded-')) return 'forwarding'
  return undefined
}
