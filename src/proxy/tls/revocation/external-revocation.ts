/**
 * The revocation state of one listener that outlives config versions:
 * fetched CRLs, OCSP answers, what each certificate names as its sources,
 * metrics and soft-fail logging. compile.ts hands it from one version of the
 * listener to the next (like the intermediate pool), so a reload refetches
 * nothing and established connections stay watched.
 *
 * Lifetime: reference-counted by the Listener servers that use it
 * (RevocationFollower in listener-revocation.ts). The last release stops
 * every background refresh; an instance nobody retained (a compile that
 * failed) never started one.
 */
import type { Registry } from 'prom-client'
import type { Clock } from '../../../shared/clock.js'
import type { Logger } from '../../../shared/log.js'
import { certSourcesOf, type CertSources } from './cert-sources.js'
import { CrlCache } from './crl-cache.js'
import type { CrlParserPool } from './crl-parser-pool.js'
import { OcspCache } from './ocsp-cache.js'
import { revocationMetrics, type RevocationMetrics } from './revocation-metrics.js'

/** What the shared state needs. */
export interface ExternalRevocationDeps {
  readonly listener: string
  readonly clock: Clock
  readonly log: Logger
  readonly metrics?: Registry
  readonly pool: CrlParserPool
}

/** Certificates whose sources are remembered (by fingerprint); parsing an AIA costs ~1 ms. */
const maxCertSources = 10_000
/** A soft-fail cause is logged again after this long, as a reminder. */
const relogSoftFailMs = 3_600_000
const maxLoggedCauses = 1000

/** One listener's caches and their upkeep. */
export class ExternalRevocation {
  readonly crls: CrlCache
  readonly ocsp: OcspCache
  readonly metrics: RevocationMetrics
  readonly clock: Clock
  readonly pool: CrlParserPool
  private readonly sources = new Map<string, CertSources>()
  private readonly subscribers = new Set<() => void>()
  private readonly loggedCauses = new Map<string, number>()
  private unwatchMetrics: (() => void) | undefined
  private refs = 0

  constructor(private readonly deps: ExternalRevocationDeps) {
    this.clock = deps.clock
    this.pool = deps.pool
    this.metrics = revocationMetrics(deps.metrics, deps.listener, () => deps.clock.now())
    const notify = () => {
      for (const onChange of this.subscribers) onChange()
    }
    this.crls = new CrlCache({
      clock: deps.clock,
      pool: deps.pool,
      onChange: notify,
      onFailure: (url, cause) => {
        this.metrics.crlFetchFailed(url)
        deps.log.warn({ listener: deps.listener, url, cause }, 'CRL download failed')
      },
    })
    this.ocsp = new OcspCache({ clock: deps.clock, onRevoked: notify })
  }

  /** The CRL URLs and OCSP responder a certificate names; parsed once per certificate. */
  sourcesOf(fingerprint: string, der: Buffer): CertSources {
    let found = this.sources.get(fingerprint)
    if (!found) {
      found = certSourcesOf(der)
      if (this.sources.size >= maxCertSources) this.sources.delete(this.sources.keys().next().value!)
      this.sources.set(fingerprint, found)
    }
    return found
  }

  /** Called after a new CRL issue or an OCSP "revoked" that may revoke established connections; returns the unsubscribe function. */
  subscribe(onChange: () => void): () => void {
    this.subscribers.add(onChange)
    return () => this.subscribers.delete(onChange)
  }

  /** Logs a soft-fail cause once (again after an hour if it persists). */
  noteSoftFail(trust: string, cause: string): void {
    const now = this.clock.now()
    const last = this.loggedCauses.get(cause)
    if (last !== undefined && now - last < relogSoftFailMs) return
    if (this.loggedCauses.size >= maxLoggedCauses) this.loggedCauses.delete(this.loggedCauses.keys().next().value!)
    this.loggedCauses.set(cause, now)
    this.deps.log.warn({ listener: this.deps.listener, trust, cause }, 'client certificate admitted without a revocation status (failMode soft)')
  }

  /** A listener starts using this state; the first one also makes its caches visible in the metrics. */
  retain(): void {
    if (this.refs++ === 0) this.unwatchMetrics = this.metrics.watch({ crlNextUpdates: () => this.crls.nextUpdates(), ocspEntries: () => this.ocsp.size })
  }

  /** The last release stops every refresh and drops the caches. */
  release(): void {
    if (--this.refs > 0) return
    this.crls.close()
    this.unwatchMetrics?.()
    this.subscribers.clear()
  }
}
