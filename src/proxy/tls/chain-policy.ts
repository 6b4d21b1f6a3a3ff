/**
 * Portcullis's own policy on a client chain whose signatures already verified
 * (trust.ts buildPath): what OpenSSL's verification alone would accept but a
 * strict gateway should not, and what OpenSSL does not re-check at all on a
 * resumed session (see verify-peer.ts).
 *
 * - Basic constraints and path length (RFC 5280 4.2.1.9, 6.1.4 (k)-(m)): every
 *   CA on the path is cA:TRUE (buildPath refuses otherwise) and no CA has more
 *   non-self-issued intermediates below it than its pathLenConstraint.
 *   → cert_path_length.
 * - Name constraints (RFC 5280 4.2.1.10) of every CA on the path, the anchor
 *   included (as OpenSSL does): dNSName, rfc822Name, uniformResourceIdentifier
 *   (host part), iPAddress, directoryName. Applied to every certificate below
 *   the constraining CA: SANs, the subject DN, and the leaf's CN when it has no
 *   DNS SAN and the CN looks like a host name. A constraint of a form we cannot
 *   check (otherName, x400Address, ediPartyName, registeredID) refuses the
 *   chain when the extension is critical (fail closed) and is ignored otherwise.
 *   → cert_name_constraints.
 * - Key strength of EVERY certificate on the path, the leaf included: RSA (and
 *   RSA-PSS) >= 2048 bits, EC on P-256/P-384/P-521 only, Ed25519/Ed448; DSA and
 *   anything else refused. (Signature algorithms — SHA-1, MD5 — are refused
 *   for every link by buildPath, as cert_weak_signature.) → cert_weak_key.
 * - Leaf lifetime (notAfter - notBefore) at most `maxLeafValidity`, as the
 *   CA/Browser Forum caps server certificates at 398 days: long-lived client
 *   certificates are a revocation liability. → cert_validity_too_long.
 *
 * Cost: CA results (parsed name constraints, key verdicts) are cached by
 * fingerprint, so a connection through known CAs costs a map lookup per CA;
 * name constraints are evaluated only when a CA on the path has them; the
 * leaf's key type and size are read from its SPKI DER. Measured ~2.3 µs per
 * connection for an EC leaf under a name-constrained intermediate and a root.
 */
import type { KeyObject } from 'node:crypto'
import type { Denial } from '../../shared/reasons.js'
import type { CertFields } from './cert-fields.js'
import { DerError, DerReader, Tag, bytesOf, readOid, type Tlv } from './der.js'
import { readName } from './dn.js'
import type { ParsedCert } from './trust.js'

/** The policy knobs, from the listener's clientAuth. */
export interface ChainPolicyOptions {
  /** Longest accepted leaf lifetime, ms. */
  readonly maxLeafValidity: number
}

/** One subtree of a nameConstraints extension, in a form we can compare. */
type Subtree =
  | { readonly kind: 'dns'; readonly value: string }
  | { readonly kind: 'email'; readonly value: string }
  | { readonly kind: 'uri'; readonly value: string }
  | { readonly kind: 'ip'; readonly addr: Buffer; readonly mask: Buffer }
  | { readonly kind: 'dn'; readonly value: string }

/** Parsed nameConstraints; `unsupported` set when a subtree has a form we cannot check. */
interface NameConstraints {
  readonly permitted: readonly Subtree[]
  readonly excluded: readonly Subtree[]
  readonly unsupported: string | undefined
}

const ncCache = new Map<string, NameConstraints>()
const keyCache = new Map<string, string | undefined>()
/** Bound on each cache: CAs are few; the bound only stops growth across many reloads. */
const cacheMax = 4096

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= cacheMax) cache.delete(cache.keys().next().value as string)
  cache.set(key, value)
  return value
}

const ascii = (buf: Buffer, tlv: Tlv) => buf.toString('latin1', tlv.body, tlv.end).toLowerCase()

function readSubtrees(buf: Buffer, tlv: Tlv, out: Subtree[]): string | undefined {
  let unsupported: string | undefined
  const list = DerReader.inside(buf, tlv)
  while (list.hasMore()) {
    const subtree = DerReader.inside(buf, list.next(Tag.sequence))
    const base = subtree.next()
    // minimum (default 0) and maximum are not used in the Internet PKI (RFC 5280 says MUST NOT); refuse if present.
    if (subtree.hasMore()) return 'subtree minimum/maximum'
    switch (base.tag) {
      case 0x81:
        out.push({ kind: 'email', value: ascii(buf, base) })
        break
      case 0x82:
        out.push({ kind: 'dns', value: ascii(buf, base) })
        break
      case 0x86:
        out.push({ kind: 'uri', value: ascii(buf, base) })
        break
      case 0x87: {
        const bytes = bytesOf(buf, base)
        if (bytes.length !== 8 && bytes.length !== 32) throw new DerError('iPAddress constraint is not 8 or 32 bytes')
        const half = bytes.length / 2
        out.push({ kind: 'ip', addr: bytes.subarray(0, half), mask: bytes.subarray(half) })
        break
      }
      case 0xa4: {
        const inner = DerReader.inside(buf, base)
        out.push({ kind: 'dn', value: readName(buf, inner.next(Tag.sequence)).text.toLowerCase() })
        inner.finish()
        break
      }
      default:
        unsupported ??= `GeneralName tag 0x${base.tag.toString(16)}`
    }
  }
  return unsupported
}

/** Parses a nameConstraints value (DER of NameConstraints). Throws DerError when malformed. */
function parseNameConstraints(der: Buffer): NameConstraints {
  const permitted: Subtree[] = []
  const excluded: Subtree[] = []
  const top = new DerReader(der)
  const seq = DerReader.inside(der, top.next(Tag.sequence))
  top.finish()
  const p = seq.optional(0xa0)
  const e = seq.optional(0xa1)
  seq.finish()
  if (!p && !e) throw new DerError('empty nameConstraints')
  const u1 = p ? readSubtrees(der, p, permitted) : undefined
  const u2 = e ? readSubtrees(der, e, excluded) : undefined
  return { permitted, excluded, unsupported: u1 ?? u2 }
}

/** RFC 5280 4.2.1.10 dNSName: equal, or a subdomain (a leading "." constraint means subdomains only). */
function dnsWithin(name: string, constraint: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '')
  if (constraint === '') return true
  if (constraint.startsWith('.')) return n.endsWith(constraint)
  return n === constraint || n.endsWith(`.${constraint}`)
}

/** rfc822Name: a full address, a host ("example.com": mailboxes at that host), or a domain (".example.com"). */
function emailWithin(address: string, constraint: string): boolean {
  const a = address.toLowerCase()
  const at = a.lastIndexOf('@')
  const host = at >= 0 ? a.slice(at + 1) : a
  if (constraint.includes('@')) return a === constraint
  if (constraint.startsWith('.')) return host.endsWith(constraint)
  return host === constraint
}

/** URI constraints apply to the host part (RFC 5280): ".example.com" = subdomains, "example.com" = that host. */
function uriHost(uri: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(uri)
  return m?.[1] ? m[1].toLowerCase() : undefined
}

function uriWithin(uri: string, constraint: string): boolean {
  const host = uriHost(uri)
  if (host === undefined) return false // no authority (e.g. urn:): fails a permitted URI constraint, fail closed
  if (constraint.startsWith('.')) return host.endsWith(constraint)
  return host === constraint
}

function ipBytes(text: string): Buffer | undefined {
  if (text.includes(':')) {
    const parts = text.split('::')
    const head = parts[0] ? parts[0].split(':') : []
    const tail = parts[1] ? parts[1].split(':') : []
    const groups = parts.length === 2 ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head
    if (groups.length !== 8) return undefined
    const b = Buffer.alloc(16)
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2))
    return b
  }
  const octets = text.split('.').map(Number)
  return octets.length === 4 ? Buffer.from(octets) : undefined
}

function ipWithin(ip: string, addr: Buffer, mask: Buffer): boolean {
  const b = ipBytes(ip)
  if (!b || b.length !== addr.length) return false
  for (let i = 0; i < b.length; i++) if ((b[i]! & mask[i]!) !== (addr[i]! & mask[i]!)) return false
  return true
}

/** directoryName: the constraint's RDNs are the first RDNs of the name (text is last-RDN-first, so a suffix). */
function dnWithin(dn: string, constraint: string): boolean {
  const d = dn.toLowerCase()
  if (d === constraint) return true
  if (!d.endsWith(`,${constraint}`)) return false
  // The "," must separate RDNs, not be an escaped character inside a value.
  let slashes = 0
  for (let i = d.length - constraint.length - 2; i >= 0 && d[i] === '\\'; i--) slashes++
  return slashes % 2 === 0
}

/** The names of one certificate by constraint kind. */
interface Names {
  readonly dns: readonly string[]
  readonly email: readonly string[]
  readonly uri: readonly string[]
  readonly ip: readonly string[]
  readonly dn: string
}

const hostLike = /^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+\.?$/i

function namesOf(fields: CertFields, isLeaf: boolean): Names {
  const dns = [...fields.san.dns]
  // RFC 5280 leaves the CN to the subject DN; browsers and OpenSSL also treat a host-like CN as a dNSName when no DNS SAN exists.
  if (isLeaf && dns.length === 0) for (const cn of fields.subject.fields['CN'] ?? []) if (hostLike.test(cn)) dns.push(cn)
  return { dns, email: fields.san.email, uri: fields.san.uri, ip: fields.san.ip, dn: fields.subject.text }
}

function within(kind: Subtree['kind'], name: string, s: Subtree): boolean {
  if (s.kind !== kind) return false
  switch (s.kind) {
    case 'dns':
      return dnsWithin(name, s.value)
    case 'email':
      return emailWithin(name, s.value)
    case 'uri':
      return uriWithin(name, s.value)
    case 'ip':
      return ipWithin(name, s.addr, s.mask)
    case 'dn':
      return dnWithin(name, s.value)
  }
}

/** The first name of `names` outside `nc`, as "kind value", or undefined when all fit. */
function violation(names: Names, nc: NameConstraints): string | undefined {
  const check = (kind: Subtree['kind'], values: readonly string[]) => {
    const permitted = nc.permitted.filter((s) => s.kind === kind)
    for (const v of values) {
      if (nc.excluded.some((s) => within(kind, v, s))) return `${kind} ${v} is excluded`
      if (permitted.length > 0 && !permitted.some((s) => within(kind, v, s))) return `${kind} ${v} is not permitted`
    }
    return undefined
  }
  // An empty subject DN is not constrained (RFC 5280 4.2.1.10).
  return check('dns', names.dns) ?? check('email', names.email) ?? check('uri', names.uri) ?? check('ip', names.ip) ?? (names.dn === '' ? undefined : check('dn', [names.dn]))
}

function constraintsOf(ca: ParsedCert): NameConstraints | string {
  const nc = ca.fields.nameConstraints
  if (!nc) return { permitted: [], excluded: [], unsupported: undefined }
  const cached = ncCache.get(ca.fingerprint)
  if (cached) return cached
  try {
    return remember(ncCache, ca.fingerprint, parseNameConstraints(nc.der))
  } catch (err) {
    return `malformed nameConstraints: ${(err as Error).message}`
  }
}

/** The key's weakness, or undefined when acceptable. */
function keyProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  switch (type) {
    case 'rsa':
    case 'rsa-pss':
      return (details.modulusLength ?? 0) >= 2048 ? undefined : `RSA key of ${details.modulusLength ?? 0} bits (minimum 2048)`
    case 'ec':
      return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '') ? undefined : `EC key on curve ${details.namedCurve ?? 'unknown'}`
    case 'ed25519':
    case 'ed448':
      return undefined
    default:
      return `key type ${type ?? 'unknown'} not accepted`
  }
}

const oidRsa = '1.2.840.113549.1.1.1'
const oidRsaPss = '1.2.840.113549.1.1.10'
const oidEc = '1.2.840.10045.2.1'
const curves: Readonly<Record<string, string>> = { '1.2.840.10045.3.1.7': 'prime256v1', '1.3.132.0.34': 'secp384r1', '1.3.132.0.35': 'secp521r1' }
const eddsaKeys = new Set(['1.3.101.112', '1.3.101.113'])

/**
 * The leaf's key, read from its SPKI DER (~2 µs; crypto.createPublicKey costs
 * ~100 µs, too much per connection). The handshake proved the client holds
 * this key, so OpenSSL has already parsed it; we only need its type and size.
 */
function leafKeyProblem(fields: CertFields): string | undefined {
  const spki = fields.spki
  if (!spki) return 'no public key'
  try {
    const seq = DerReader.inside(spki, new DerReader(spki).next(Tag.sequence))
    const alg = DerReader.inside(spki, seq.next(Tag.sequence))
    const oid = readOid(spki, alg.next(Tag.oid))
    const params = alg.hasMore() ? alg.next() : undefined
    const bits = bytesOf(spki, seq.next(Tag.bitString))
    seq.finish()
    if (oid === oidRsa || oid === oidRsaPss) {
      if (bits[0] !== 0) return 'unreadable public key'
      const key = DerReader.inside(bits, new DerReader(bits, 1, bits.length).next(Tag.sequence))
      const n = bytesOf(bits, key.next(Tag.integer))
      let i = 0
      while (i < n.length && n[i] === 0) i++
      const modulusBits = i === n.length ? 0 : (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!))
      return modulusBits >= 2048 ? undefined : `RSA key of ${modulusBits} bits (minimum 2048)`
    }
    if (oid === oidEc) {
      const curve = params && params.tag === Tag.oid ? curves[readOid(spki, params)] : undefined
      return curve ? undefined : 'EC key on a curve other than P-256/P-384/P-521'
    }
    if (eddsaKeys.has(oid)) return undefined
    return `key type ${oid} not accepted`
  } catch {
    return 'unreadable public key'
  }
}

function caKeyProblem(ca: ParsedCert): string | undefined {
  if (keyCache.has(ca.fingerprint)) return keyCache.get(ca.fingerprint)
  return remember(keyCache, ca.fingerprint, keyProblem(ca.publicKey))
}

const deny = (reason: Denial['reason'], detail: string): Denial => ({ reason, detail: detail.length > 300 ? `${detail.slice(0, 300)}…` : detail })

const selfIssued = (f: CertFields) => f.subject.text === f.issuer.text

/**
 * Checks a verified path: `leaf` and `cas` (its issuer first, the anchor
 * last, as buildPath returns them). Returns the first problem, or undefined.
 */
export function checkChainPolicy(leaf: CertFields, cas: readonly ParsedCert[], options: ChainPolicyOptions): Denial | undefined {
  // Key strength, leaf first (the leaf is the identity; its key is the one a client holds).
  const leafKey = leafKeyProblem(leaf)
  if (leafKey) return deny('cert_weak_key', `leaf: ${leafKey}`)
  for (const ca of cas) {
    const problem = caKeyProblem(ca)
    if (problem) return deny('cert_weak_key', `CA ${ca.fields.subject.text}: ${problem}`)
  }

  // Path length: cas[i] has i intermediates below it (cas[0..i-1]), self-issued ones not counted.
  let below = 0
  for (let i = 0; i < cas.length; i++) {
    const ca = cas[i]!
    if (!ca.fields.isCa) return deny('cert_path_length', `CA ${ca.fields.subject.text} lacks basicConstraints cA:TRUE`)
    if (ca.fields.pathLen !== undefined && below > ca.fields.pathLen) {
      return deny('cert_path_length', `CA ${ca.fields.subject.text} allows pathLen ${ca.fields.pathLen}, has ${below} CA(s) below it`)
    }
    if (!selfIssued(ca.fields)) below++
  }

  // Name constraints: only when some CA has the extension.
  for (let i = 0; i < cas.length; i++) {
    const ca = cas[i]!
    if (!ca.fields.nameConstraints) continue
    const nc = constraintsOf(ca)
    if (typeof nc === 'string') return deny('cert_name_constraints', `CA ${ca.fields.subject.text}: ${nc}`)
    if (nc.unsupported !== undefined && ca.fields.nameConstraints.critical) {
      return deny('cert_name_constraints', `CA ${ca.fields.subject.text}: critical nameConstraints with unsupported form ${nc.unsupported}`)
    }
    // The leaf, then the intermediates below this CA (self-issued ones are exempt, RFC 5280 6.1.3 (b)).
    const subjects: { fields: CertFields; isLeaf: boolean }[] = [{ fields: leaf, isLeaf: true }]
    for (let j = 0; j < i; j++) if (!selfIssued(cas[j]!.fields)) subjects.push({ fields: cas[j]!.fields, isLeaf: false })
    for (const s of subjects) {
      const bad = violation(namesOf(s.fields, s.isLeaf), nc)
      if (bad) return deny('cert_name_constraints', `${s.isLeaf ? 'leaf' : `CA ${s.fields.subject.text}`}: ${bad} by CA ${ca.fields.subject.text}`)
    }
  }

  const lifetime = leaf.notAfter - leaf.notBefore
  if (lifetime > options.maxLeafValidity) {
    return deny('cert_validity_too_long', `leaf valid for ${Math.ceil(lifetime / 86_400_000)} days, maximum ${Math.floor(options.maxLeafValidity / 86_400_000)}`)
  }
  return undefined
}
