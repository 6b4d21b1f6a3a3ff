/**
 * Request-target normalisation, done once per request so that routing, the
 * stages and the upstream all see the same path. A gateway that routes on one
 * reading of a path while the upstream acts on another is the root of most
 * ACL bypasses (`/api/..;/admin`, `/%2e%2e/`, `//admin`), so everything
 * ambiguous is either resolved here into one canonical form or refused.
 */
import type { Denial } from '../shared/reasons.js'

/** How to normalise; from the gateway's `paths:` config plus the route's URL limit. */
export interface PathOptions {
  /** `%2F` / `%5C` in the path: refuse (invalid_path) or keep encoded (never decoded into a separator). */
  readonly encodedSlash: 'reject' | 'keep'
  /** Collapse runs of "/" into one. */
  readonly mergeSlashes: boolean
  /** Longest request target (path and query) accepted; longer is uri_too_long. Default: no limit here. */
  readonly maxLength?: number
}

/** The normalised path and the untouched query. */
export interface NormalizedTarget {
  /** Canonical path, always starting with "/". */
  readonly path: string
  /** Query without the leading "?", byte-for-byte as received; '' when none. */
  readonly query: string
}

// Character classes for the path (7-bit only; anything else is refused).
const REJECT = 0 // controls, space, DEL, "\", "#"
const PLAIN = 1 // RFC 3986 pchar and "/": kept as is
const PERCENT = 2
const ENCODE = 3 // printable ASCII RFC 3986 does not allow raw in a path: re-encoded

const CLASS = new Uint8Array(128) // REJECT by default
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") CLASS[ch.charCodeAt(0)] = PLAIN
for (const ch of '"<>[]^`{|}') CLASS[ch.charCodeAt(0)] = ENCODE
CLASS[0x25] = PERCENT

const UNRESERVED = new Uint8Array(128)
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[ch.charCodeAt(0)] = 1

const HEX_VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < 16; i++) {
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i
}
/** "%XX" with uppercase hex for every byte value, built once. */
const ENCODED = Array.from({ length: 256 }, (_, b) => '%' + b.toString(16).toUpperCase().padStart(2, '0'))

const SLASH = 0x2f
const DOT = 0x2e
const SEMI = 0x3b

// Denials are shared frozen values: no allocation on the path attackers flood.
const deny = (reason: 'invalid_path' | 'uri_too_long', detail: string): Denial => Object.freeze({ reason, detail })
const TOO_LONG = deny('uri_too_long', 'request target longer than the limit')
const NOT_ORIGIN_FORM = deny('invalid_path', 'request target is not origin-form (absolute-form, authority-form or empty)')
const ASTERISK = deny('invalid_path', 'asterisk-form ("*") is not routable')
const BAD_CHAR = deny('invalid_path', 'control character, space, backslash or fragment in path')
const NON_ASCII = deny('invalid_path', 'raw non-ASCII byte in path')
const BAD_QUERY = deny('invalid_path', 'control character, space, non-ASCII byte or fragment in query')
const BAD_ESCAPE = deny('invalid_path', 'malformed percent-escape')
const ENCODED_CONTROL = deny('invalid_path', 'percent-encoded control character')
const ENCODED_SLASH = deny('invalid_path', 'percent-encoded "/" or "\\"')
const BAD_UTF8 = deny('invalid_path', 'percent-encoded bytes are not well-formed UTF-8')
const ABOVE_ROOT = deny('invalid_path', 'dot segment climbs above the root')
const DOT_PARAMS = deny('invalid_path', 'dot segment with parameters (";")')

/**
 * Normalises an HTTP request target (`req.url` / `:path`).
 *
 * Accepted form: origin-form only (RFC 9112 §3.2.1), i.e. it starts with "/".
 * - absolute-form (`http://h/p`) is refused although RFC 9112 §3.2.2 says a
 *   server MUST accept it: we are a reverse proxy, routing on Host; a target
 *   carrying a second host is only ever sent to forward proxies or by
 *   someone probing for host confusion.
 * - asterisk-form (`OPTIONS *`) is refused: it addresses the server as a
 *   whole, no route can name it, and forwarding it to one arbitrary upstream
 *   would answer for the wrong party.
 * - authority-form (CONNECT) is refused: we do not tunnel.
 *
 * Query: split at the first "?" and passed on byte-for-byte (no decoding, no
 * re-encoding: its meaning belongs to the upstream). It is only checked for
 * bytes that can never be valid and would be dangerous downstream (controls,
 * space, DEL, non-ASCII, "#").
 *
 * Path, in this order:
 * 1. Refused outright (invalid_path): raw controls, space, DEL, "\" (treated
 *    as "/" by some servers), "#" (fragments are never sent), raw bytes
 *    above 0x7E, a "%" not followed by two hex digits, percent-encoded
 *    controls (%00-%1F, %7F), and percent-encoded bytes that are not
 *    well-formed UTF-8 (Unicode Table 3-7; catches overlong `%C0%AE` = ".").
 * 2. Percent-encoding normalised (RFC 3986 §6.2.2.1-2): unreserved
 *    characters (ALPHA DIGIT - . _ ~) are decoded; every other escape keeps
 *    its encoding with uppercase hex. Decoding happens exactly once, so
 *    `%252e` stays the literal `%252E`, never a dot.
 * 3. `%2F` and `%5C` are refused, or kept encoded with `encodedSlash: keep`;
 *    they are never turned into separators.
 * 4. Printable ASCII that RFC 3986 does not allow raw in a path
 *    (`" < > [ ] ^ \` { | }`) is percent-encoded, so each path has one
 *    spelling (browsers send `|` and `[` raw, others encode them).
 * 5. Runs of "/" are merged when `mergeSlashes` (before step 6, so the empty
 *    segment in `/a//../b` does not exist and the result is `/b`).
 * 6. Dot segments are removed (RFC 3986 §5.2.4), after decoding, so `%2e%2E`
 *    and `.%2e` are dots too. Climbing above the root (`/../x`) is refused,
 *    not clamped: no conforming client sends it (clients resolve references
 *    before sending), so it is a probe, and refusing makes it visible in the
 *    log. A segment that is a dot segment followed by parameters (`..;x`,
 *    `.;`, also `..%3B`) is refused: Tomcat and Jetty strip the parameters
 *    and then climb, which is the classic `/api/..;/admin` bypass.
 * A trailing "/" is significant and kept (`/a/` and `/a` differ).
 *
 * Returns a Denial value (never throws). The common clean path takes a
 * single scan and no allocation beyond the returned object.
 */
export function normalizePath(target: string, opts: PathOptions): NormalizedTarget | Denial {
  const length = target.length
  if (opts.maxLength !== undefined && length > opts.maxLength) return TOO_LONG
  if (length === 0 || target.charCodeAt(0) !== SLASH) return target === '*' ? ASTERISK : NOT_ORIGIN_FORM

  const q = target.indexOf('?')
  const end = q < 0 ? length : q
  let query = ''
  if (q >= 0) {
    for (let i = q + 1; i < length; i++) {
      const c = target.charCodeAt(i)
      if (c <= 0x20 || c >= 0x7f || c === 0x23) return BAD_QUERY
    }
    query = target.slice(q + 1)
  }

  // Scan: refuse what is never valid, and notice whether anything would change.
  const merge = opts.mergeSlashes
  let isDirty = false
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i)
    if (c >= 0x80) return NON_ASCII
    const cls = CLASS[c]!
    if (cls === PLAIN) {
      if (c === SLASH && i + 1 < end) {
        const next = target.charCodeAt(i + 1)
        if ((next === SLASH && merge) || (next === DOT && isDotStart(target, i + 1, end))) isDirty = true
      }
    } else if (cls === REJECT) return BAD_CHAR
    else isDirty = true // PERCENT or ENCODE
  }
  if (!isDirty) return { path: q < 0 ? target : target.slice(0, end), query }
  return rebuild(target, end, query, opts)
}

/** A segment starting at `i` that begins ".", ".." followed by end, "/" or ";" (a dot segment, maybe with parameters). */
function isDotStart(s: string, i: number, end: number): boolean {
  let j = i + 1
  if (j < end && s.charCodeAt(j) === DOT) j++
  return j === end || s.charCodeAt(j) === SLASH || s.charCodeAt(j) === SEMI
}

/** True for ".x" / "..x" where x starts parameters (";" or "%3B"), i.e. a dot segment in disguise. */
function isDotWithParams(seg: string): boolean {
  if (seg.charCodeAt(0) !== DOT) return false
  const j = seg.charCodeAt(1) === DOT ? 2 : 1
  return seg.charCodeAt(j) === SEMI || seg.startsWith('%3B', j)
}

/** The slow path: decode, re-encode, check UTF-8, split, merge and remove dot segments. */
function rebuild(target: string, end: number, query: string, opts: PathOptions): NormalizedTarget | Denial {
  const segments: string[] = []
  let seg = ''
  // UTF-8 well-formedness across consecutive escapes (Unicode Table 3-7).
  let pending = 0
  let lo = 0x80
  let hi = 0xbf
  for (let i = 1; i < end; i++) {
    const c = target.charCodeAt(i)
    if (c !== 0x25) {
      if (pending > 0) return BAD_UTF8 // a raw character inside an encoded multi-byte sequence
      if (c === SLASH) {
        segments.push(seg)
        seg = ''
      } else seg += CLASS[c] === ENCODE ? ENCODED[c]! : target[i]!
      continue
    }
    if (i + 2 >= end) return BAD_ESCAPE
    const h1 = HEX_VALUE[target.charCodeAt(i + 1)] ?? -1
    const h2 = HEX_VALUE[target.charCodeAt(i + 2)] ?? -1
    if (h1 < 0 || h2 < 0) return BAD_ESCAPE
    const b = h1 * 16 + h2
    i += 2
    if (pending > 0) {
      if (b < lo || b > hi) return BAD_UTF8
      pending--
      lo = 0x80
      hi = 0xbf
      seg += ENCODED[b]!
      continue
    }
    if (b < 0x80) {
      if (b < 0x20 || b === 0x7f) return ENCODED_CONTROL
      if (UNRESERVED[b] === 1) seg += String.fromCharCode(b)
      else if (b === 0x2f || b === 0x5c) {
        if (opts.encodedSlash === 'reject') return ENCODED_SLASH
        seg += ENCODED[b]!
      } else seg += ENCODED[b]!
      continue
    }
    // A lead byte: how many continuation bytes follow, and the range of the first one.
    if (b >= 0xc2 && b <= 0xdf) pending = 1
    else if (b >= 0xe0 && b <= 0xef) {
      pending = 2
      if (b === 0xe0) lo = 0xa0 // no overlong 3-byte forms
      if (b === 0xed) hi = 0x9f // no UTF-16 surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      pending = 3
      if (b === 0xf0) lo = 0x90 // no overlong 4-byte forms
      if (b === 0xf4) hi = 0x8f // nothing above U+10FFFF
    } else return BAD_UTF8 // continuation byte without a lead, overlong C0/C1, F5-FF
    seg += ENCODED[b]!
  }
  if (pending > 0) return BAD_UTF8
  segments.push(seg)

  const out: string[] = []
  const last = segments.length - 1
  for (let k = 0; k <= last; k++) {
    const s = segments[k]!
    if (s === '') {
      if (opts.mergeSlashes && k !== last) continue
      out.push(s)
    } else if (s === '.') {
      if (k === last) out.push('')
    } else if (s === '..') {
      if (out.length === 0) return ABOVE_ROOT
      out.pop()
      if (k === last) out.push('')
    } else if (isDotWithParams(s)) return DOT_PARAMS
    else out.push(s)
  }
  return { path: '/' + out.join('/'), query }
}
