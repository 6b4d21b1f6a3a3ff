/**
 * The cluster primary: forks the workers (each a full data plane on the same
 * ports), keeps them on one config version, hands them the shared state, and
 * replaces those that die. It serves no traffic itself; the singleton
 * duties (the CA service: CRL, OCSP, managed-certificate renewal; the
 * metrics endpoint) run beside it in this process, wired by main.ts.
 *
 * Decisions:
 * - One config version everywhere. A reload is checked here first (load,
 *   validate, check, files read: no side effects), so a bad edit is refused
 *   once and never reaches a worker. The text, not the path, is sent, so all
 *   workers apply the same bytes. If workers still disagree (what only
 *   compiling or binding shows: OpenSSL refusing a key, a port taken), the
 *   ones that applied it are sent the running text again, and the reload is
 *   reported refused with the first worker's issues.
 * - Reloads, replacements and the start are serialised in one queue, so a
 *   replacement never starts on a version the others just left.
 * - Revocations: the primary's RevocationSet is the one the CA service fills
 *   (one storage poll for the whole gateway, and the CA's keys stay out of
 *   the processes that face the network). Every addition is sent to all
 *   workers at once; a starting worker gets the full list before it binds.
 * - Ticket keys: see ticket-key-broker.ts.
 * - A death (any exit not asked for) is logged with its code or signal and
 *   the worker replaced after a backoff; too many deaths stop the gateway
 *   through `onGiveUp` (restart-policy.ts). A worker that is not ready within
 *   WORKER_START_TIMEOUT_MS is killed and counts as a death.
 * - Stop: every worker is told to drain (`shutdown.drainTimeout`); any still
 *   alive STOP_GRACE_MS after that is killed, so the primary never exits
 *   leaving orphans behind.
 * - Scheduling: SCHED_RR (main.ts sets it before the first fork; Node's
 *   NODE_CLUSTER_SCHED_POLICY still overrides). The primary accepts every
 *   connection and hands it to the next worker that acknowledged its last
 *   one. Measured on loopback (2 cores shared by gateway, load client,
 *   upstream and other jobs, load average 3-6; Node 20.20.2, built JS; TLS
 *   1.3 ECDSA mTLS handshake plus one proxied request; CPU is the sum over
 *   all gateway processes):
 *
 *                                         1 worker    2 workers RR   2 workers NONE
 *     CPU per handshake (600, 4 at once)  6.5-8.0 ms  7.1-10.3 ms    8.2-10.1 ms
 *     of which the primary                -           0.3-0.5 ms     ~0
 *     60 connections, one every 50 ms     -           30 / 30        17 / 43, 15 / 45
 *     saturated (wrk, 20 / 50 conns)      balanced    balanced       balanced
 *
 *   SCHED_NONE saves the primary's hand-off, but every connection wakes all
 *   workers and the losers' failed accepts cost more than the hand-off did
 *   (~20% more worker CPU per handshake here); and when connections arrive
 *   one at a time it spread them 3:1. Connections are long-lived (keep-alive,
 *   HTTP/2), so a skew at arrival stays. Throughput differences between the
 *   two were within the noise of this machine (docs/operations.md "Cluster
 *   mode" has the throughput figures).
 */
import cluster, { type Worker } from 'node:cluster'
import { formatIssue } from '../config/issues.js'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/schema/index.js'
import type { SourceContext } from '../config/secrets.js'
import type { RevocationSet, RevokedCertificate } from '../proxy/revocation-set.js'
import type { PrimarySightings } from './primary-sightings.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import { isPortcullisMessage, type FromWorker, type ToWorker, type WorkerApplyResult, type WorkerMetric } from './messages.js'
import { RestartGuard, type RestartPolicy } from './restart-policy.js'
import { TicketKeyBroker } from './ticket-key-broker.js'

/** How long a forked worker may take to load, apply the config and bind. */
export const WORKER_START_TIMEOUT_MS = 60_000
/** How long a worker may take to answer an apply (compile, bind). */
export const APPLY_TIMEOUT_MS = 60_000
/** Beyond the drain timeout, how long a stopping worker may take before it is killed. */
export const STOP_GRACE_MS = 5_000

/** What main.ts provides. */
export interface ClusterPrimaryOptions {
  readonly workers: number
  readonly configPath: string
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  /** The primary's set, filled by the CA service. Create the primary before anything adds to it. */
  readonly revocation: RevocationSet
  /** The collector the CA service drains; workers' sightings are merged into it (primary-sightings.ts). */
  readonly sightings?: PrimarySightings
  readonly restartPolicy: RestartPolicy
  /** Called once when workers die too often; main.ts stops the gateway and exits 1. */
  readonly onGiveUp: (message: string) => void
}

/** The outcome of start: the checked config and the bound port per listener, or the issues to print. */
export type ClusterStartResult =
  | { readonly ok: true; readonly config: Config; readonly ports: Readonly<Record<string, number>> }
  | { readonly ok: false; readonly issues: readonly string[] }

/** The outcome of a reload across all workers. */
export type ClusterApplyResult = { readonly ok: true; readonly generation: number; readonly workers: number } | { readonly ok: false; readonly issues: readonly string[] }

type StartOutcome = { readonly ok: true; readonly ports: Readonly<Record<string, number>> } | { readonly ok: false; readonly issues: readonly string[] }

interface Member {
  readonly worker: Worker
  readonly id: number
  state: 'starting' | 'ready' | 'stopping'
  isInitialized: boolean
  readonly exited: Promise<void>
  settleStart: ((outcome: StartOutcome) => void) | undefined
  readonly pendingApplies: Map<number, (result: WorkerApplyResult) => void>
  readonly pendingMetrics: Map<number, (metrics: readonly WorkerMetric[]) => void>
}

/** Forks, feeds, reloads, replaces and stops the workers. */
export class ClusterPrimary {
  private readonly members = new Map<number, Member>()
  private metricsRequests = 0
  private readonly revoked: RevokedCertificate[] = []
  private readonly broker: TicketKeyBroker
  private readonly guard: RestartGuard
  private readonly unsubscribe: () => void
  private readonly timers = new Set<NodeJS.Timeout>()
  private queue: Promise<unknown> = Promise.resolve()
  private text = ''
  private config: Config | undefined
  private generation = 0
  private nextApplyId = 1
  private isStarted = false
  private isStopping = false
  private stopping: Promise<void> | undefined

  constructor(private readonly opts: ClusterPrimaryOptions) {
    this.broker = new TicketKeyBroker((listener, key) => this.broadcast({ type: 'portcullis:ticket-key', listener, key: key.toString('base64') }))
    this.guard = new RestartGuard(opts.restartPolicy, opts.clock)
    this.unsubscribe = opts.revocation.subscribe((added) => {
      this.revoked.push(...added)
      this.broadcast({ type: 'portcullis:revoked', entries: added })
    })
  }

  /**
   * The running config and its version: 1 at start, +1 per reload applied in
   * every worker (a worker's own generation differs once it was replaced).
   * Throws before a successful start, as Gateway.current() does.
   */
  current(): { readonly generation: number; readonly config: Config } {
    if (!this.config || !this.isStarted) throw new Error('cluster has no applied config')
    return { generation: this.generation, config: this.config }
  }

  /** Checks `text`, forks every worker on it and waits until all serve, or one fails (then call stop()). */
  start(text: string): Promise<ClusterStartResult> {
    return this.enqueue(async (): Promise<ClusterStartResult> => {
      const checked = this.check(text)
      if (!checked.ok) return checked
      this.text = text
      this.config = checked.config
      const outcomes = await Promise.all(Array.from({ length: this.opts.workers }, () => this.spawn()))
      const failed = outcomes.find((o) => !o.ok)
      if (failed && !failed.ok) return failed
      this.isStarted = true
      this.generation = 1
      const first = outcomes[0]
      return { ok: true, config: checked.config, ports: first?.ok ? first.ports : {} }
    })
  }

  /** Applies `text` in every worker, or in none (see the module doc). */
  apply(text: string): Promise<ClusterApplyResult> {
    return this.enqueue(() => this.applyNow(text))
  }

  /**
   * Every serving worker's metrics, for a scrape of the primary's endpoint.
   * A worker that does not answer within `timeoutMs` is left out of this
   * scrape (Prometheus sees its series go stale) rather than failing it.
   */
  async workerMetrics(timeoutMs: number): Promise<{ readonly worker: number; readonly metrics: readonly WorkerMetric[] }[]> {
    const id = ++this.metricsRequests
    const asked = [...this.members.values()].filter((m) => m.state === 'ready')
    const answers = await Promise.all(
      asked.map(
        (m) =>
          new Promise<readonly WorkerMetric[] | undefined>((resolve) => {
            const timer = setTimeout(() => settle(undefined), timeoutMs)
            const settle = (metrics: readonly WorkerMetric[] | undefined) => {
              clearTimeout(timer)
              m.pendingMetrics.delete(id)
              resolve(metrics)
            }
            m.pendingMetrics.set(id, settle)
            this.send(m, { type: 'portcullis:metrics-request', id })
          }),
      ),
    )
    return asked.flatMap((m, i) => (answers[i] ? [{ worker: m.id, metrics: answers[i] }] : []))
  }

  /** Applies the running text again in every worker, re-reading the files it names (renewed certificates). */
  reload(): Promise<ClusterApplyResult> {
    return this.enqueue(() => this.applyNow(this.text))
  }

  /** Drains every worker, kills what outlives the drain timeout, and stops the key rotations. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow()
    return this.stopping
  }

  private async stopNow(): Promise<void> {
    this.isStopping = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.unsubscribe()
    this.broker.stop()
    const members = [...this.members.values()]
    for (const m of members) {
      m.state = 'stopping'
      // A worker that has not said hello yet may not hear a message; a signal it does.
      if (m.isInitialized) this.send(m, { type: 'portcullis:stop' })
      else m.worker.process.kill('SIGTERM')
    }
    const drainMs = this.config?.shutdown.drainTimeout ?? 0
    const killer = setTimeout(() => {
      for (const m of this.members.values()) {
        this.opts.log.error({ worker: m.id, pid: m.worker.process.pid }, 'worker did not stop in time; killing it')
        m.worker.process.kill('SIGKILL')
      }
    }, drainMs + STOP_GRACE_MS)
    await Promise.all(members.map((m) => m.exited))
    clearTimeout(killer)
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task)
    this.queue = run.catch(() => undefined)
    return run
  }

  private check(text: string): { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly issues: readonly string[] } {
    const loaded = loadConfig(text, this.opts.configPath, { source: this.opts.source })
    return loaded.ok ? { ok: true, config: loaded.config } : { ok: false, issues: loaded.issues.map(formatIssue) }
  }

  private async applyNow(text: string): Promise<ClusterApplyResult> {
    if (this.isStopping) return { ok: false, issues: ['gateway is stopping'] }
    const checked = this.check(text)
    if (!checked.ok) return checked
    const ready = [...this.members.values()].filter((m) => m.state === 'ready')
    const results = await Promise.all(ready.map((m) => this.applyOn(m, text)))
    const failed = results.flatMap((r, i) => (r.ok ? [] : [{ id: ready[i]!.id, issues: r.issues }]))
    if (failed.length === 0) {
      this.text = text
      this.config = checked.config
      this.generation++
      this.broker.rotateAll()
      return { ok: true, generation: this.generation, workers: ready.length }
    }
    const applied = ready.filter((_, i) => results[i]!.ok)
    if (applied.length > 0) {
      const back = await Promise.all(applied.map((m) => this.applyOn(m, this.text)))
      this.opts.log.error(
        { refusedBy: failed.map((f) => f.id), rolledBack: applied.filter((_, i) => back[i]!.ok).map((m) => m.id), notRolledBack: applied.filter((_, i) => !back[i]!.ok).map((m) => m.id) },
        'workers disagreed on the new config; those that applied it were sent the running config again',
      )
    }
    return { ok: false, issues: failed[0]!.issues }
  }

  private applyOn(m: Member, text: string): Promise<WorkerApplyResult> {
    const id = this.nextApplyId++
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ ok: false, issues: [`worker ${m.id} did not answer within ${APPLY_TIMEOUT_MS} ms`] }), APPLY_TIMEOUT_MS)
      const done = (result: WorkerApplyResult) => {
        clearTimeout(timer)
        m.pendingApplies.delete(id)
        resolve(result)
      }
      m.pendingApplies.set(id, done)
      this.send(m, { type: 'portcullis:apply', id, text })
    })
  }

  /** Forks a worker on the running text; resolves when it serves, or with why it does not. */
  private spawn(): Promise<StartOutcome> {
    const worker = cluster.fork()
    let markExited!: () => void
    const m: Member = {
      worker,
      id: worker.id,
      state: 'starting',
      isInitialized: false,
      exited: new Promise<void>((resolve) => (markExited = resolve)),
      settleStart: undefined,
      pendingApplies: new Map(),
      pendingMetrics: new Map(),
    }
    this.members.set(m.id, m)
    this.opts.log.info({ worker: m.id, pid: worker.process.pid }, 'worker started')
    const outcome = new Promise<StartOutcome>((resolve) => {
      const timer = setTimeout(() => {
        m.settleStart?.({ ok: false, issues: [`worker ${m.id} was not serving within ${WORKER_START_TIMEOUT_MS} ms`] })
        worker.process.kill('SIGKILL')
      }, WORKER_START_TIMEOUT_MS)
      m.settleStart = (o) => {
        clearTimeout(timer)
        m.settleStart = undefined
        resolve(o)
      }
    })
    worker.on('message', (message: unknown) => {
      if (isPortcullisMessage(message)) this.onMessage(m, message as FromWorker)
    })
    worker.on('exit', (code: number | null, signal: string | null) => {
      this.onExit(m, code, signal)
      markExited()
    })
    return outcome
  }

  private onMessage(m: Member, message: FromWorker): void {
    switch (message.type) {
      case 'portcullis:hello':
        if (m.isInitialized || m.state === 'stopping') return
        m.isInitialized = true
        this.send(m, {
          type: 'portcullis:init',
          configPath: this.opts.configPath,
          text: this.text,
          revoked: this.revoked,
          ticketKeys: this.broker.current().map(([listener, key]) => [listener, key.toString('base64')] as const),
          watchedIssuers: this.opts.sightings?.watchedIssuers() ?? [],
        })
        return
      case 'portcullis:ready':
        m.state = 'ready'
        this.opts.log.info({ worker: m.id, pid: m.worker.process.pid, generation: message.generation }, 'worker ready')
        m.settleStart?.({ ok: true, ports: message.ports })
        return
      case 'portcullis:refused':
        m.settleStart?.({ ok: false, issues: message.issues })
        return
      case 'portcullis:applied':
        m.pendingApplies.get(message.id)?.(message.result)
        return
      case 'portcullis:metrics':
        m.pendingMetrics.get(message.id)?.(message.metrics)
        return
      case 'portcullis:sightings':
        this.opts.sightings?.restore(message.sightings)
        if (message.dropped > 0) this.opts.log.warn({ worker: m.id, dropped: message.dropped }, 'more distinct client certificates than the sightings bound in a worker; some lastSeenAt updates were skipped')
        return
      case 'portcullis:ticket-key-request': {
        const key = this.broker.request(message.listener, message.intervalMs)
        this.send(m, { type: 'portcullis:ticket-key', listener: message.listener, key: key.toString('base64') })
        return
      }
    }
  }

  private onExit(m: Member, code: number | null, signal: string | null): void {
    this.members.delete(m.id)
    const how = signal ? `signal ${signal}` : `code ${code}`
    m.settleStart?.({ ok: false, issues: [`worker ${m.id} exited (${how}) before it was serving`] })
    for (const done of [...m.pendingApplies.values()]) done({ ok: false, issues: [`worker ${m.id} exited (${how})`] })
    if (this.isStopping || m.state === 'stopping' || !this.isStarted) return
    this.opts.log.error({ worker: m.id, pid: m.worker.process.pid, code, signal }, 'worker died')
    const decision = this.guard.onDeath()
    if (decision.action === 'give_up') {
      this.opts.onGiveUp(`workers keep dying: ${decision.deaths} deaths within ${decision.windowMs / 1000} s (the last: worker ${m.id}, ${how}); stopping the gateway. The process log above says why they died.`)
      return
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      void this.enqueue(() => this.replace(m.id))
    }, decision.delayMs)
    this.timers.add(timer)
  }

  private async replace(deadId: number): Promise<void> {
    if (this.isStopping) return
    const outcome = await this.spawn()
    if (outcome.ok) this.opts.log.info({ replaced: deadId, workers: this.members.size }, 'worker replaced')
    // Otherwise it exited (or was killed at the start timeout): onExit counts that death and decides again.
    else this.opts.log.error({ replaced: deadId, issues: outcome.issues }, 'replacement worker did not start')
  }

  private broadcast(message: ToWorker): void {
    for (const m of this.members.values()) if (m.isInitialized && m.state !== 'stopping') this.send(m, message)
  }

  private send(m: Member, message: ToWorker): void {
    if (!m.worker.isConnected()) return
    // Delivery failures surface as the worker's exit, handled there.
    m.worker.send(message, undefined, () => undefined)
  }
}
