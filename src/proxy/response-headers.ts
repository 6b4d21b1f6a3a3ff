/**
 * The response headers a client receives from an upstream's answer. Like the
 * request side, they are filtered rather than copied wholesale: connection-
 * specific headers describe the upstream hop only, and on HTTP/2 Node throws
 * ERR_HTTP2_INVALID_CONNECTION_HEADERS for them, which would turn a quirky
 * upstream into a 500.
 */
import type { OutgoingHttpHeaders } from 'node:http'
import { isToken } from './framing.js'

/**
 * Never passed to the client: hop-by-hop and framing headers (Node re-frames
 * the body), `host` (illegal in HTTP/2 responses), `proxy-authenticate`
 * (a challenge for a proxy — that would be us), `alt-svc` (an upstream must
 * not advertise alternative endpoints for the gateway's origin), and
 * `x-request-id` (replaced by ours).
 */
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
  'host',
  'proxy-authenticate',
  'alt-svc',
  'x-request-id',
])

/**
 * Fields that may appear once. Node's HTTP/2 layer throws
 * ERR_HTTP2_HEADER_SINGLE_VALUE when given several, and on HTTP/1.1 two
 * Location or Content-Type lines leave the client to guess; the first wins.
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
])

/**
 * A response header value Node will write: HTAB, visible ASCII and obs-text
 * (legacy Content-Disposition filenames use it). CR, LF, NUL and other
 * controls are refused by Node's setHeader with an exception; such fields are
 * dropped instead.
 */
function isWritableValue(s: string): boolean {
  for (let i = 0, n = s.length; i < n; i++) {
    const c = s.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false
  }
  return true
}

/**
 * Filters an upstream's response headers for the client and adds
 * `x-request-id`. Names are lowercased; `set-cookie` (and any other list
 * field) keeps every value as an array; single-value fields keep their first
 * value. The rules are the same for HTTP/1.1 and HTTP/2 clients, because
 * anything HTTP/2 forbids is hop-by-hop on HTTP/1.1 too.
 */
export function cleanResponseHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  requestId: string,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders
  const connection = headers.connection
  const nominated =
    connection === undefined
      ? undefined
      : new Set(
          (Array.isArray(connection) ? connection.join(',') : connection)
            .split(',')
            .map((t) => t.trim().toLowerCase())
            .filter((t) => t.length > 0),
        )
  for (const key of Object.keys(headers)) {
    const value = headers[key]
    if (value === undefined) continue
    const name = key.toLowerCase()
    if (DROPPED.has(name) || nominated?.has(name) || !isToken(name)) continue
    if (typeof value === 'string') {
      if (isWritableValue(value)) out[name] = value
      continue
    }
    const values = value.filter(isWritableValue)
    if (values.length === 0) continue
    out[name] = SINGLE_VALUE.has(name) ? values[0] : values
  }
  out['x-request-id'] = requestId
  return out
}
