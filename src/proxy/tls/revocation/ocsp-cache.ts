/**
 * OCSP answers about client certificates (ocsp-client.ts does the asking and
 * verifying), cached by issuing CA and serial.
 *
 * Decisions:
 * - An answer is kept until min(nextUpdate, now + cacheForMs), and at least
 *   one second, so the connection that waited for it can use it: a
 *   responder's nextUpdate bounds how long its statement holds, and the
 *   operator's cap bounds how long a revocation can go unseen.
 * - Concurrent lookups of one certificate share one request.
 * - A failed query is remembered with exponential backoff (1 s doubling to
 *   1 min): while a responder is down, connections get the failure at once
 *   instead of each waiting out the timeout.
 * - At most `maxEntries` certificates; the least recently used goes first.
 */
import type { Clock } from '../../../shared/clock.js'
import { OcspError, queryOcsp, type OcspAnswer, type OcspQuery } from '../../../pki/ocsp-client.js'

/** What a caller sees of one certificate's entry. */
export interface OcspEntryView {
  /** A current answer, if any. */
  readonly answer: OcspAnswer | undefined
  /** The cause of the last failed query (operator text), cleared by an answer. */
  readonly cause: string | undefined
  /** No new query before this time (backoff after a failure). */
  readonly retryAt: number
  readonly loading: Promise<void> | undefined
}

interface Entry {
  answer: OcspAnswer | undefined
  until: number
  cause: string | undefined
  failures: number
  retryAt: number
  loading: Promise<void> | undefined
}

/** What the cache needs. */
export interface OcspCacheDeps {
  readonly clock: Clock
  /** An answer "revoked" arrived: established connections of the certificate can be closed. */
  readonly onRevoked?: () => void
  readonly maxEntries?: number
}

const minKeepMs = 1000
const maxBackoffMs = 60_000

/** OCSP answers by certificate. */
export class OcspCache {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly deps: OcspCacheDeps) {}

  /** Answers cached now. */
  get size(): number {
    return this.entries.size
  }

  /** The entry for `key`, with an expired answer left out; marks it recently used. */
  peek(key: string): OcspEntryView | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    this.entries.delete(key)
    this.entries.set(key, entry)
    const isCurrent = entry.answer !== undefined && this.deps.clock.now() < entry.until
    return { answer: isCurrent ? entry.answer : undefined, cause: entry.cause, retryAt: entry.retryAt, loading: entry.loading }
  }

  /** Asks the responder (or joins the running query). Never rejects: failures are recorded. */
  load(key: string, query: OcspQuery, cacheForMs: number): Promise<void> {
    let entry = this.entries.get(key)
    if (!entry) {
      entry = { answer: undefined, until: 0, cause: undefined, failures: 0, retryAt: 0, loading: undefined }
      this.entries.set(key, entry)
      if (this.entries.size > (this.deps.maxEntries ?? 10_000)) this.entries.delete(this.entries.keys().next().value!)
    }
    const e = entry
    e.loading ??= queryOcsp(query)
      .then((answer) => {
        const now = this.deps.clock.now()
        e.answer = answer
        e.until = Math.max(now + minKeepMs, Math.min(now + cacheForMs, answer.nextUpdate ?? Infinity))
        e.cause = undefined
        e.failures = 0
        e.retryAt = 0
        if (answer.status === 'revoked') this.deps.onRevoked?.()
      })
      .catch((err: unknown) => {
        e.answer = undefined
        e.cause = err instanceof OcspError ? `${err.code}: ${err.message}` : `failed: ${(err as Error).message}`
        e.failures++
        e.retryAt = this.deps.clock.now() + Math.min(maxBackoffMs, 1000 * 2 ** (e.failures - 1))
      })
      .finally(() => {
        e.loading = undefined
      })
    return e.loading
  }
}
