/**
 * Names a verified client certificate: which `identities:` entries it is.
 * Matchers are compiled once per config; the names are computed once per
 * Identity (i.e. per connection) and cached, so authz per request is a set
 * lookup.
 */
import { ConfigError } from '../config/issues.js'
import type { IdentitiesConfig, IdentityMatcherConfig } from '../config/schema/identities.js'
import type { Identity } from './context.js'

type Predicate = (id: Identity) => boolean

/**
 * Compiles the identities section into a function returning the names (in
 * config order, frozen) of every identity with at least one matching matcher;
 * a matcher matches when all of its fields do. Results are cached per
 * Identity object in a WeakMap, so a long-lived connection pays once and a
 * closed one leaves nothing behind. A new config gets a new function and an
 * empty cache.
 *
 * Field semantics (all values compared exactly unless stated):
 * - spiffeId: the certificate's single SPIFFE id (Identity.spiffeId; a
 *   certificate with several spiffe:// URIs has none, per the SPIFFE X509-SVID
 *   spec).
 * - spiffePrefix: that id equals the prefix or continues it with "/": a
 *   path-segment boundary, so "spiffe://td/ns/a" does not admit
 *   "spiffe://td/ns/ab". A trailing "/" on the prefix is ignored.
 * - dns: any DNS SAN, case-insensitive. "*.example.com" matches exactly one
 *   non-empty label made of letters, digits and "-" (RFC 6125); a SAN that is
 *   itself a wildcard never satisfies a matcher, exact or wildcard, so a
 *   wildcard certificate cannot stand in for a named host.
 * - uri: any URI SAN, exact. email: any email SAN, case-insensitive.
 * - subject: every listed attribute (short name as Node prints it: CN, O, OU,
 *   C, ...) has the value among its values in the subject.
 * - fingerprint / issuerFingerprint: SHA-256 hex, lowercase (the schema
 *   normalises config; Identity is lowercase by contract). These are public
 *   values, so a plain comparison is fine.
 *
 * Throws ConfigError when a matcher has no field or `subject: {}`: an empty
 * matcher would match every certificate, which must never happen by accident
 * (the schema refuses the first but not the second).
 */
export function compileIdentityMatchers(cfg: IdentitiesConfig): (identity: Identity) => readonly string[] {
  const compiled: { name: string; matchers: Predicate[] }[] = Object.entries(cfg).map(([name, matchers]) => ({
    name,
    matchers: matchers.map((m, i) => compileMatcher(m, ['identities', name, i])),
  }))
  const cache = new WeakMap<Identity, readonly string[]>()
  return (identity) => {
    const hit = cache.get(identity)
    if (hit) return hit
    const names = Object.freeze(compiled.filter((c) => c.matchers.some((m) => m(identity))).map((c) => c.name))
    cache.set(identity, names)
    return names
  }
}

function compileMatcher(m: IdentityMatcherConfig, path: (string | number)[]): Predicate {
  const checks: Predicate[] = []
  if (m.spiffeId !== undefined) {
    const want = m.spiffeId
    checks.push((id) => id.spiffeId === want)
  }
  if (m.spiffePrefix !== undefined) {
    const prefix = m.spiffePrefix.endsWith('/') ? m.spiffePrefix.slice(0, -1) : m.spiffePrefix
    const below = prefix + '/'
    checks.push((id) => id.spiffeId !== undefined && (id.spiffeId === prefix || id.spiffeId.startsWith(below)))
  }
  if (m.dns !== undefined) {
    const want = m.dns.toLowerCase()
    if (want.startsWith('*.')) {
      const suffix = want.slice(1) // ".example.com"
      checks.push((id) => id.san.dns.some((d) => isOneLabelUnder(d.toLowerCase(), suffix)))
    } else checks.push((id) => id.san.dns.some((d) => !d.includes('*') && d.toLowerCase() === want))
  }
  if (m.uri !== undefined) {
    const want = m.uri
    checks.push((id) => id.san.uri.includes(want))
  }
  if (m.email !== undefined) {
    const want = m.email.toLowerCase()
    checks.push((id) => id.san.email.some((e) => e.toLowerCase() === want))
  }
  if (m.subject !== undefined) {
    const wanted = Object.entries(m.subject)
    // `subject: {}` passes the schema but would match every certificate.
    if (wanted.length === 0) throw new ConfigError([{ path: [...path, 'subject'], message: 'subject needs at least one attribute' }])
    checks.push((id) => wanted.every(([attr, value]) => id.subjectFields[attr]?.includes(value) === true))
  }
  if (m.fingerprint !== undefined) {
    const want = m.fingerprint
    checks.push((id) => id.fingerprint256 === want)
  }
  if (m.issuerFingerprint !== undefined) {
    const want = m.issuerFingerprint
    checks.push((id) => id.issuerFingerprint256 === want)
  }
  if (checks.length === 0) throw new ConfigError([{ path, message: 'a matcher needs at least one field' }])
  return (id) => checks.every((check) => check(id))
}

const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/

/** `name` is exactly one DNS label followed by `suffix` (which starts with "."). */
function isOneLabelUnder(name: string, suffix: string): boolean {
  if (!name.endsWith(suffix)) return false
  return LABEL.test(name.slice(0, name.length - suffix.length))
}
