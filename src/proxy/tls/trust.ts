/**
 * Trust anchors, learned intermediates, and the path check that runs on every
 * connection, resumed or not.
 *
 * Why our own path check beside OpenSSL's: on a resumed session OpenSSL does
 * not verify anything (the session keeps the verdict of the handshake that
 * made it, under the trust of that time and of that server name), and Node
 * 20 does not even run the SNI callback on resumption. So every connection
 * walks leaf → issuers → an anchor of the trust bundle that applies NOW to
 * the server name the client asked for, with each signature checked
 * (signature.ts, ~50 µs for P-256): name and key-identifier matching alone
 * would let a CA trusted for one name mint a look-alike of an anchor trusted
 * for another.
 */
import { X509Certificate, type KeyObject } from 'node:crypto'
import { KeyUsage, readCertFields, type CertFields } from './cert-fields.js'
import { sha256Hex } from './identity.js'
import { checkSignature, isAcceptedAlgorithm } from './signature.js'

/**
 * A certificate parsed once: Node's X509Certificate (for its public key and
 * compile-time checks), our fields, fingerprint. Anchors and intermediates at
 * run time; server chains at compile time.
 */
export interface ParsedCert {
  readonly x509: X509Certificate
  readonly der: Buffer
  /** Lowercase hex SHA-256 of the DER. */
  readonly fingerprint: string
  readonly fields: CertFields
  readonly publicKey: KeyObject
}

/** Parses one DER certificate (~150 µs: done for anchors at compile time, for an intermediate once). Throws when malformed. */
export function parseCertificate(der: Buffer): ParsedCert {
  const x509 = new X509Certificate(der)
  return { x509, der, fingerprint: sha256Hex(der), fields: readCertFields(der), publicKey: x509.publicKey }
}

/** Groups certificates by subject (RFC 4514 text) for issuer lookup. */
function bySubject(certs: Iterable<ParsedCert>): Map<string, ParsedCert[]> {
  const map = new Map<string, ParsedCert[]>()
  for (const c of certs) {
    const list = map.get(c.fields.subject.text)
    if (list) list.push(c)
    else map.set(c.fields.subject.text, [c])
  }
  return map
}

/** The anchors that apply to a set of server names; immutable. */
export class TrustGroup {
  private readonly index: Map<string, ParsedCert[]>
  /** SHA-256 over the sorted anchor fingerprints: equal groups have equal ids. */
  readonly id: string

  constructor(
    readonly anchors: readonly ParsedCert[],
    /** The bundle as PEM, for the SecureContext `ca` option. */
    readonly pems: readonly string[],
  ) {
    this.index = bySubject(anchors)
    this.id = sha256Hex(Buffer.from([...new Set(anchors.map((a) => a.fingerprint))].sort().join(',')))
  }

  /** Anchors whose subject is `issuer` (candidates only; signatures decide). */
  issuersOf(issuer: string): readonly ParsedCert[] {
    return this.index.get(issuer) ?? []
  }
}

/**
 * Intermediates seen on verified paths, so resumed sessions can rebuild their
 * path: a session resumed from a ticket carries the leaf but not the chain the
 * client sent (OpenSSL 3.0 does not store it in the ticket). Pooled
 * intermediates are candidates, never trust: a path through one still has to
 * end, signature by signature, at a current anchor. Bounded (oldest out), and
 * only verified intermediates get in, so clients cannot fill it with junk.
 */
export class IntermediatePool {
  private readonly byFingerprint = new Map<string, ParsedCert>()
  private readonly index = new Map<string, ParsedCert[]>()

  constructor(private readonly max = 1024) {}

  get size(): number {
    return this.byFingerprint.size
  }

  get(fingerprint: string): ParsedCert | undefined {
    return this.byFingerprint.get(fingerprint)
  }

  issuersOf(issuer: string): readonly ParsedCert[] {
    return this.index.get(issuer) ?? []
  }

  add(cert: ParsedCert): void {
    if (this.byFingerprint.has(cert.fingerprint)) return
    if (this.byFingerprint.size >= this.max) {
      const oldest = this.byFingerprint.values().next().value as ParsedCert
      this.byFingerprint.delete(oldest.fingerprint)
      const list = this.index.get(oldest.fields.subject.text)?.filter((c) => c !== oldest) ?? []
      if (list.length > 0) this.index.set(oldest.fields.subject.text, list)
      else this.index.delete(oldest.fields.subject.text)
    }
    this.byFingerprint.set(cert.fingerprint, cert)
    const list = this.index.get(cert.fields.subject.text)
    if (list) list.push(cert)
    else this.index.set(cert.fields.subject.text, [cert])
  }
}

/** The certificate being walked up from: the leaf or an intermediate. */
interface Link {
  readonly fields: CertFields
}

/** The result of walking from a leaf to an anchor. */
export type PathResult =
  /** `cas`: the leaf's issuer first, the anchor last. */
  | { readonly ok: true; readonly cas: readonly ParsedCert[] }
  /** No anchor reachable; `issuer` is the DN where the walk stopped. */
  | { readonly ok: false; readonly problem: 'unknown_ca'; readonly issuer: string; readonly isSelfSigned: boolean }
  | { readonly ok: false; readonly problem: 'too_long'; readonly depth: number }
  /** A certificate that signed the one below it is not a CA (basicConstraints). */
  | { readonly ok: false; readonly problem: 'not_ca'; readonly subject: string }
  /** A candidate issuer matched by name, but the signature algorithm is not one we accept (e.g. SHA-1). */
  | { readonly ok: false; readonly problem: 'unsupported_signature'; readonly algorithm: string; readonly subject: string; readonly isLeaf: boolean }

/** Hard bound on the walk whatever maxChainDepth says (the schema allows 10). */
const maxSteps = 12

/** `issuer` (already matched by name) may sign certificates and did sign `child`. */
function signed(child: Link, issuer: ParsedCert): boolean {
  if (issuer.fields.keyUsage && !issuer.fields.keyUsage.has(KeyUsage.keyCertSign)) return false
  return checkSignature(child.fields, issuer.publicKey) === 'valid'
}

/**
 * Walks from `leaf` to an anchor of `group`. At each step anchors are tried
 * first, then the pool, then `presented()` (the client's intermediates,
 * fetched only when needed because Node's full chain costs ~180 µs).
 * `maxDepth` counts CA certificates above the leaf, the anchor included.
 */
export function buildPath(
  leaf: Link,
  group: TrustGroup,
  presented: () => readonly ParsedCert[],
  pool: IntermediatePool,
  maxDepth: number,
): PathResult {
  const cas: ParsedCert[] = []
  const used = new Set<string>()
  let cur: Link = leaf
  for (let step = 0; step < maxSteps; step++) {
    const issuerName = cur.fields.issuer.text
    if (!isAcceptedAlgorithm(cur.fields.signatureAlgorithm)) {
      return { ok: false, problem: 'unsupported_signature', algorithm: cur.fields.signatureAlgorithm.oid, subject: cur.fields.subject.text, isLeaf: cur === leaf }
    }
    const anchor = group.issuersOf(issuerName).find((a) => signed(cur, a))
    if (anchor) {
      cas.push(anchor)
      return cas.length > maxDepth ? { ok: false, problem: 'too_long', depth: cas.length } : { ok: true, cas }
    }
    const fits = (c: ParsedCert) => c.fields.subject.text === issuerName && !used.has(c.fingerprint) && signed(cur, c)
    // The pool first: it costs nothing, while the client's chain costs ~180 µs to fetch. Either way signatures decide.
    const next = pool.issuersOf(issuerName).find(fits) ?? presented().find(fits)
    if (!next) {
      const isSelfSigned = cur === leaf && leaf.fields.subject.text === issuerName
      return { ok: false, problem: 'unknown_ca', issuer: issuerName, isSelfSigned }
    }
    if (!next.fields.isCa) return { ok: false, problem: 'not_ca', subject: next.fields.subject.text }
    used.add(next.fingerprint)
    cas.push(next)
    // An anchor is still needed above `next`: stop as soon as the path cannot fit, which also bounds the work a client can cause.
    if (cas.length + 1 > maxDepth) return { ok: false, problem: 'too_long', depth: cas.length + 1 }
    cur = next
  }
  return { ok: false, problem: 'too_long', depth: cas.length }
}
