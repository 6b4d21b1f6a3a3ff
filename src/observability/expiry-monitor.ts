/**
 * The certificate expiry monitor: a self-contained service that main.ts
 * starts once per process (in cluster mode, in one process only). It watches
 * every certificate the gateway serves, presents or trusts, and the built-in
 * CA's own and issued ones; it publishes their time left as metrics, logs a
 * warning when one reaches a threshold (30, 7, 1 days by default) and an
 * error when one expired, and optionally calls a signed webhook.
 *
 * Decisions:
 * - It reads the running config at each check (`current()`), so a reload's
 *   thresholds, webhook and certificates apply at once. A light tick every
 *   second notices a new config version (any apply: SIGHUP, a managed
 *   renewal's reload) and checks then; otherwise it checks every
 *   `expiryMonitoring.interval` by the injected clock.
 * - Listener and upstream certificate files are read once per config
 *   version, right after the apply read them: the monitor reports what is
 *   served, not a file replaced on disk but not yet reloaded. Managed
 *   certificate files, the CA and the inventory are read at every check.
 * - One certificate used in several places (a managed file serving a
 *   listener, which is also in the inventory) is announced once, naming
 *   every place; it keeps one metric series per place.
 * - Announced steps live in memory: a restart announces again what is still
 *   within a threshold (once). Issued certificates are announced at most
 *   `ISSUED_ANNOUNCEMENTS_PER_CHECK` per check, the most urgent first; the
 *   rest wait for the next check and are summed up in one log line, so a
 *   start with thousands of partner certificates inside 30 days does not
 *   flood the log or the webhook. The gateway's own certificates are never
 *   held back.
 * - A failing source (an unreadable file, the inventory down) is logged and
 *   counted in `portcullis_certificate_expiry_read_errors`; the rest are
 *   still checked, and the inventory's last good scan is kept.
 */
import type { Config } from '../config/schema/index.js'
import type { SourceContext } from '../config/secrets.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import { configuredCertificates, kinds, managedCertificates, type Collected, type WatchedCertificate } from './expiry-certificates.js'
import { caCertificates, ISSUED_SERIES_LIMIT, issuedCertificate, scanInventory, selectDue, type IssuedSummary, type PkiExpiryView } from './expiry-issued.js'
import { ExpiryMetrics } from './expiry-metrics.js'
import { expiryStep, formatThreshold, type ExpiryStep } from './expiry-thresholds.js'
import { newEventId, WebhookSender, type ExpiryEvent } from './expiry-webhook.js'
import type { Registry } from './metrics.js'

/** Most issued certificates announced (log and webhook) in one check. */
export const ISSUED_ANNOUNCEMENTS_PER_CHECK = 50
/** How often (real time) the monitor looks for a new config version or a due check. */
const TICK_MS = 1000

/** What the monitor needs from the composition root. */
export interface ExpiryMonitorDeps {
  /** The running config and its version (main.ts: `gateway.current()`); undefined or a throw before the first apply. */
  readonly current: () => { readonly generation: number; readonly config: Config } | undefined
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  readonly metrics?: Registry
  /** The built-in CA (`PkiService.expiryView`), when the gateway runs one. */
  readonly pki?: PkiExpiryView
}

/** A running monitor. */
export interface ExpiryMonitor {
  /** Checks now, after any check under way; resolves when this one is done (webhook calls continue in the background). */
  check(): Promise<void>
  /** Resolves when every queued webhook event was delivered or given up. */
  webhookIdle(): Promise<void>
  /** Stops the tick and the webhook deliveries, and removes the metric series. Idempotent. */
  close(): Promise<void>
}

/** Starts the monitor: a first check at once, then on new config versions and every interval. */
export function startExpiryMonitor(deps: ExpiryMonitorDeps): ExpiryMonitor {
  const monitor = new Monitor(deps)
  monitor.start()
  return monitor
}

/** A certificate with every place it is used; what is announced. */
interface Announceable {
  readonly cert: WatchedCertificate
  readonly uses: readonly WatchedCertificate[]
}

class Monitor implements ExpiryMonitor {
  private readonly metrics: ExpiryMetrics | undefined
  private readonly webhook: WebhookSender
  /** Steps announced per fingerprint. */
  private readonly announced = new Map<string, Set<number>>()
  private configured: (Collected & { readonly generation: number }) | undefined
  private issued: readonly IssuedSummary[] = []
  private nextCheckAt = 0
  private queue: Promise<void> = Promise.resolve()
  private isChecking = false
  private timer: NodeJS.Timeout | undefined
  private isClosed = false
  private closing: Promise<void> | undefined

  constructor(private readonly deps: ExpiryMonitorDeps) {
    this.metrics = deps.metrics && new ExpiryMetrics(deps.metrics, deps.clock)
    this.webhook = new WebhookSender(deps)
  }

  start(): void {
    void this.check()
    this.schedule()
  }

  check(): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.isClosed) return
      this.isChecking = true
      try {
        await this.checkNow()
      } catch (err) {
        this.deps.log.error({ err: (err as Error).message }, 'expiry check failed; retrying at the next interval')
      } finally {
        this.isChecking = false
      }
    })
    this.queue = run
    return run
  }

  webhookIdle(): Promise<void> {
    return this.webhook.idle()
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.isClosed = true
      clearTimeout(this.timer)
      await this.queue
      await this.webhook.close()
      this.metrics?.detach()
    })()
    return this.closing
  }

  private running(): { readonly generation: number; readonly config: Config } | undefined {
    try {
      return this.deps.current()
    } catch {
      return undefined // no config applied yet
    }
  }

  private schedule(): void {
    if (this.isClosed) return
    this.timer = setTimeout(() => {
      const running = this.running()
      const isDue = running !== undefined && (running.generation !== this.configured?.generation || this.deps.clock.now() >= this.nextCheckAt)
      if (isDue && !this.isChecking) void this.check()
      this.schedule()
    }, TICK_MS)
    this.timer.unref()
  }

  private async checkNow(): Promise<void> {
    const running = this.running()
    if (!running) return
    const cfg = running.config.expiryMonitoring
    const now = this.deps.clock.now()
    this.nextCheckAt = now + cfg.interval
    if (!cfg.enabled) {
      this.configured = { generation: running.generation, certificates: [], problems: [] }
      this.metrics?.clear()
      this.announced.clear()
      return
    }
    if (running.generation !== this.configured?.generation) {
      this.configured = { generation: running.generation, ...configuredCertificates(running.config, this.deps.source) }
      this.logProblems(this.configured)
    }
    const managed = managedCertificates(running.config, this.deps.source)
    this.logProblems(managed)
    let readErrors = this.configured.problems.length + managed.problems.length
    const own = [...this.configured.certificates, ...managed.certificates]
    let issuer = ''
    const pki = this.deps.pki
    if (pki) {
      const ca = caCertificates(pki)
      own.push(...ca)
      issuer = ca.find((c) => c.kind === 'ca_intermediate')?.subject ?? ''
      try {
        this.issued = await scanInventory(pki.inventory, now)
      } catch (err) {
        readErrors++
        this.deps.log.error({ err: (err as Error).message }, 'expiry check: cannot read the certificate inventory; using the last good read')
      }
    }
    const largest = Math.max(...cfg.thresholds)
    const { due } = selectDue(this.issued, now, largest)
    const issued = due.map((c) => issuedCertificate(c, issuer))

    this.announce(own, issued, now, running.config)
    this.metrics?.update({
      series: [...own, ...issued.slice(0, ISSUED_SERIES_LIMIT)],
      counted: [...own, ...issued].map((c) => ({ kind: c.kind, name: c.name, key: c.fingerprint256, notAfter: c.notAfter })),
      thresholdsMs: cfg.thresholds,
      checkedAt: now,
      readErrors,
    })
  }

  private logProblems(collected: Collected): void {
    for (const p of collected.problems) this.deps.log.error({ location: p.location, err: p.message }, 'expiry check: cannot read a certificate; its expiry is not watched')
  }

  /** Announces what reached a new step: the gateway's own certificates all, issued ones up to the per-check limit. */
  private announce(own: readonly WatchedCertificate[], issued: readonly WatchedCertificate[], now: number, config: Config): void {
    const thresholds = config.expiryMonitoring.thresholds
    const groups = new Map<string, WatchedCertificate[]>()
    for (const c of [...own, ...issued]) {
      const list = groups.get(c.fingerprint256)
      if (list) list.push(c)
      else groups.set(c.fingerprint256, [c])
    }
    let issuedAnnounced = 0
    const held = new Map<string, number>()
    // Own certificates first (never held back), then issued ones soonest first, as `issued` is ordered.
    const order = [...groups.values()].sort((a, b) => Number(a.every((c) => c.kind === 'issued')) - Number(b.every((c) => c.kind === 'issued')))
    for (const uses of order) {
      const cert = uses[0]!
      const announced = this.announced.get(cert.fingerprint256) ?? new Set<number>()
      const { announce, reached } = expiryStep(cert.notAfter, now, thresholds, announced)
      if (announce && uses.every((c) => c.kind === 'issued')) {
        if (issuedAnnounced >= ISSUED_ANNOUNCEMENTS_PER_CHECK) {
          const step = announce.event === 'expired' ? 'expired' : formatThreshold(announce.thresholdMs)
          held.set(step, (held.get(step) ?? 0) + 1)
          continue
        }
        issuedAnnounced++
      }
      if (announce) this.say({ cert, uses }, announce, now, config)
      for (const step of reached) announced.add(step)
      this.announced.set(cert.fingerprint256, announced)
    }
    // Forget certificates no longer watched, so memory follows the watched set.
    for (const fingerprint of this.announced.keys()) if (!groups.has(fingerprint)) this.announced.delete(fingerprint)
    if (held.size > 0) {
      this.deps.log.warn(
        { held: Object.fromEntries(held), limit: ISSUED_ANNOUNCEMENTS_PER_CHECK },
        'more issued certificates reached an expiry threshold than one check announces; the rest follow at the next checks (see portcullis_certificates_expiring, or `portcullis ca list --expiring-within`)',
      )
    }
  }

  /** One log line and one webhook event. */
  private say({ cert, uses }: Announceable, step: ExpiryStep, now: number, config: Config): void {
    const threshold = step.event === 'expiring' ? formatThreshold(step.thresholdMs) : null
    const places = uses.map((u) => ({ kind: u.kind, name: u.name, location: u.location }))
    const fields = {
      event: `certificate.${step.event}`,
      ...(threshold && { threshold }),
      kind: cert.kind,
      location: cert.location,
      ...(places.length > 1 && { alsoUsedAs: places.slice(1) }),
      subject: cert.subject,
      serial: cert.serial,
      notAfter: new Date(cert.notAfter).toISOString(),
      daysLeft: Math.round(((cert.notAfter - now) / 86_400_000) * 10) / 10,
      action: kinds[cert.kind],
    }
    if (step.event === 'expired') this.deps.log.error(fields, `certificate expired: ${cert.subject} (${cert.location})`)
    else this.deps.log.warn(fields, `certificate expires within ${threshold}: ${cert.subject} (${cert.location})`)

    const webhook = config.expiryMonitoring.webhook
    if (!webhook) return
    const event: ExpiryEvent = {
      id: newEventId(),
      event: `certificate.${step.event}`,
      threshold,
      time: new Date(now).toISOString(),
      certificate: {
        subject: cert.subject,
        issuer: cert.issuer,
        serial: cert.serial,
        fingerprint256: cert.fingerprint256,
        notBefore: new Date(cert.notBefore).toISOString(),
        notAfter: new Date(cert.notAfter).toISOString(),
        secondsLeft: Math.floor((cert.notAfter - now) / 1000),
        uses: places,
      },
    }
    this.webhook.send(webhook, event)
  }
}
