/**
 * Holds the running configuration and applies new ones, Caddy-style:
 *
 *   load → validate → check → compile → bind new sockets → swap → drain old
 *
 * A new version is built completely before anything changes; any failure
 * leaves the running version serving, untouched. Applies are serialised, so
 * two reloads never interleave. Listeners whose address is unchanged keep
 * their server and connections and take the new certificates, trust and
 * routes in place; a moved listener's new socket is bound before the old one
 * drains (Envoy's warming and draining). Old upstream pools close once their
 * in-flight requests finish.
 */
import { resolve } from 'node:path'
import { compileRuntime, type CompileDeps, type Runtime } from './compile.js'
import { ConfigError, type ConfigIssue } from './config/issues.js'
import { loadConfig, withPositions } from './config/load.js'
import type { AccessLog } from './proxy/access-log.js'
import { Listener, isSameSocket } from './proxy/listener.js'
import type { CertificateSightings } from './proxy/certificate-sightings.js'
import type { RevocationSet } from './proxy/revocation-set.js'
import type { TicketKeySourceFactory } from './proxy/tls/ticket-keys.js'
import type { OcspStapler } from './proxy/tls/ocsp-stapling.js'

/** The outcome of an apply: the new generation, or why nothing changed. */
export type ApplyResult =
  | { readonly ok: true; readonly generation: number }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] }

export interface GatewayDeps extends CompileDeps {
  readonly accessLog: AccessLog
  /** Revoked client certificates; add() takes effect on every listener at once. */
  readonly revocation: RevocationSet
  /** Session-ticket keys for the listeners (see ListenerDeps); cluster workers pass the primary's. */
  readonly ticketKeys?: TicketKeySourceFactory
  /** OCSP staples of the listeners' server certificates; told the served set after every apply. Without it nothing is stapled. */
  readonly stapler?: OcspStapler
  /** Client certificates presented, noted per connection for the inventory (the PKI service flushes it). */
  readonly sightings?: CertificateSightings
}

/** The process's gateway: current runtime, live listeners, and the apply/stop lifecycle. */
export class Gateway {
  private runtime: Runtime | undefined
  private readonly listeners = new Map<string, Listener>()
  private queue: Promise<unknown> = Promise.resolve()
  private isStopped = false
  /** The text and file of the running version, for reload(). */
  private applied: { readonly text: string; readonly file: string } | undefined

  constructor(private readonly deps: GatewayDeps) {}

  /** The runtime serving now; throws before the first successful apply. */
  current(): Runtime {
    if (!this.runtime) throw new Error('gateway has no applied config')
    return this.runtime
  }

  /** The bound port of a listener (useful with port 0). */
  port(listener: string): number {
    const l = this.listeners.get(listener)
    if (!l) throw new Error(`no listener named ${listener}`)
    return l.port
  }

  /**
   * Applies config text. `file` is used for issue positions and to resolve
   * relative paths (the caller's SourceContext.baseDir). Never throws for a
   * bad config; returns its issues.
   */
  apply(text: string, file: string): Promise<ApplyResult> {
    const run = this.queue.then(() => this.applyNow(text, file))
    this.queue = run.catch(() => undefined)
    return run
  }

  /**
   * Re-applies the running config text, re-reading every file it references.
   * This is how certificate rotation reaches the listeners: write the new
   * certificate and key files (atomically), then call reload(); new
   * handshakes get them, established connections are untouched. A file that
   * is now unreadable or does not match its key refuses the reload, and the
   * running certificates keep serving.
   */
  reload(): Promise<ApplyResult> {
    if (!this.applied) return Promise.resolve({ ok: false, issues: [{ path: [], message: 'no config applied yet' }] })
    return this.apply(this.applied.text, this.applied.file)
  }

  private async applyNow(text: string, file: string): Promise<ApplyResult> {
    if (this.isStopped) return { ok: false, issues: [{ path: [], message: 'gateway is stopping' }] }
    const loaded = loadConfig(text, file, { source: this.deps.source })
    if (!loaded.ok) return { ok: false, issues: loaded.issues }

    const generation = (this.runtime?.generation ?? 0) + 1
    let next: Runtime
    try {
      next = await compileRuntime(loaded.config, generation, this.deps, this.runtime)
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, issues: withPositions(err.issues, text, file) }
      throw err
    }

    // Bind every listener that needs a new socket before touching the old ones.
    const started = new Map<string, Listener>()
    const replaced: Listener[] = []
    try {
      for (const cfg of next.config.listeners) {
        const old = this.listeners.get(cfg.name)
        const oldCfg = this.runtime?.listeners.get(cfg.name)?.config
        if (old && oldCfg && isSameSocket(oldCfg, old.port, cfg)) continue
        const fresh = new Listener(next.listeners.get(cfg.name)!, this.deps)
        try {
          await fresh.listen()
        } catch (err) {
          // The new socket overlaps the old one (same port, e.g. a changed
          // bind address or protocol set): the old one must let go first.
          // Its connections keep draining; only accepting stops.
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !old || old.port !== cfg.port) throw err
          await old.stopAccepting()
          await fresh.listen()
        }
        started.set(cfg.name, fresh)
        if (old) replaced.push(old)
      }
    } catch (err) {
      await Promise.allSettled([...started.values()].map((l) => l.close(0)))
      await Promise.allSettled([...next.upstreams.values()].map((u) => u.destroy()))
      const message = `cannot listen: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      return { ok: false, issues: withPositions([{ path: ['listeners'], message }], text, file) }
    }

    // Swap: kept listeners take the new version in place; new ones are already on it.
    const previous = this.runtime
    this.runtime = next
    this.applied = { text, file }
    const { accessLog } = next.config
    this.deps.accessLog.configure({ enabled: accessLog.enabled, path: accessLog.path && resolve(this.deps.source.baseDir, accessLog.path) })
    for (const cfg of next.config.listeners) {
      const fresh = started.get(cfg.name)
      if (fresh) this.listeners.set(cfg.name, fresh)
      else this.listeners.get(cfg.name)?.update(next.listeners.get(cfg.name)!)
    }
    for (const upstream of next.upstreams.values()) upstream.start()
    this.deps.stapler?.track([...next.listeners.values()].flatMap((l) => l.tls.ocspTargets))
    const drainMs = next.config.shutdown.drainTimeout
    for (const [name, listener] of this.listeners) {
      if (!next.listeners.has(name)) {
        this.listeners.delete(name)
        replaced.push(listener)
      }
    }
    // Drain in the background: the apply is done once the new version serves.
    void this.drain(replaced, previous, drainMs)
    this.deps.log.info({ generation, listeners: [...this.listeners.keys()] }, 'config applied')
    return { ok: true, generation }
  }

  private async drain(listeners: readonly Listener[], previous: Runtime | undefined, drainMs: number): Promise<void> {
    await Promise.allSettled(listeners.map((l) => l.close(drainMs)))
    if (!previous) return
    // In-flight requests hold the old upstreams; close() waits for them.
    const closing = [...previous.upstreams.values()].map((u) => u.close())
    const timer = setTimeout(() => previous.upstreams.forEach((u) => void u.destroy()), drainMs)
    timer.unref()
    await Promise.allSettled(closing)
    clearTimeout(timer)
  }

  /** Graceful stop: listeners drain in-flight requests (up to the drain timeout), then pools close. */
  async stop(): Promise<void> {
    this.isStopped = true
    await this.queue
    const drainMs = this.runtime?.config.shutdown.drainTimeout ?? 0
    await this.drain([...this.listeners.values()], this.runtime, drainMs)
    this.listeners.clear()
    this.deps.stapler?.track([])
  }
}
