/**
 * CRLs fetched from distribution points, cached in memory by (URL, issuing
 * CA) and kept fresh in the background.
 *
 * Decisions:
 * - The key includes the issuing CA's fingerprint: a CRL is trusted only as
 *   signed by the CA of the certificate whose distribution point named it,
 *   so the same URL reached from another CA is a separate entry, verified
 *   against that CA's key.
 * - A load is fetch → parse and verify in the worker (signature by the
 *   issuing CA, issuer name match, usable as a complete CRL) → index
 *   (revocation-list.ts). Concurrent loads of one entry share one promise.
 * - Refresh: `refreshBeforeMs` before nextUpdate, or halfway to it when that
 *   is sooner than a second away; a CRL without nextUpdate is refreshed every
 *   `refreshIntervalMs` and counts as current for one interval after it was
 *   fetched. A failed load keeps the last good CRL (it stays usable until its
 *   nextUpdate) and is retried with exponential backoff, 1 s doubling to
 *   5 min. An entry nobody used for a day is dropped instead of refreshed.
 * - After nextUpdate a CRL is not current: it still proves the revocations
 *   it lists, but never that a certificate is good.
 * - At most `maxEntries` entries; the least recently used goes first.
 * - `onChange` is called after a load brings a new issue of a CRL, so the
 *   listener can close connections of certificates it now lists.
 */
import type { KeyObject } from 'node:crypto'
import type { Clock } from '../../../shared/clock.js'
import type { CrlParserPool } from './crl-parser-pool.js'
import { CrlFetchError, fetchCrl } from './crl-fetch.js'
import { RevocationList } from './revocation-list.js'

/** The CA a distribution point's CRL must come from. */
export interface CrlIssuer {
  /** SHA-256 of the CA certificate (lowercase hex). */
  readonly fingerprint: string
  /** Its subject, RFC 4514 text: the CRL's issuer must be the same. */
  readonly subject: string
  readonly publicKey: KeyObject
}

/** How an entry is fetched and refreshed; the latest caller's settings win. */
export interface CrlSettings {
  readonly timeoutMs: number
  readonly maxBytes: number
  readonly refreshBeforeMs: number
  readonly refreshIntervalMs: number
}

/** What a caller sees of an entry. */
export interface CrlEntryView {
  /** The last good CRL, current or not. */
  readonly list: RevocationList | undefined
  /** Until when `list` counts as current (nextUpdate, or fetch time + interval). */
  readonly currentUntil: number
  /** The cause of the last failed load, cleared by a good one. */
  readonly error: string | undefined
  /** No new load before this time (backoff after a failure). */
  readonly retryAt: number
  /** Set while a load runs. */
  readonly loading: Promise<void> | undefined
}

interface Entry extends CrlEntryView {
  list: RevocationList | undefined
  currentUntil: number
  error: string | undefined
  retryAt: number
  loading: Promise<void> | undefined
  readonly url: string
  readonly issuer: CrlIssuer
  settings: CrlSettings
  failures: number
  lastUsed: number
  timer: NodeJS.Timeout | undefined
}

/** What the cache needs from its owner. */
export interface CrlCacheDeps {
  readonly clock: Clock
  readonly pool: CrlParserPool
  /** A new issue of a CRL was loaded. */
  readonly onChange: () => void
  /** A load failed (for metrics and logs); `cause` is operator text without the URL. */
  readonly onFailure: (url: string, cause: string) => void
  readonly maxEntries?: number
}

const minDelayMs = 1000
const maxBackoffMs = 5 * 60_000
const idleDropMs = 24 * 3_600_000
/** setTimeout's limit; longer waits are re-planned when they end. */
const maxTimerMs = 2 ** 31 - 1
/** A CRL issued this far in the future is refused (clock skew allowance, as for OCSP). */
const maxSkewMs = 5 * 60_000

/** CRLs from distribution points, by URL and issuing CA. */
export class CrlCache {
  private readonly entries = new Map<string, Entry>()
  private isClosed = false

  constructor(private readonly deps: CrlCacheDeps) {}

  /** The entry for `url` under `issuer`, without loading anything; marks it used. */
  peek(url: string, issuer: CrlIssuer): CrlEntryView | undefined {
    const entry = this.entries.get(keyOf(url, issuer))
    if (entry) entry.lastUsed = this.deps.clock.now()
    return entry
  }

  /** Starts a load (or joins the running one). Never rejects: failures are recorded on the entry. */
  load(url: string, issuer: CrlIssuer, settings: CrlSettings): Promise<void> {
    const key = keyOf(url, issuer)
    let entry = this.entries.get(key)
    if (!entry) {
      entry = { url, issuer, settings, list: undefined, currentUntil: 0, error: undefined, retryAt: 0, loading: undefined, failures: 0, lastUsed: this.deps.clock.now(), timer: undefined }
      this.entries.set(key, entry)
      this.evict()
    }
    entry.settings = settings
    entry.lastUsed = this.deps.clock.now()
    return (entry.loading ??= this.run(entry))
  }

  /** Cached CRLs with their nextUpdate (for the metrics gauge). */
  *nextUpdates(): Iterable<readonly [string, number]> {
    for (const e of this.entries.values()) if (e.list?.nextUpdate !== undefined) yield [e.url, e.list.nextUpdate]
  }

  /** Stops every refresh and drops the entries. */
  close(): void {
    this.isClosed = true
    for (const e of this.entries.values()) clearTimeout(e.timer)
    this.entries.clear()
  }

  private async run(entry: Entry): Promise<void> {
    clearTimeout(entry.timer)
    try {
      const list = await this.fetchAndVerify(entry)
      const now = this.deps.clock.now()
      const isNew = !list.isSameIssue(entry.list)
      entry.list = list
      entry.currentUntil = list.nextUpdate ?? now + entry.settings.refreshIntervalMs
      // Even an expired CRL proves the revocations it lists.
      if (isNew && !this.isClosed) this.deps.onChange()
      if (entry.currentUntil <= now) throw new CrlFetchError(`expired at ${new Date(entry.currentUntil).toISOString()} (nextUpdate) and no newer one is published`)
      entry.error = undefined
      entry.failures = 0
      entry.retryAt = 0
      this.schedule(entry, this.refreshAt(entry, now))
    } catch (err) {
      const cause = err instanceof CrlFetchError ? err.message : `unusable: ${(err as Error).message}`
      entry.error = cause
      entry.failures++
      const backoff = Math.min(maxBackoffMs, minDelayMs * 2 ** (entry.failures - 1))
      entry.retryAt = this.deps.clock.now() + backoff
      this.schedule(entry, entry.retryAt)
      this.deps.onFailure(entry.url, cause)
    } finally {
      entry.loading = undefined
    }
  }

  private async fetchAndVerify(entry: Entry): Promise<RevocationList> {
    const bytes = await fetchCrl(entry.url, { timeoutMs: entry.settings.timeoutMs, maxBytes: entry.settings.maxBytes })
    const crls = await this.deps.pool.parse(bytes, entry.issuer.publicKey).catch((err: unknown) => {
      throw new CrlFetchError(`malformed: ${(err as Error).message}`)
    })
    const crl = crls.find((c) => c.issuer === entry.issuer.subject)
    if (!crl) throw new CrlFetchError(`issued by ${crls.map((c) => c.issuer).join(', ')}, not by ${entry.issuer.subject}`)
    if (crl.signatureCheck !== 'valid') throw new CrlFetchError(`signature does not verify with the key of ${entry.issuer.subject}`)
    if (crl.unusable) throw new CrlFetchError(`unusable: ${crl.unusable}`)
    if (crl.thisUpdate > this.deps.clock.now() + maxSkewMs) throw new CrlFetchError(`thisUpdate ${new Date(crl.thisUpdate).toISOString()} is in the future`)
    return RevocationList.from(crl, entry.url)
  }

  /** When to refresh a good entry (see module doc). */
  private refreshAt(entry: Entry, now: number): number {
    const at = entry.currentUntil - entry.settings.refreshBeforeMs
    return at >= now + minDelayMs ? at : now + Math.max(minDelayMs, (entry.currentUntil - now) / 2)
  }

  private schedule(entry: Entry, at: number): void {
    clearTimeout(entry.timer)
    if (this.isClosed || this.entries.get(keyOf(entry.url, entry.issuer)) !== entry) return
    const delay = Math.min(maxTimerMs, Math.max(0, at - this.deps.clock.now()))
    entry.timer = setTimeout(() => {
      const now = this.deps.clock.now()
      if (now - entry.lastUsed > idleDropMs) {
        this.entries.delete(keyOf(entry.url, entry.issuer))
        return
      }
      if (now < at) this.schedule(entry, at)
      else void this.load(entry.url, entry.issuer, entry.settings)
    }, delay)
    entry.timer.unref()
  }

  private evict(): void {
    const max = this.deps.maxEntries ?? 256
    if (this.entries.size <= max) return
    const oldest = [...this.entries.entries()].sort(([, a], [, b]) => a.lastUsed - b.lastUsed)[0]!
    clearTimeout(oldest[1].timer)
    this.entries.delete(oldest[0])
  }
}

function keyOf(url: string, issuer: CrlIssuer): string {
  return `${issuer.fingerprint} ${url}`
}
