/**
 * One cluster worker: a data plane (a Gateway and its listeners) driven by
 * the primary over IPC instead of by signals and files. The primary decides
 * what to serve (it sends the config text it checked, so every worker serves
 * the same version even if the file changes meanwhile), feeds the revoked set
 * and the ticket keys, and says when to stop. The worker answers with its
 * bound ports or its issues, and never reports a refused config itself: the
 * primary reports it once for all workers.
 *
 * Decisions:
 * - The worker waits for `init` before building anything, and says `hello`
 *   once it listens for messages: IPC messages sent before a listener exists
 *   are lost, so the primary never sends first.
 * - Revocations and ticket keys arrive before the first apply, so the first
 *   connection a worker accepts is already checked against every known
 *   revocation and gets a ticket that resumes on the other workers.
 * - A lost channel means the primary is gone (killed, crashed): the worker
 *   drains and exits rather than serving on as an orphan nobody can reload
 *   or stop.
 * - A refused first config exits 1 right after saying so; the primary
 *   treats that as a failed start (or, for a replacement, a death).
 */
import { formatIssue } from '../config/issues.js'
import type { CertificateSightings } from '../proxy/certificate-sightings.js'
import type { RevocationSet } from '../proxy/revocation-set.js'
import type { Registry } from '../observability/metrics.js'
import type { TicketKeySourceFactory } from '../proxy/tls/ticket-keys.js'
import type { ApplyResult, Gateway } from '../runtime.js'
import type { Logger } from '../shared/log.js'
import { isPortcullisMessage, type FromWorker, type ToWorker, type WorkerApplyResult, type WorkerMetric } from './messages.js'
import { SIGHTINGS_FORWARD_MS } from './primary-sightings.js'
import { SharedTicketKeys } from './shared-ticket-keys.js'

/** The worker's end of the IPC channel (in main.ts: `process.send` and `process.on('message' | 'disconnect')`). */
export interface WorkerChannel {
  /** Sends; `sent` runs once the message is handed to the channel (or sending failed). */
  send(message: FromWorker, sent?: () => void): void
  onMessage(handler: (message: unknown) => void): void
  onDisconnect(handler: () => void): void
}

/** What the composition root provides. */
export interface ClusterWorkerDeps {
  readonly log: Logger
  /** Builds this process's data plane for the config file the primary names, with the shared ticket keys. */
  readonly createDataPlane: (configPath: string, ticketKeys: TicketKeySourceFactory) => DataPlane
  /** Flushes logs and ends the process with `code`. */
  readonly exit: (code: number) => void
}

/** What the worker drives: the gateway, and the process-wide sets the primary feeds or drains. */
export interface DataPlane {
  readonly gateway: Gateway
  readonly revocation: RevocationSet
  readonly sightings?: CertificateSightings
  /** The worker's metrics, sent to the primary when its /metrics is scraped. */
  readonly metrics?: Registry
}

/** Reduces an ApplyResult to what crosses the channel (issues formatted once, here). */
function toWire(r: ApplyResult): WorkerApplyResult {
  return r.ok ? { ok: true, generation: r.generation } : { ok: false, issues: r.issues.map(formatIssue) }
}

/** Runs the worker's side of the protocol until stopped. */
export class ClusterWorker {
  private readonly ticketKeys: SharedTicketKeys
  private plane: (DataPlane & { readonly configPath: string }) | undefined
  private sightingsTimer: NodeJS.Timeout | undefined
  private isStopping = false

  constructor(
    private readonly channel: WorkerChannel,
    private readonly deps: ClusterWorkerDeps,
  ) {
    this.ticketKeys = new SharedTicketKeys((listener, intervalMs) => this.send({ type: 'portcullis:ticket-key-request', listener, intervalMs }))
  }

  /** Starts listening to the primary and greets it. */
  start(): void {
    this.channel.onMessage((message) => {
      if (!isPortcullisMessage(message)) return
      this.onMessage(message as ToWorker).catch((err: unknown) => {
        // A bug, not a config problem: log it and let the primary replace us.
        this.deps.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'worker failed handling a message from the primary')
        this.deps.exit(1)
      })
    })
    this.channel.onDisconnect(() => {
      if (this.isStopping) return
      this.deps.log.error('lost the channel to the primary; draining and exiting')
      this.stop()
    })
    this.send({ type: 'portcullis:hello' })
  }

  /** Drains the gateway (if any) and exits 0. Idempotent. */
  stop(): void {
    if (this.isStopping) return
    this.isStopping = true
    clearInterval(this.sightingsTimer)
    void (this.plane?.gateway.stop() ?? Promise.resolve())
      .catch((err: unknown) => this.deps.log.error({ err: (err as Error).message }, 'stop did not complete cleanly'))
      .finally(() => this.forwardSightings(() => this.deps.exit(0)))
  }

  private async onMessage(message: ToWorker): Promise<void> {
    switch (message.type) {
      case 'portcullis:init':
        return this.init(message)
      case 'portcullis:apply': {
        const plane = this.plane
        if (!plane || this.isStopping) return this.send({ type: 'portcullis:applied', id: message.id, result: { ok: false, issues: ['worker is not serving'] } })
        const result = await plane.gateway.apply(message.text, plane.configPath)
        return this.send({ type: 'portcullis:applied', id: message.id, result: toWire(result) })
      }
      case 'portcullis:revoked':
        this.plane?.revocation.add(message.entries)
        return
      case 'portcullis:ticket-key':
        return this.ticketKeys.receive(message.listener, Buffer.from(message.key, 'base64'))
      case 'portcullis:stop':
        return this.stop()
      case 'portcullis:metrics-request': {
        const metrics = ((await this.plane?.metrics?.getMetricsAsJSON()) ?? []) as WorkerMetric[]
        return this.send({ type: 'portcullis:metrics', id: message.id, metrics })
      }
    }
  }

  private async init(message: Extract<ToWorker, { type: 'portcullis:init' }>): Promise<void> {
    if (this.plane || this.isStopping) return
    for (const [listener, key] of message.ticketKeys) this.ticketKeys.receive(listener, Buffer.from(key, 'base64'))
    const plane = this.deps.createDataPlane(message.configPath, this.ticketKeys.sourceFor)
    plane.revocation.add(message.revoked)
    for (const issuer of message.watchedIssuers) plane.sightings?.watch(issuer)
    this.plane = { ...plane, configPath: message.configPath }
    if (plane.sightings && message.watchedIssuers.length > 0) {
      this.sightingsTimer = setInterval(() => this.forwardSightings(), SIGHTINGS_FORWARD_MS)
      this.sightingsTimer.unref()
    }
    const { gateway } = plane
    const result = await gateway.apply(message.text, message.configPath)
    if (!result.ok) {
      this.isStopping = true
      this.send({ type: 'portcullis:refused', issues: result.issues.map(formatIssue) }, () => this.deps.exit(1))
      return
    }
    const ports = Object.fromEntries(gateway.current().config.listeners.map((l) => [l.name, gateway.port(l.name)]))
    this.send({ type: 'portcullis:ready', generation: result.generation, ports })
  }

  /** Hands what the listeners noted since the last call to the primary (nothing to send: `sent` runs at once). */
  private forwardSightings(sent?: () => void): void {
    const taken = this.plane?.sightings?.take()
    if (!taken || (taken.sightings.length === 0 && taken.dropped === 0)) return sent?.()
    this.send({ type: 'portcullis:sightings', sightings: taken.sightings, dropped: taken.dropped }, sent)
  }

  private send(message: FromWorker, sent?: () => void): void {
    try {
      this.channel.send(message, sent)
    } catch {
      // The channel is closing; onDisconnect handles that.
      sent?.()
    }
  }
}
