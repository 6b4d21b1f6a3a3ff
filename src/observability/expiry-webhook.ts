/**
 * Delivers expiry announcements to `expiryMonitoring.webhook.url`: a POST of
 * JSON, signed with HMAC-SHA256, in the background.
 *
 *   X-Portcullis-Event: certificate.expiring | certificate.expired
 *   X-Portcullis-Delivery: <event id, the same on every retry>
 *   X-Portcullis-Timestamp: <Unix seconds of this attempt>
 *   X-Portcullis-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 *
 * Decisions:
 * - The timestamp is signed with the body (as Stripe and Slack do), so a
 *   receiver that refuses timestamps older than a few minutes cannot be fed
 *   a captured request later; the event id lets it drop the duplicates that
 *   retries can cause. docs/operations.md shows the check.
 * - The secret is read at each attempt (a rotated secret file applies
 *   without a restart) and must be at least 32 characters; it is never
 *   logged, and the URL is logged by origin only (some receivers carry a
 *   token in the path).
 * - One event at a time from a bounded queue, so the monitor's check never
 *   waits on the network and a slow receiver cannot grow memory; a full
 *   queue drops the event (logged and counted).
 * - An attempt ends after `timeout`. Network errors, 408, 429 and 5xx are
 *   retried `retries` times with doubling backoff from 1 s (jittered); any
 *   other answer is final. Redirects are not followed (the signature is for
 *   the configured receiver).
 * - Backoff waits on real timers: they pace the network, they decide nothing
 *   about validity. The signed timestamp comes from the injected clock.
 */
import { createHmac, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Counter } from 'prom-client'
import { Agent, request } from 'undici'
import type { ExpiryMonitoringConfig } from '../config/schema/index.js'
import { minWebhookSecretLength } from '../config/schema/gateway.js'
import { readSecret, type SourceContext } from '../config/secrets.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import type { CertificateUse } from './expiry-certificates.js'
import { metric, type Registry } from './metrics.js'

/** `expiryMonitoring.webhook`, validated. */
export type WebhookConfig = NonNullable<ExpiryMonitoringConfig['webhook']>

/** The JSON body of a webhook call. */
export interface ExpiryEvent {
  /** Unique per announcement; the same on every retry of it. */
  readonly id: string
  readonly event: 'certificate.expiring' | 'certificate.expired'
  /** The threshold crossed ("7d"); null for `certificate.expired`. */
  readonly threshold: string | null
  /** When the monitor saw it (ISO 8601). */
  readonly time: string
  readonly certificate: {
    readonly subject: string
    readonly issuer: string
    readonly serial: string
    readonly fingerprint256: string
    readonly notBefore: string
    readonly notAfter: string
    /** Negative once expired. */
    readonly secondsLeft: number
    /** Every place the certificate is used (kind, name, location). */
    readonly uses: readonly CertificateUse[]
  }
}

/** Shortest HMAC key accepted; a config with a shorter one is refused at load, this re-checks a secret file changed since. */
export const MIN_SECRET_LENGTH = minWebhookSecretLength
/** Events waiting for delivery; more are dropped. */
export const QUEUE_LIMIT = 1000
const FIRST_RETRY_MS = 1000

/** `sha256=<hex>`: HMAC-SHA256 with `secret` over `<timestamp>.<body>`. */
export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`
}

/** A new event id. */
export function newEventId(): string {
  return randomUUID()
}

function isRetryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** What the sender needs. */
export interface WebhookSenderDeps {
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  readonly metrics?: Registry
}

interface Queued {
  readonly config: WebhookConfig
  readonly event: ExpiryEvent
}

/** The background delivery of webhook events. */
export class WebhookSender {
  private readonly queue: Queued[] = []
  private worker: Promise<void> | undefined
  private readonly agent = new Agent({ keepAliveTimeout: 4000 })
  private readonly closing = new AbortController()
  private readonly outcomes: Counter<'outcome'> | undefined

  constructor(private readonly deps: WebhookSenderDeps) {
    const registry = deps.metrics
    this.outcomes =
      registry &&
      metric(
        registry,
        'portcullis_certificate_expiry_webhook_deliveries_total',
        () => new Counter({ name: 'portcullis_certificate_expiry_webhook_deliveries_total', help: 'Expiry webhook events by outcome: delivered, failed (after every retry) or dropped (queue full or stopping).', labelNames: ['outcome'], registers: [registry] }),
        Counter,
      )
  }

  /** Queues `event` for delivery with `config`; returns at once. */
  send(config: WebhookConfig, event: ExpiryEvent): void {
    if (this.closing.signal.aborted) return
    if (this.queue.length >= QUEUE_LIMIT) {
      this.outcomes?.inc({ outcome: 'dropped' })
      this.deps.log.warn({ webhook: origin(config.url), id: event.id, serial: event.certificate.serial }, 'expiry webhook: queue full; event dropped')
      return
    }
    this.queue.push({ config, event })
    this.worker ??= this.drain().finally(() => (this.worker = undefined))
  }

  /** Resolves when every queued event was delivered or given up (for tests and orderly stops). */
  async idle(): Promise<void> {
    while (this.worker) await this.worker
  }

  /** Aborts the delivery under way and drops the queue. Idempotent. */
  async close(): Promise<void> {
    this.closing.abort()
    const dropped = this.queue.length
    this.queue.length = 0
    if (dropped > 0) {
      this.outcomes?.inc({ outcome: 'dropped' }, dropped)
      this.deps.log.warn({ dropped }, 'expiry webhook: stopping; undelivered events dropped')
    }
    await this.worker
    await this.agent.close()
  }

  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) await this.deliver(next)
  }

  private async deliver({ config, event }: Queued): Promise<void> {
    const body = JSON.stringify(event)
    const attempts = config.retries + 1
    let error = ''
    for (let attempt = 1; attempt <= attempts && !this.closing.signal.aborted; attempt++) {
      if (attempt > 1) {
        const base = FIRST_RETRY_MS * 2 ** (attempt - 2)
        await sleep(base / 2 + Math.random() * (base / 2), undefined, { signal: this.closing.signal }).catch(() => undefined)
        if (this.closing.signal.aborted) break
      }
      const outcome = await this.attempt(config, event, body)
      if (outcome === 'delivered') {
        this.outcomes?.inc({ outcome: 'delivered' })
        return
      }
      error = outcome.error
      if (!outcome.isRetryable) break
    }
    if (this.closing.signal.aborted) {
      this.outcomes?.inc({ outcome: 'dropped' })
      return
    }
    this.outcomes?.inc({ outcome: 'failed' })
    this.deps.log.error(
      { webhook: origin(config.url), id: event.id, event: event.event, serial: event.certificate.serial, error },
      'expiry webhook: delivery failed; the announcement is in this log only',
    )
  }

  private async attempt(config: WebhookConfig, event: ExpiryEvent, body: string): Promise<'delivered' | { error: string; isRetryable: boolean }> {
    let secret: string
    try {
      secret = readSecret(config.secret, this.deps.source)
    } catch (err) {
      return { error: (err as Error).message, isRetryable: false } // names the file or variable, never the value
    }
    if (secret.length < MIN_SECRET_LENGTH) return { error: `the webhook secret is shorter than ${MIN_SECRET_LENGTH} characters`, isRetryable: false }
    const timestamp = Math.floor(this.deps.clock.now() / 1000)
    try {
      const res = await request(config.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'portcullis-expiry-monitor',
          'x-portcullis-event': event.event,
          'x-portcullis-delivery': event.id,
          'x-portcullis-timestamp': String(timestamp),
          'x-portcullis-signature': signWebhook(secret, timestamp, body),
        },
        body,
        headersTimeout: config.timeout,
        bodyTimeout: config.timeout,
        signal: AbortSignal.any([AbortSignal.timeout(config.timeout), this.closing.signal]),
      })
      await res.body.dump()
      if (res.statusCode >= 200 && res.statusCode < 300) return 'delivered'
      return { error: `HTTP ${res.statusCode}`, isRetryable: isRetryable(res.statusCode) }
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      return { error: e.name === 'TimeoutError' ? `no answer within ${config.timeout} ms` : (e.code ?? e.name), isRetryable: true }
    }
  }
}

/** The URL's origin: what logs name. */
function origin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return '(invalid URL)'
  }
}
