/**
 * Metrics on the health of revocation checking for external CAs. Created
 * once per process with `metric()` (they outlive config versions); each
 * listener's checker gets a view labelled with its name.
 *
 * - `portcullis_revocation_checks_total{listener,source,result}`: one per
 *   certificate checked (leaf, and intermediates with scope "chain"), cached
 *   or not; source crl|ocsp|none, result good|revoked|unknown|error.
 * - `portcullis_revocation_crl_fetch_failures_total{listener,url}`.
 * - `portcullis_revocation_crl_next_update_seconds{listener,url}`: seconds
 *   until each cached CRL's nextUpdate (negative once past): alert before 0.
 * - `portcullis_revocation_ocsp_cache_entries{listener}`, and
 *   `portcullis_revocation_ocsp_cache_hits_total` / `_misses_total`.
 * - `portcullis_revocation_soft_fail_total{listener,trust}`: connections
 *   admitted without a revocation status because failMode is "soft".
 *
 * URLs as labels: they come only from certificates that chain to a
 * configured trust bundle, and the CRL cache is bounded, so the label set is
 * bounded too; an evicted CRL's series is removed.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import { metric } from '../../../observability/metrics.js'

/** The outcome of one certificate's check, as counted. */
export type CheckResult = 'good' | 'revoked' | 'unknown' | 'error'

/** What a checker reads at scrape time. */
export interface LiveRevocationState {
  /** Cached CRLs: URL and nextUpdate (ms). */
  crlNextUpdates(): Iterable<readonly [string, number]>
  ocspEntries(): number
}

/** One listener's view of the revocation metrics. */
export interface RevocationMetrics {
  checked(source: 'crl' | 'ocsp' | 'none', result: CheckResult): void
  crlFetchFailed(url: string): void
  softFailed(trust: string): void
  ocspLookup(isHit: boolean): void
  /** Reads `state` at each scrape until the returned function is called. */
  watch(state: LiveRevocationState): () => void
}

type Reader = (gauge: Gauge<string>) => void

/** A gauge filled at scrape time by the live checkers that registered a reader. */
class LiveGauge extends Gauge<string> {
  readonly readers = new Set<Reader>()
}

function liveGauge(registry: Registry, name: string, help: string, labelNames: string[]): LiveGauge {
  return metric(
    registry,
    name,
    () =>
      new LiveGauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect(this: Gauge<string>) {
          this.reset()
          for (const read of (this as LiveGauge).readers) read(this)
        },
      }),
    LiveGauge,
  )
}

const noMetrics: RevocationMetrics = {
  checked: () => undefined,
  crlFetchFailed: () => undefined,
  softFailed: () => undefined,
  ocspLookup: () => undefined,
  watch: () => () => undefined,
}

/** The metrics for listener `listener` in `registry` (none when there is no registry). */
export function revocationMetrics(registry: Registry | undefined, listener: string, now: () => number): RevocationMetrics {
  if (!registry) return noMetrics
  const counter = (name: string, help: string, labelNames: string[]) =>
    metric(registry, name, () => new Counter({ name, help, labelNames, registers: [registry] }), Counter)
  const checks = counter('portcullis_revocation_checks_total', 'Revocation checks of client certificates from external CAs, by source and result.', ['listener', 'source', 'result'])
  const fetchFailures = counter('portcullis_revocation_crl_fetch_failures_total', 'CRL downloads that failed (unreachable, HTTP error, too large, bad signature, unusable).', ['listener', 'url'])
  const softFails = counter('portcullis_revocation_soft_fail_total', 'Connections admitted without a revocation status because failMode is soft.', ['listener', 'trust'])
  const hits = counter('portcullis_revocation_ocsp_cache_hits_total', 'OCSP lookups answered from the cache.', ['listener'])
  const misses = counter('portcullis_revocation_ocsp_cache_misses_total', 'OCSP lookups that asked the responder.', ['listener'])
  const nextUpdate = liveGauge(registry, 'portcullis_revocation_crl_next_update_seconds', 'Seconds until the nextUpdate of each cached CRL (negative once past).', ['listener', 'url'])
  const ocspEntries = liveGauge(registry, 'portcullis_revocation_ocsp_cache_entries', 'OCSP answers cached.', ['listener'])
  return {
    checked: (source, result) => checks.inc({ listener, source, result }),
    crlFetchFailed: (url) => fetchFailures.inc({ listener, url }),
    softFailed: (trust) => softFails.inc({ listener, trust }),
    ocspLookup: (isHit) => (isHit ? hits : misses).inc({ listener }),
    watch(state) {
      const readCrls: Reader = (g) => {
        for (const [url, at] of state.crlNextUpdates()) g.set({ listener, url }, (at - now()) / 1000)
      }
      const readOcsp: Reader = (g) => g.set({ listener }, state.ocspEntries())
      nextUpdate.readers.add(readCrls)
      ocspEntries.readers.add(readOcsp)
      return () => {
        nextUpdate.readers.delete(readCrls)
        ocspEntries.readers.delete(readOcsp)
      }
    },
  }
}
