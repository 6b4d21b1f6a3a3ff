/**
 * Syntax checks and allow-list matching for the names the CA puts in SANs.
 * Strict on purpose: a name the CA signs is trusted by every relying party,
 * so anything ambiguous (trailing dots, percent-encoding, `..` segments,
 * upper-case trust domains) is refused rather than normalised.
 */
import { isIP } from 'node:net'
import type { SanType } from './profiles.js'

/** One subject alternative name as the CA writes and the inventory records it. */
export interface San {
  readonly type: SanType
  readonly value: string
}

const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

/**
 * A lower-case DNS host name (LDH labels, at most 253 characters), optionally
 * with one leading `*` wildcard label over at least two more labels. Single
 * labels ("localhost", cluster-internal names) are allowed; dotted-decimal
 * IPs are not (they belong in IP SANs). No trailing dot: certificates and
 * SNI never carry one, and allowing it would make "a.example.com." and
 * "a.example.com" two names.
 */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253 || isIP(name) !== 0) return false
  const labels = name.split('.')
  if (labels[0] === '*' && labels.length < 3) return false
  return labels.every((l, i) => (i === 0 && l === '*') || label.test(l))
}

const trustDomain = /^[a-z0-9._-]+$/
const pathSegment = /^[A-Za-z0-9._-]+$/

/**
 * A SPIFFE ID per the SPIFFE-ID spec: `spiffe://` + lower-case trust domain,
 * then optional path segments of [A-Za-z0-9._-], none empty, `.` or `..`; no
 * query, fragment, port, user info, percent-encoding or trailing slash.
 */
export function isSpiffeId(id: string): boolean {
  if (!id.startsWith('spiffe://') || id.length > 2048) return false
  const rest = id.slice('spiffe://'.length)
  const slash = rest.indexOf('/')
  const domain = slash === -1 ? rest : rest.slice(0, slash)
  if (!trustDomain.test(domain)) return false
  if (slash === -1) return true
  const segments = rest.slice(slash + 1).split('/')
  return segments.every((s) => pathSegment.test(s) && s !== '.' && s !== '..')
}

/**
 * Does `name` fall under `pattern`? A pattern is an exact name, or
 * `*.suffix`, which allows any name strictly below `suffix` (at any depth,
 * as an RFC 5280 name constraint ".suffix" would) but not `suffix` itself.
 * A requested wildcard name (`*.x.example.com`) is allowed only by an exact
 * entry for it: a wildcard certificate covers names the partner was never
 * individually granted.
 */
export function dnsNameAllowed(pattern: string, name: string): boolean {
  if (name.startsWith('*.')) return pattern === name
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1) // ".example.com"
    return name.length > suffix.length && name.endsWith(suffix)
  }
  return pattern === name
}

/**
 * Does `id` fall under `prefix` at a path-segment boundary? "spiffe://td/ns/a"
 * allows itself and "spiffe://td/ns/a/x", never "spiffe://td/ns/ab"; a bare
 * trust domain allows every id in it. Both must be valid SPIFFE ids.
 */
export function spiffeIdAllowed(prefix: string, id: string): boolean {
  return id === prefix || id.startsWith(`${prefix}/`)
}

/** A loose but safe email address check: one @, no spaces or controls, a DNS domain. */
export function isEmailAddress(value: string): boolean {
  const at = value.lastIndexOf('@')
  if (at <= 0 || value.length > 254) return false
  return /^[!-~]+$/.test(value) && !value.slice(0, at).includes('@') && isDnsName(value.slice(at + 1).toLowerCase())
}

/** Syntax check for one SAN; returns why it is invalid, or undefined. URIs other than spiffe:// are refused: nothing we verify uses them. */
export function sanSyntaxError(san: San): string | undefined {
  switch (san.type) {
    case 'dns':
      return isDnsName(san.value) ? undefined : `invalid DNS name "${san.value}"`
    case 'ip':
      return isIP(san.value) ? undefined : `invalid IP address "${san.value}"`
    case 'uri':
      return isSpiffeId(san.value) ? undefined : `invalid SPIFFE id "${san.value}"`
    case 'email':
      return isEmailAddress(san.value) ? undefined : `invalid email address "${san.value}"`
  }
}
