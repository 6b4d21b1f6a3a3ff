/**
 * The request-smuggling guard on top of Node's own parsers. Runs first on every
 * request, before routing, on `req.rawHeaders` in one pass.
 *
 * What Node 20.20 already refuses before a request object exists (probed with
 * raw TLS writes to `http2.createSecureServer({ allowHTTP1: true })` and
 * `https.createServer`; both use llhttp in strict mode): CL together with TE,
 * two Content-Length lines (even equal), `+5`, `-1`, `0x5`, `5,5`, empty CL,
 * CL past 2^64, `Transfer-Encoding: chunked, identity`, `chunked,chunked`, two
 * TE `chunked` lines, obs-fold, NUL/CTL/DEL/CR/bare LF in values, whitespace
 * before the colon, non-token names, lower-case or unknown methods, HTTP/1.2.
 * HTTP/2 (nghttp2) resets streams with connection-specific headers
 * (connection, keep-alive, proxy-connection, transfer-encoding, upgrade,
 * `te` other than "trailers"), upper-case names, two content-length fields,
 * `+5`, a body longer or shorter than content-length, and silently DROPS fields
 * whose name or value holds forbidden bytes or edge whitespace.
 *
 * What still reaches the handler, and is refused here (reason `bad_request`,
 * detail = one {@link FramingRule}):
 * - HTTP/1: Content-Length `05` or past 2^53-1; Transfer-Encoding `,chunked`,
 *   `gzip, chunked`, `Chunked`, empty, or split over two lines
 *   (`identity` + `chunked`); `identity`/`gzip` alone (Node serves the headers
 *   and only then fails the body); TE on HTTP/1.0; obs-text (bytes >= 0x80) in
 *   values; `Upgrade: h2c` (also with `Connection: Upgrade` when no 'upgrade'
 *   listener exists) and `HTTP2-Settings`; two Host lines (Node keeps the
 *   first); no Host on the allowHTTP1 server (the https server alone answers
 *   400 itself); Host with a space, `/` or userinfo; absolute-form whose
 *   authority differs from Host; HTTP/0.9 and a `HTTP/2.0` request line, which
 *   llhttp hands over as versions 0.9 and 2.0; `OPTIONS *`.
 * - HTTP/2: content-length `05` or past 2^53-1; obs-text in values;
 *   `http2-settings`; `host` differing from `:authority`; userinfo in
 *   `:authority`; `:scheme` other than https.
 *
 * Checks that Node makes today are repeated when they cost nothing extra in
 * the same pass (CTL bytes, token names, CL with TE, duplicates), so a Node
 * upgrade or an `insecureHTTPParser` flag cannot open a hole silently.
 *
 * HTTP/1 denials carry `Connection: close`: once framing is in doubt, bytes
 * left on the connection must not be read as a next request. That header is
 * not enough on its own: Node keeps parsing pipelined requests and emits
 * 'request' for them while the 400 is still queued, so a request hidden after
 * an ambiguous one would still be executed against the upstream (its answer
 * merely lost). The connection is therefore remembered, and every later
 * request on it is refused too (`pipelined_after_framing_error`).
 */
import type { IncomingMessage } from 'node:http'
import { Http2ServerRequest } from 'node:http2'
import { isIPv6 } from 'node:net'
import type { Denial } from '../shared/reasons.js'

/** Stable names of the framing rules; they appear as `detail` in the access log. */
export type FramingRule =
  | 'unsupported_http_version'
  | 'invalid_request_target'
  | 'invalid_scheme'
  | 'invalid_header_name'
  | 'invalid_header_value'
  | 'content_length_with_transfer_encoding'
  | 'duplicate_content_length'
  | 'invalid_content_length'
  | 'duplicate_transfer_encoding'
  | 'unsupported_transfer_encoding'
  | 'transfer_encoding_in_http10'
  | 'transfer_encoding_in_http2'
  | 'connection_header_in_http2'
  | 'connection_nominates_framing_header'
  | 'h2c_upgrade'
  | 'http2_settings'
  | 'missing_host'
  | 'duplicate_host'
  | 'invalid_host'
  | 'host_authority_mismatch'
  | 'pipelined_after_framing_error'

/** RFC 9110 tchar, indexed by char code (< 128). */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1

/** reg-name characters we accept in Host (unreserved only: no sub-delims, no pct-encoding). */
const HOSTCHAR = new Uint8Array(128)
for (const c of '-._~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ') HOSTCHAR[c.charCodeAt(0)] = 1

/** True when `s` is a non-empty RFC 9110 token. */
export function isToken(s: string): boolean {
  const n = s.length
  if (n === 0) return false
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || TCHAR[c] === 0) return false
  }
  return true
}

/**
 * True when `s` holds only HTAB and visible ASCII (0x20-0x7e). NUL, CR, LF,
 * other controls, DEL and obs-text (>= 0x80) are refused: upstreams disagree
 * on how to read them, which is what smuggling and header injection feed on.
 */
export function isCleanFieldValue(s: string): boolean {
  for (let i = 0, n = s.length; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 ? c !== 0x09 : c > 0x7e) return false
  }
  return true
}

/**
 * A Content-Length in canonical form: decimal digits, no sign, no leading
 * zero (except "0" itself), at most 2^53-1 so it survives as a JS number.
 * Returns undefined for anything else.
 */
export function parseContentLength(s: string): number | undefined {
  const n = s.length
  if (n === 0 || n > 16) return undefined
  if (n > 1 && s.charCodeAt(0) === 0x30) return undefined
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return undefined
  }
  const value = Number(s)
  return value <= Number.MAX_SAFE_INTEGER ? value : undefined
}

/**
 * True for `host[:port]` where host is a reg-name of unreserved characters,
 * an IPv4 address (a reg-name by syntax) or a bracketed IPv6 address, and
 * port is 1-5 digits up to 65535. No userinfo, no empty host or port.
 */
export function isValidAuthority(s: string): boolean {
  const end = s.length
  if (end === 0) return false
  let hostEnd: number
  if (s.charCodeAt(0) === 0x5b /* [ */) {
    const close = s.indexOf(']')
    if (close < 0 || !isIPv6(s.slice(1, close))) return false
    hostEnd = close + 1
  } else {
    hostEnd = 0
    while (hostEnd < end) {
      const c = s.charCodeAt(hostEnd)
      if (c === 0x3a /* : */) break
      if (c >= 128 || HOSTCHAR[c] === 0) return false
      hostEnd++
    }
    if (hostEnd === 0) return false
  }
  if (hostEnd === end) return true
  if (s.charCodeAt(hostEnd) !== 0x3a) return false
  const port = s.slice(hostEnd + 1)
  if (port.length === 0 || port.length > 5) return false
  for (let i = 0; i < port.length; i++) {
    const c = port.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return Number(port) <= 65535
}

/** Lowercased authority with an explicit default https port removed, for comparisons. */
function canonicalAuthority(s: string): string {
  const lower = s.toLowerCase()
  return lower.endsWith(':443') ? lower.slice(0, -4) : lower
}

const CLOSE = Object.freeze({ connection: 'close' })

/** HTTP/1 connections that carried a refused request; nothing more on them is executed. */
const desynced = new WeakSet<object>()

function deny(rule: FramingRule, isHttp2: boolean): Denial {
  return isHttp2 ? { reason: 'bad_request', detail: rule } : { reason: 'bad_request', detail: rule, headers: CLOSE }
}

/** Facts about the request line that the header pass needs. */
export interface RequestLine {
  readonly isHttp2: boolean
  readonly isHttp10: boolean
  /** The request-target as sent (HTTP/1) or `:path` (HTTP/2). */
  readonly target: string
}

/**
 * Refuses a request whose framing or identity-bearing headers are ambiguous.
 * Returns undefined for a request that may go on. Cheap for the common case:
 * one pass over rawHeaders with char-code loops and length-gated name
 * comparisons; no regular expressions.
 */
export function checkFraming(req: IncomingMessage | Http2ServerRequest): Denial | undefined {
  if (req instanceof Http2ServerRequest) return checkHeaderList(req.rawHeaders, { isHttp2: true, isHttp10: false, target: req.url })
  const socket = req.socket
  if (desynced.has(socket)) return deny('pipelined_after_framing_error', false)
  const denial =
    // llhttp hands over HTTP/0.9 ("GET /") and "HTTP/2.0" request lines as requests.
    req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 1 && req.httpVersionMinor !== 0)
      ? deny('unsupported_http_version', false)
      : checkHeaderList(req.rawHeaders, { isHttp2: false, isHttp10: req.httpVersionMinor === 0, target: req.url ?? '' })
  if (denial) desynced.add(socket)
  return denial
}

/**
 * The header pass of {@link checkFraming}, on a flat [name, value, ...] list
 * as Node's `rawHeaders` gives it (HTTP/2 pseudo-headers included). Exported
 * so the rules can be tested on lists Node's parsers would not let through.
 */
export function checkHeaderList(raw: readonly string[], line: RequestLine): Denial | undefined {
  const { isHttp2 } = line
  let contentLength: string | undefined
  let transferEncoding: string | undefined
  let host: string | undefined
  let authority: string | undefined
  let connection: string | undefined

  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    if (!isCleanFieldValue(value)) return deny('invalid_header_value', isHttp2)
    if (isHttp2 && name.charCodeAt(0) === 0x3a /* : */) {
      // nghttp2 has checked the pseudo-header set, order and uniqueness.
      if (name === ':authority') authority = value
      else if (name === ':scheme' && value !== 'https') return deny('invalid_scheme', true)
      continue
    }
    if (!isToken(name)) return deny('invalid_header_name', isHttp2)
    switch (name.length) {
      case 2:
        if (isHttp2 && name.toLowerCase() === 'te' && value !== 'trailers') {
          return deny('connection_header_in_http2', true)
        }
        break
      case 4:
        if (name.toLowerCase() === 'host') {
          if (host !== undefined) return deny('duplicate_host', isHttp2)
          host = value
        }
        break
      case 7:
        if (name.toLowerCase() === 'upgrade') {
          if (isHttp2) return deny('connection_header_in_http2', true)
          if (hasToken(value, 'h2c')) return deny('h2c_upgrade', false)
        }
        break
      case 10: {
        const lower = name.toLowerCase()
        if (lower === 'connection') {
          if (isHttp2) return deny('connection_header_in_http2', true)
          connection = connection === undefined ? value : `${connection},${value}`
        } else if (lower === 'keep-alive' && isHttp2) return deny('connection_header_in_http2', true)
        break
      }
      case 14: {
        const lower = name.toLowerCase()
        if (lower === 'content-length') {
          if (contentLength !== undefined) return deny('duplicate_content_length', isHttp2)
          if (parseContentLength(value) === undefined) return deny('invalid_content_length', isHttp2)
          contentLength = value
        } else if (lower === 'http2-settings') return deny('http2_settings', isHttp2)
        break
      }
      case 16:
        if (isHttp2 && name.toLowerCase() === 'proxy-connection') return deny('connection_header_in_http2', true)
        break
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          if (isHttp2) return deny('transfer_encoding_in_http2', true)
          if (transferEncoding !== undefined) return deny('duplicate_transfer_encoding', false)
          transferEncoding = value
        }
        break
    }
  }

  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return deny('content_length_with_transfer_encoding', false)
    if (line.isHttp10) return deny('transfer_encoding_in_http10', false)
    // Only the one coding every hop agrees on; "gzip, chunked" and friends are
    // legal but are where parsers disagree, and no client of an API needs them.
    if (transferEncoding.length !== 7 || transferEncoding.toLowerCase() !== 'chunked') {
      return deny('unsupported_transfer_encoding', false)
    }
  }
  if (connection !== undefined && nominatesFramingHeader(connection)) {
    return deny('connection_nominates_framing_header', false)
  }
  return isHttp2 ? checkHttp2Authority(host, authority) : checkHttp1Target(host, line.target)
}

/** HTTP/1: exactly one valid Host; origin-form, or https absolute-form naming the same authority. */
function checkHttp1Target(host: string | undefined, target: string): Denial | undefined {
  // Required on HTTP/1.0 too: routing and the SNI check need a host.
  if (host === undefined) return deny('missing_host', false)
  if (!isValidAuthority(host)) return deny('invalid_host', false)
  if (target.charCodeAt(0) === 0x2f /* / */) return undefined
  // Absolute-form: the authority in the target wins over Host (RFC 9112 3.2.2),
  // so the two must agree or routing and the upstream could see different hosts.
  const scheme = target.slice(0, 8).toLowerCase()
  if (scheme !== 'https://') return deny('invalid_request_target', false)
  let end = 8
  while (end < target.length) {
    const c = target.charCodeAt(end)
    if (c === 0x2f || c === 0x3f || c === 0x23) break
    end++
  }
  const targetAuthority = target.slice(8, end)
  if (!isValidAuthority(targetAuthority)) return deny('invalid_request_target', false)
  if (canonicalAuthority(targetAuthority) !== canonicalAuthority(host)) return deny('host_authority_mismatch', false)
  return undefined
}

/** HTTP/2: `:authority` (or `host` alone) valid; when both are present they agree. */
function checkHttp2Authority(host: string | undefined, authority: string | undefined): Denial | undefined {
  const effective = authority ?? host
  if (effective === undefined) return deny('missing_host', true)
  if (!isValidAuthority(effective)) return deny('invalid_host', true)
  if (host !== undefined && authority !== undefined && canonicalAuthority(host) !== canonicalAuthority(authority)) {
    return deny('host_authority_mismatch', true)
  }
  return undefined
}

/** True when the comma-separated list `value` holds `token` (case-insensitive, OWS ignored). */
export function hasToken(value: string, token: string): boolean {
  const lower = value.toLowerCase()
  let from = 0
  while (from <= lower.length) {
    let comma = lower.indexOf(',', from)
    if (comma < 0) comma = lower.length
    if (lower.slice(from, comma).trim() === token) return true
    from = comma + 1
  }
  return false
}

/**
 * A Connection header may name end-to-end headers to strip at the next hop;
 * naming a framing header is only ever an attempt to make hops disagree.
 */
function nominatesFramingHeader(connection: string): boolean {
  for (const part of connection.split(',')) {
    const token = part.trim().toLowerCase()
    if (token === 'content-length' || token === 'transfer-encoding' || token === 'host') return true
  }
  return false
}
