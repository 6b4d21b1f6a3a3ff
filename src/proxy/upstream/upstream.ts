/**
 * The client side of the gateway: one `Upstream` per configured upstream,
 * built at compile time and used by every request of a runtime.
 *
 * Connections: one undici `Pool` per target. A Pool is a set of `Client`s
 * with one keep-alive HTTP/1.1 connection each (no pipelining, so one slow
 * response never blocks another), grown on demand up to
 * `connectionsPerTarget`. Per-target pools, rather than undici's Agent or
 * BalancedPool, because balancing, ejection and "retry on another target"
 * need to see and choose the target themselves.
 *
 * Each request: pick a target (balancer.ts), dispatch one attempt
 * (exchange.ts), and on a failure that is safe to repeat try another target.
 * Faults are returned as Denials with stable reasons, never thrown.
 */
import type { Readable } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import type { SourceContext } from '../../config/secrets.js'
import type { UpstreamConfig } from '../../config/schema/upstreams.js'
import type { Clock } from '../../shared/clock.js'
import type { Logger } from '../../shared/log.js'
import type { Denial } from '../../shared/reasons.js'
import { ActiveHealth } from './active-health.js'
import { createBalancer, type Balancer } from './balancer.js'
import { buildUpstreamConnector } from './connector.js'
import { Exchange } from './exchange.js'
import { PassiveHealth } from './passive-health.js'
import { parseTargetUrl, Target } from './target.js'

/**
 * What the caller (forward.ts) sends. Contract:
 * - `headers` are already cleaned (hop-by-hop, Transfer-Encoding, Expect and
 *   Upgrade removed; names lowercase). `request()` takes ownership of the
 *   object and sets `host` in it (no copy on the hot path).
 * - `body` is read by at most one attempt; a retry happens only while it is
 *   untouched.
 */
export interface UpstreamRequest {
  readonly method: string
  /** Normalised path + '?' + query when any; the target URL's own path prefix is prepended here. */
  readonly path: string
  readonly headers: Record<string, string | string[]>
  /** Sent as Host when hostHeader is "preserve". */
  readonly clientHost: string
  /** The client's request stream, or null when there is no body. */
  readonly body: Readable | null
  /** Aborted when the client goes away or the route's total timeout fires. */
  readonly signal: AbortSignal
  readonly responseHeadersTimeoutMs: number
  /** Body inactivity, both directions; 0 disables. */
  readonly idleTimeoutMs: number
  /** Extra attempts allowed. */
  readonly retries: number
}

/**
 * The outcome. On success the caller must consume or destroy `body`: the
 * target's in-flight count and connection are held until it ends. `body`
 * propagates backpressure to the upstream socket and errors with the
 * upstream's error if the exchange breaks mid-stream.
 */
export type UpstreamResult =
  | {
      readonly ok: true
      readonly statusCode: number
      readonly headers: Record<string, string | string[] | undefined>
      readonly body: Readable
      /** Target label (origin + path prefix) that answered. */
      readonly target: string
      readonly attempts: number
      /** Wait for a connected socket in the final attempt (pool queue + connect when a new connection was opened). */
      readonly connectMs: number | undefined
    }
  | { readonly ok: false; readonly denial: Denial; readonly target: string | undefined; readonly attempts: number }

/** An upstream's client side. Safe to call concurrently; all state lives on the event loop. */
export interface Upstream {
  readonly name: string
  /** Never throws for network or upstream faults; maps them to reason codes. */
  request(req: UpstreamRequest): Promise<UpstreamResult>
  /** Starts active health checks, if configured. Idempotent. */
  start(): void
  /** Graceful: new requests get upstream_unavailable, in-flight ones finish, then pools and timers close. */
  close(): Promise<void>
  /** Immediate: in-flight requests fail with upstream_unavailable. */
  destroy(): Promise<void>
}

/** Dependencies from compile: where PEM paths resolve, the clock for ejection, the process logger. */
export interface UpstreamDeps {
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
}

/** undici reads `servername` from dispatch options (core/request.js) but its types omit it. */
interface DispatchOptionsWithSni extends Dispatcher.DispatchOptions {
  readonly servername: string
}

const CLOSED: Denial = Object.freeze({ reason: 'upstream_unavailable', detail: 'upstream closed (config reload or shutdown)' })
const NO_TARGET: Denial = Object.freeze({ reason: 'upstream_unavailable', detail: 'no target available (ejected, failing probes or full)' })
const CLIENT_GONE: Denial = Object.freeze({ reason: 'client_closed', detail: 'aborted before dispatch' })
const NO_CONNECT: Denial = Object.freeze({ reason: 'method_not_allowed', detail: 'CONNECT is not proxied' })

class PooledUpstream implements Upstream {
  private isClosed = false
  private isStarted = false
  private closing: Promise<void> | undefined

  constructor(
    readonly name: string,
    private readonly targets: readonly Target[],
    private readonly balancer: Balancer,
    private readonly passive: PassiveHealth,
    private readonly hostHeader: 'preserve' | 'target',
    private readonly active: ActiveHealth | undefined,
  ) {}

  async request(req: UpstreamRequest): Promise<UpstreamResult> {
    if (this.isClosed) return { ok: false, denial: CLOSED, target: undefined, attempts: 0 }
    if (req.signal.aborted) return { ok: false, denial: CLIENT_GONE, target: undefined, attempts: 0 }
    if (req.method === 'CONNECT') return { ok: false, denial: NO_CONNECT, target: undefined, attempts: 0 }
    const headers = req.headers
    if (this.hostHeader === 'preserve') headers.host = req.clientHost
    let attempts = 0
    let avoid: Target[] | undefined
    let last: Exchange | undefined
    let lastTarget: Target | undefined
    for (;;) {
      this.passive.restoreExpired(this.targets)
      const target = this.balancer.pick(avoid)
      if (target === undefined) {
        if (last !== undefined) return this.failure(last, lastTarget, attempts)
        return { ok: false, denial: NO_TARGET, target: undefined, attempts }
      }
      attempts += 1
      if (this.hostHeader === 'target') headers.host = target.address.hostHeader
      const opts: DispatchOptionsWithSni = {
        method: req.method as Dispatcher.HttpMethod,
        path: target.address.pathPrefix === '' ? req.path : target.address.pathPrefix + req.path,
        headers,
        body: req.body,
        headersTimeout: req.responseHeadersTimeoutMs,
        bodyTimeout: req.idleTimeoutMs,
        servername: target.servername,
      }
      const exchange = new Exchange(target, req, opts, this.passive)
      await exchange.run()
      if (exchange.statusCode !== 0) {
        return {
          ok: true,
          statusCode: exchange.statusCode,
          headers: exchange.headers!,
          body: exchange.body!,
          target: target.address.label,
          attempts,
          connectMs: exchange.connectMs,
        }
      }
      last = exchange
      lastTarget = target
      if (!exchange.isRetryable || attempts > req.retries || req.signal.aborted) {
        return this.failure(exchange, target, attempts)
      }
      ;(avoid ??= []).push(target)
    }
  }

  private failure(exchange: Exchange, target: Target | undefined, attempts: number): UpstreamResult {
    return {
      ok: false,
      denial: { reason: exchange.reason!, ...(exchange.detail !== undefined ? { detail: exchange.detail } : {}) },
      target: target?.address.label,
      attempts,
    }
  }

  start(): void {
    if (this.isStarted || this.isClosed) return
    this.isStarted = true
    this.active?.start()
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown((pool) => pool.close())
    return this.closing
  }

  destroy(): Promise<void> {
    this.isClosed = true
    return this.shutdown((pool) => pool.destroy())
  }

  private async shutdown(end: (pool: Pool) => Promise<void>): Promise<void> {
    this.isClosed = true
    await this.active?.stop()
    // A pool already closed or destroyed rejects; the end state is what we want either way.
    await Promise.allSettled(this.targets.map((t) => end(t.pool)))
  }
}

/**
 * Builds an upstream from validated config. Throws ConfigError with paths
 * under `['upstreams', name, ...]` for unreadable or mismatched TLS material.
 * Opens no connection until the first request (or `start()` with probes).
 */
export function createUpstream(name: string, cfg: UpstreamConfig, deps: UpstreamDeps): Upstream {
  const log = deps.log.child({ upstream: name })
  const connector = buildUpstreamConnector(name, cfg, deps.source)
  const poolOptions: Pool.Options = {
    connections: cfg.connectionsPerTarget,
    pipelining: 1,
    connect: connector.connect,
    keepAliveTimeout: cfg.keepAliveTimeout,
    keepAliveMaxTimeout: cfg.keepAliveTimeout,
    strictContentLength: true,
    allowH2: false,
  }
  const maxInflight = cfg.connectionsPerTarget + cfg.maxPendingRequests
  const targets = cfg.targets.map((t, i) => {
    const address = parseTargetUrl(t.url)
    return new Target(i, address, t.weight, connector.servernameFor(address.hostname), new Pool(address.origin, poolOptions), maxInflight)
  })
  const passive = new PassiveHealth(cfg.healthCheck.passive, deps.clock, log)
  const active = cfg.healthCheck.active ? new ActiveHealth(cfg.healthCheck.active, targets, connector, cfg.keepAliveTimeout, log) : undefined
  return new PooledUpstream(name, targets, createBalancer(cfg.balancing, targets), passive, cfg.hostHeader, active)
}
