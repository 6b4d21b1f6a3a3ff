/**
 * Active health: each target is probed with `GET path` every `interval`;
 * `unhealthyThreshold` failures in a row take it out of rotation and
 * `healthyThreshold` passes in a row bring it back. A probe fails on a status
 * outside `expectStatus`, any connection or TLS error, or no full answer
 * within `timeout`.
 *
 * Decisions:
 * - Targets start healthy, so a reload does not answer 503 until the first
 *   round of probes has run; the first probe runs at once on `start()`.
 * - Probes use their own one-connection Client per target, with the same
 *   connector (mTLS, pins, SNI) as traffic: a saturated traffic pool cannot
 *   delay a probe into a false failure, and probes check the real TLS path.
 * - The next probe is scheduled when the previous one ends, so probes of a
 *   slow target never pile up. Timers are unref'd and cleared by `stop()`.
 * - The probe path is taken on the target's origin, without the target URL's
 *   path prefix (health endpoints usually live at the root).
 */
import { Client, type Dispatcher } from 'undici'
import type { UpstreamConfig } from '../../config/schema/upstreams.js'
import type { Logger } from '../../shared/log.js'
import type { UpstreamConnector } from './connector.js'
import type { Target } from './target.js'

type ActiveConfig = NonNullable<UpstreamConfig['healthCheck']['active']>

/** Cap on probe response bytes read; the status is what counts. */
const PROBE_BODY_LIMIT = 64 * 1024

interface ProbeState {
  readonly target: Target
  readonly client: Client
  passes: number
  failures: number
  timer: NodeJS.Timeout | undefined
}

function runProbe(checker: ActiveHealth, state: ProbeState): void {
  void checker.probe(state)
}

/** Probes one upstream's targets until stopped. */
export class ActiveHealth {
  private readonly states: ProbeState[]
  private readonly expect: ReadonlySet<number>
  private readonly stopper = new AbortController()
  private isStopped = false

  constructor(
    private readonly cfg: ActiveConfig,
    targets: readonly Target[],
    connector: UpstreamConnector,
    keepAliveTimeout: number,
    private readonly log: Logger,
  ) {
    this.expect = new Set(cfg.expectStatus)
    this.states = targets.map((target) => ({
      target,
      client: new Client(target.address.origin, { connect: connector.connect, keepAliveTimeout, pipelining: 1 }),
      passes: 0,
      failures: 0,
      timer: undefined,
    }))
  }

  /** Probes every target now, then every interval. */
  start(): void {
    for (const state of this.states) this.schedule(state, 0)
  }

  /** Clears timers, aborts probes in flight and closes probe connections. */
  async stop(): Promise<void> {
    if (this.isStopped) return
    this.isStopped = true
    for (const state of this.states) clearTimeout(state.timer)
    this.stopper.abort()
    await Promise.allSettled(this.states.map((s) => s.client.destroy()))
  }

  /** One probe of one target, then the next is scheduled. Never rejects. */
  async probe(state: ProbeState): Promise<void> {
    state.timer = undefined
    let isPass = false
    let detail: string | number = 'no answer'
    try {
      const options: Dispatcher.RequestOptions & { servername: string } = {
        method: 'GET',
        path: this.cfg.path,
        headers: { host: state.target.address.hostHeader, 'user-agent': 'portcullis-health-check' },
        servername: state.target.servername,
        headersTimeout: this.cfg.timeout,
        bodyTimeout: this.cfg.timeout,
        signal: AbortSignal.any([this.stopper.signal, AbortSignal.timeout(this.cfg.timeout)]),
      }
      const res = await state.client.request(options)
      detail = res.statusCode
      await res.body.dump({ limit: PROBE_BODY_LIMIT })
      isPass = this.expect.has(res.statusCode)
    } catch (err) {
      detail = (err as NodeJS.ErrnoException).code ?? (err as Error).name
    }
    if (this.isStopped) return
    this.record(state, isPass, detail)
    this.schedule(state, this.cfg.interval)
  }

  private record(state: ProbeState, isPass: boolean, detail: string | number): void {
    const t = state.target
    if (isPass) {
      state.failures = 0
      state.passes += 1
      if (!t.isProbeHealthy && state.passes >= this.cfg.healthyThreshold) {
        t.isProbeHealthy = true
        this.log.info({ target: t.address.label, passes: state.passes }, 'upstream target healthy again (active probe)')
      }
    } else {
      state.passes = 0
      state.failures += 1
      if (t.isProbeHealthy && state.failures >= this.cfg.unhealthyThreshold) {
        t.isProbeHealthy = false
        this.log.warn({ target: t.address.label, failures: state.failures, last: detail }, 'upstream target unhealthy (active probe)')
      }
    }
  }

  private schedule(state: ProbeState, delay: number): void {
    if (this.isStopped) return
    state.timer = setTimeout(runProbe, delay, this, state)
    state.timer.unref()
  }
}
