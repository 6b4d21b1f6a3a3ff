/**
 * The expiry monitor's metrics:
 *
 *   portcullis_certificate_expiry_seconds{kind,name,subject,serial}
 *       seconds from now to notAfter (negative once expired)
 *   portcullis_certificates_expiring{kind,name,within}
 *       how many are within each threshold (cumulative: within="30d"
 *       includes those within 7d), and within="expired"
 *   portcullis_certificate_expiry_last_check_timestamp_seconds
 *   portcullis_certificate_expiry_read_errors
 *       certificate sources that could not be read at the last check
 *
 * Decisions:
 * - The set of certificates comes from the last check (every interval, and
 *   after each reload); the values are computed at each scrape from the
 *   injected clock, so "seconds left" is never an interval out of date.
 * - `update` replaces the whole set at once: series of certificates that
 *   went away (a reload removed them, a renewal replaced them) disappear.
 * - Cardinality: one series per place each of the gateway's own and
 *   trusted certificates is configured (bounded by the config), plus at most
 *   ISSUED_SERIES_LIMIT issued ones; counts are per kind and name (listener,
 *   upstream, partner), never per certificate.
 */
import { Gauge, type GaugeConfiguration } from 'prom-client'
import type { Clock } from '../shared/clock.js'
import type { CertificateKind } from './expiry-certificates.js'
import { formatThreshold } from './expiry-thresholds.js'
import { metric, type Registry } from './metrics.js'

/** A certificate as the metrics see it. */
export interface ExpirySeries {
  readonly kind: CertificateKind
  readonly name: string
  readonly subject: string
  readonly serial: string
  readonly notAfter: number
}

/** A certificate counted in `portcullis_certificates_expiring`; `key` tells one certificate in one place from another. */
export interface ExpiryCount {
  readonly kind: CertificateKind
  readonly name: string
  readonly key: string
  readonly notAfter: number
}

/** What one check found. */
export interface ExpirySnapshot {
  readonly series: readonly ExpirySeries[]
  readonly counted: readonly ExpiryCount[]
  /** Largest first. */
  readonly thresholdsMs: readonly number[]
  readonly checkedAt: number
  readonly readErrors: number
}

/** A gauge whose values are computed when scraped, by whoever set `refresh`. */
class ComputedGauge<T extends string> extends Gauge<T> {
  refresh: (() => void) | undefined

  constructor(config: Omit<GaugeConfiguration<T>, 'collect'>) {
    super({
      ...config,
      collect() {
        ;(this as ComputedGauge<T>).refresh?.()
      },
    })
  }
}

type SecondsGauge = ComputedGauge<'kind' | 'name' | 'subject' | 'serial'>
type CountGauge = ComputedGauge<'kind' | 'name' | 'within'>

/** The monitor's metrics in one registry. One monitor per registry: the last one created computes the values. */
export class ExpiryMetrics {
  private readonly seconds: SecondsGauge
  private readonly counts: CountGauge
  private readonly lastCheck: Gauge
  private readonly readErrors: Gauge
  private snapshot: ExpirySnapshot | undefined
  private readonly onScrapeSeconds = () => this.refreshSeconds()
  private readonly onScrapeCounts = () => this.refreshCounts()

  constructor(registry: Registry, private readonly clock: Clock) {
    this.seconds = metric(
      registry,
      'portcullis_certificate_expiry_seconds',
      () => new ComputedGauge({ name: 'portcullis_certificate_expiry_seconds', help: 'Seconds until the certificate\'s notAfter (negative once expired), per certificate and place it is used.', labelNames: ['kind', 'name', 'subject', 'serial'], registers: [registry] }),
      ComputedGauge,
    ) as SecondsGauge
    this.counts = metric(
      registry,
      'portcullis_certificates_expiring',
      () => new ComputedGauge({ name: 'portcullis_certificates_expiring', help: 'Certificates not yet expired with at most `within` left (cumulative), or already expired (within="expired").', labelNames: ['kind', 'name', 'within'], registers: [registry] }),
      ComputedGauge,
    ) as CountGauge
    this.lastCheck = metric(
      registry,
      'portcullis_certificate_expiry_last_check_timestamp_seconds',
      () => new Gauge({ name: 'portcullis_certificate_expiry_last_check_timestamp_seconds', help: 'When the expiry monitor last checked the certificates (Unix time).', registers: [registry] }),
      Gauge,
    )
    this.readErrors = metric(
      registry,
      'portcullis_certificate_expiry_read_errors',
      () => new Gauge({ name: 'portcullis_certificate_expiry_read_errors', help: 'Certificate sources (files, the inventory) the last expiry check could not read.', registers: [registry] }),
      Gauge,
    )
    this.seconds.refresh = this.onScrapeSeconds
    this.counts.refresh = this.onScrapeCounts
  }

  /** Replaces what is published with `snapshot`. */
  update(snapshot: ExpirySnapshot): void {
    this.snapshot = snapshot
    this.lastCheck.set(snapshot.checkedAt / 1000)
    this.readErrors.set(snapshot.readErrors)
    this.refreshSeconds()
    this.refreshCounts()
  }

  /** Removes every series (monitoring turned off, or the monitor closed). */
  clear(): void {
    this.snapshot = undefined
    this.seconds.reset()
    this.counts.reset()
  }

  /** Stops computing values for this registry's gauges (the monitor closed). */
  detach(): void {
    this.clear()
    if (this.seconds.refresh === this.onScrapeSeconds) this.seconds.refresh = undefined
    if (this.counts.refresh === this.onScrapeCounts) this.counts.refresh = undefined
  }

  private refreshSeconds(): void {
    this.seconds.reset()
    if (!this.snapshot) return
    const now = this.clock.now()
    for (const s of this.snapshot.series) {
      this.seconds.set({ kind: s.kind, name: s.name, subject: s.subject, serial: s.serial }, (s.notAfter - now) / 1000)
    }
  }

  private refreshCounts(): void {
    this.counts.reset()
    const snapshot = this.snapshot
    if (!snapshot) return
    const now = this.clock.now()
    const within = [...snapshot.thresholdsMs.map(formatThreshold), 'expired']
    const tally = new Map<string, { kind: CertificateKind; name: string; n: number[] }>()
    const seen = new Set<string>()
    for (const c of snapshot.counted) {
      const group = `${c.kind}\u0000${c.name}`
      let row = tally.get(group)
      if (!row) tally.set(group, (row = { kind: c.kind, name: c.name, n: within.map(() => 0) }))
      if (seen.has(`${group}\u0000${c.key}`)) continue
      seen.add(`${group}\u0000${c.key}`)
      const left = c.notAfter - now
      if (left < 0) row.n[within.length - 1]!++
      else snapshot.thresholdsMs.forEach((t, i) => left <= t && row.n[i]!++)
    }
    for (const row of tally.values()) {
      within.forEach((w, i) => this.counts.set({ kind: row.kind, name: row.name, within: w }, row.n[i]!))
    }
  }
}
