/**
 * Revocation checking of client certificates from partners' own CAs, for one
 * listener and one config version: the `revocation` blocks of its trust
 * bundles compiled, CRL files read, and the per-connection check.
 *
 * Where the check runs: TLS verification in Node is synchronous and CRL or
 * OCSP lookups are not. So at 'secureConnection' (full and resumed
 * handshakes alike) `check()` answers at once from the caches when it can —
 * the common case, like the RevocationSet lookup — and otherwise returns a
 * promise that the listener makes every request of the connection wait on:
 * nothing is routed, let alone forwarded, before the verdict.
 *
 * The verdict for a chain: revoked (any certificate) → cert_revoked;
 * otherwise any status unknown → cert_revocation_unknown under failMode
 * "hard", admitted and counted under "soft"; otherwise admitted.
 *
 * Per partner: the unit is the trust bundle (clientAuth, or a perServerName
 * entry). Identities are matched after the handshake, and a CA's revocation
 * service (and how much its outage may cost) is a property of the CA; one
 * bundle per partner CA is the norm. Bundles with the same anchors must have
 * the same policy, or a request could move between them by its Host header
 * (the misdirection check compares anchors only).
 */
import type { Registry } from 'prom-client'
import { ConfigError, type ConfigIssue } from '../../../config/issues.js'
import type { ListenerConfig } from '../../../config/schema/listeners.js'
import { readSourceFile, type SourceContext } from '../../../config/secrets.js'
import type { Clock } from '../../../shared/clock.js'
import type { Logger } from '../../../shared/log.js'
import type { Denial } from '../../../shared/reasons.js'
import type { Identity } from '../../context.js'
import { canonicalSerial } from '../../revocation-set.js'
import type { ListenerTls } from '../listener-tls.js'
import { representative } from '../server-names.js'
import type { ParsedCert, TrustGroup } from '../trust.js'
import { BundleRevocation, maySignCrls, type CertLink, type CertStatus, type FileCrl, type RevocationPolicy } from './bundle-revocation.js'
import type { CrlParserPool } from './crl-parser-pool.js'
import { ExternalRevocation } from './external-revocation.js'
import { RevocationList } from './revocation-list.js'

type Path = readonly (string | number)[]

/** What a connection was checked as, kept to check it again when a CRL changes. */
export interface RevocationSubject {
  readonly serverName: string | undefined
  readonly links: readonly CertLink[]
}

/** The outcome of `check()`: decided now, or pending until a source answers. */
export type RevocationCheck =
  | { readonly subject: RevocationSubject; readonly denial: Denial | undefined }
  | { readonly subject: RevocationSubject; readonly pending: Promise<Denial | undefined> }

/** What compileListenerRevocation needs besides the listener config. */
export interface ListenerRevocationDeps {
  /** The listener's compiled TLS: which trust bundle serves a name. */
  readonly tls: ListenerTls
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  readonly metrics?: Registry
  /** The process's CRL worker pool. */
  readonly pool: CrlParserPool
  /** Config path of the listener, e.g. ["listeners", 0]. */
  readonly path: Path
  /** The version being replaced: its caches and refreshes are kept. */
  readonly previous?: ListenerRevocation
}

interface BundleConfig {
  readonly group: TrustGroup | undefined
  readonly policy: RevocationPolicy | undefined
  readonly path: Path
  readonly trust: string
}

/**
 * Compiles the `revocation` blocks of a listener's trust bundles; undefined
 * when there are none (the listener checks nothing, as before). Throws
 * ConfigError for what it can tell at once; CRL files are parsed in the
 * worker pool and their problems reported by `loaded`, which compile awaits.
 */
export function compileListenerRevocation(cfg: ListenerConfig, deps: ListenerRevocationDeps): ListenerRevocation | undefined {
  const auth = cfg.tls.clientAuth
  const base = [...deps.path, 'tls', 'clientAuth']
  const bundles: BundleConfig[] = [
    { group: deps.tls.trustGroupFor(undefined), policy: auth.revocation, path: base, trust: 'default' },
    ...auth.perServerName.map((o, i) => ({
      group: deps.tls.trustGroupFor(representative(o.serverNames[0]!)),
      policy: o.revocation,
      path: [...base, 'perServerName', i],
      trust: o.serverNames[0]!,
    })),
  ]
  if (bundles.every((b) => b.policy === undefined)) return undefined
  const issues: ConfigIssue[] = []
  if (auth.mode === 'none') {
    issues.push({ path: [...base, 'revocation'], message: 'mode "none" asks for no client certificate, so revocation checking would never run; remove it or set mode' })
  }
  const policyOf = new Map<string, BundleConfig>()
  for (const b of bundles) {
    if (!b.group) continue
    const seen = policyOf.get(b.group.id)
    if (!seen) policyOf.set(b.group.id, b)
    else if (JSON.stringify(seen.policy ?? null) !== JSON.stringify(b.policy ?? null)) {
      issues.push({
        path: [...b.path, 'revocation'],
        message: `this trust bundle has the same CA certificates as ${seen.path.join('.')} but another revocation policy; a request could move between them by its Host header, so give both the same revocation block`,
      })
    }
  }
  const files = bundles.map((b) =>
    (b.policy?.crlFiles ?? []).flatMap((f, j) => {
      const path = [...b.path, 'revocation', 'crlFiles', j, 'file']
      try {
        return [{ name: f.file, path, bytes: readSourceFile(f.file, deps.source, { maxBytes: b.policy!.maxCrlSize, field: 'maxCrlSize' }) }]
      } catch (err) {
        issues.push({ path, message: (err as Error).message })
        return []
      }
    }),
  )
  if (issues.length > 0) throw new ConfigError(issues)

  const shared =
    deps.previous?.shared ?? new ExternalRevocation({ listener: cfg.name, clock: deps.clock, log: deps.log, metrics: deps.metrics, pool: deps.pool })
  const revocation = new ListenerRevocation(shared, deps.tls)
  revocation.loaded = (async () => {
    const problems: ConfigIssue[] = []
    for (const [i, b] of bundles.entries()) {
      if (!b.policy || !b.group) continue
      const crls = await Promise.all(files[i]!.map((f) => loadCrlFile(f, b.group!, deps, problems)))
      revocation.add(b.group, new BundleRevocation(b.trust, b.policy, crls.flat(), shared))
    }
    if (problems.length > 0) throw new ConfigError(problems)
  })()
  return revocation
}

/** Parses one CRL file in the pool and checks it against the bundle's anchors that share its issuer name. */
async function loadCrlFile(
  file: { readonly name: string; readonly path: Path; readonly bytes: Buffer },
  group: TrustGroup,
  deps: ListenerRevocationDeps,
  problems: ConfigIssue[],
): Promise<FileCrl[]> {
  let parsed
  try {
    parsed = await deps.pool.parse(file.bytes)
  } catch (err) {
    problems.push({ path: file.path, message: `${file.name}: not a CRL (${(err as Error).message})` })
    return []
  }
  const out: FileCrl[] = []
  for (const crl of parsed) {
    if (crl.unusable) {
      problems.push({ path: file.path, message: `${file.name}: ${crl.unusable}` })
      continue
    }
    const entry: FileCrl = { list: RevocationList.from(crl, file.name), signed: crl.signed!, checks: new Map() }
    // An anchor of this bundle by the CRL's issuer name must have signed it: checked now, so a wrong file is a config issue.
    const anchors = group.anchors.filter((a) => a.fields.subject.text === crl.issuer)
    if (anchors.length > 0) {
      const results = await Promise.all(anchors.map((a) => (maySignCrls(a) ? deps.pool.verify(entry.signed, a.publicKey) : 'invalid' as const)))
      anchors.forEach((a, k) => entry.checks.set(a.fingerprint, results[k]!))
      if (!results.includes('valid')) {
        problems.push({ path: file.path, message: `${file.name}: the CRL names ${crl.issuer} as issuer but is not signed by that CA's key (or the CA's keyUsage lacks cRLSign)` })
        continue
      }
    }
    if (crl.nextUpdate !== undefined && crl.nextUpdate <= deps.clock.now()) {
      deps.log.warn({ file: file.name, nextUpdate: new Date(crl.nextUpdate).toISOString() }, 'CRL file is past its nextUpdate: it still revokes what it lists, but proves no certificate good')
    }
    out.push(entry)
  }
  return out
}

/** A listener's compiled revocation policies (one config version) over its shared caches. */
export class ListenerRevocation {
  private readonly bundles = new Map<TrustGroup, BundleRevocation>()
  /** Resolves once CRL files are parsed and checked; compile awaits it before the version can serve. */
  loaded: Promise<void> = Promise.resolve()

  constructor(
    /** Caches and refreshes kept across versions. */
    readonly shared: ExternalRevocation,
    private readonly tls: ListenerTls,
  ) {}

  /** Registers a bundle's policy (during compile). */
  add(group: TrustGroup, bundle: BundleRevocation): void {
    this.bundles.set(group, bundle)
  }

  /**
   * Checks a verified client chain (`path`: verifyPeer's, issuer first,
   * anchor last) under the trust bundle that serves `serverName`. Undefined
   * when that bundle has no revocation policy.
   */
  check(serverName: string | false | undefined, identity: Identity, path: readonly ParsedCert[]): RevocationCheck | undefined {
    const name = typeof serverName === 'string' && serverName !== '' ? serverName.toLowerCase() : undefined
    const bundle = this.bundleFor(name)
    if (!bundle || path.length === 0) return undefined
    const links = this.linksOf(identity, path).filter((l) => bundle.includes(l))
    const subject: RevocationSubject = { serverName: name, links }
    const statuses = links.map((l) => bundle.statusOf(l))
    const known = statuses.filter((s): s is CertStatus => !(s instanceof Promise))
    if (known.length === statuses.length) return { subject, denial: this.decide(bundle, links, known) }
    const revokedNow = statuses.findIndex((s) => !(s instanceof Promise) && s.result === 'revoked')
    if (revokedNow >= 0) return { subject, denial: this.decide(bundle, [links[revokedNow]!], [statuses[revokedNow] as CertStatus]) }
    const pending = Promise.all(statuses)
      .then((all) => this.decide(bundle, links, all))
      // A bug here must not admit anyone.
      .catch((err: unknown): Denial => ({ reason: 'cert_revocation_unknown', detail: `revocation check failed: ${(err as Error).message}` }))
    return { subject, pending }
  }

  /**
   * For an admitted connection, after a CRL changed or a reload: a denial
   * when a CRL (or OCSP answer) in memory now revokes one of its
   * certificates. Fetches nothing; never refuses for an unknown status.
   */
  recheck(subject: RevocationSubject): Denial | undefined | Promise<Denial | undefined> {
    const bundle = this.bundleFor(subject.serverName)
    if (!bundle) return undefined
    const found = subject.links.filter((l) => bundle.includes(l)).map((l) => ({ link: l, status: bundle.revokedNow(l) }))
    const toDenial = (link: CertLink, status: CertStatus | undefined) => (status ? revokedDenial(link, status) : undefined)
    const sync = found.find((f) => f.status && !(f.status instanceof Promise))
    if (sync) return toDenial(sync.link, sync.status as CertStatus)
    const waiting = found.filter((f) => f.status instanceof Promise)
    if (waiting.length === 0) return undefined
    return Promise.all(waiting.map((f) => f.status)).then((all) => {
      const k = all.findIndex((s) => s !== undefined)
      return k < 0 ? undefined : toDenial(waiting[k]!.link, all[k])
    })
  }

  private bundleFor(serverName: string | undefined): BundleRevocation | undefined {
    const group = this.tls.trustGroupFor(serverName)
    return group && this.bundles.get(group)
  }

  private linksOf(identity: Identity, path: readonly ParsedCert[]): CertLink[] {
    const leaf: CertLink = {
      der: identity.der,
      fingerprint: identity.fingerprint256,
      serial: canonicalSerial(identity.serialNumber),
      subject: identity.subject,
      isCa: false,
      issuer: path[0]!,
      sources: this.shared.sourcesOf(identity.fingerprint256, identity.der),
    }
    const cas = path.slice(0, -1).map((ca, i): CertLink => ({
      der: ca.der,
      fingerprint: ca.fingerprint,
      serial: canonicalSerial(ca.fields.serialNumber),
      subject: ca.fields.subject.text,
      isCa: true,
      issuer: path[i + 1]!,
      sources: this.shared.sourcesOf(ca.fingerprint, ca.der),
    }))
    return [leaf, ...cas]
  }

  /** Counts every status, then: revoked → cert_revoked; unknown → by failMode; else admitted. */
  private decide(bundle: BundleRevocation, links: readonly CertLink[], statuses: readonly CertStatus[]): Denial | undefined {
    for (const s of statuses) this.shared.metrics.checked(s.source, s.isError ? 'error' : s.result)
    const r = statuses.findIndex((s) => s.result === 'revoked')
    if (r >= 0) return revokedDenial(links[r]!, statuses[r]!)
    const unknown = statuses.flatMap((s, i) => (s.result === 'unknown' ? [`${what(links[i]!)}${s.detail}`] : []))
    if (unknown.length === 0) return undefined
    if (bundle.policy.failMode === 'hard') return { reason: 'cert_revocation_unknown', detail: `revocation status unavailable: ${unknown.join('; ')}` }
    this.shared.metrics.softFailed(bundle.trust)
    for (const cause of unknown) this.shared.noteSoftFail(bundle.trust, cause)
    return undefined
  }
}

function what(link: CertLink): string {
  return link.isCa ? `CA ${link.subject}: ` : ''
}

function revokedDenial(link: CertLink, status: CertStatus): Denial {
  return { reason: 'cert_revoked', detail: `${what(link)}${status.detail}` }
}

/**
 * Keeps a Listener server attached to the revocation state of its current
 * config version: holds a reference on the shared caches (released when the
 * listener closes or the policy goes away), forwards CRL changes, and asks
 * for a recheck of established connections when a reload brings new CRL files.
 */
export class RevocationFollower {
  private current: ListenerRevocation | undefined
  private unsubscribe: (() => void) | undefined

  constructor(private readonly onChange: () => void) {}

  /** Follows the revocation of the listener's current version (undefined: none). */
  follow(next: ListenerRevocation | undefined): void {
    const previous = this.current
    if (next === previous) return
    this.current = next
    if (next?.shared !== previous?.shared) {
      this.unsubscribe?.()
      next?.shared.retain()
      this.unsubscribe = next?.shared.subscribe(this.onChange)
      previous?.shared.release()
    }
    if (previous && next) this.onChange()
  }

  /** Stops following (the listener closed). */
  close(): void {
    this.follow(undefined)
  }
}
