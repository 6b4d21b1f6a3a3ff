/**
 * Passive health (outlier detection): targets are judged by the answers real
 * requests get. `consecutiveFailures` target faults in a row (connect error,
 * TLS failure, reset, timeout, invalid response, or a 502/503/504 answer)
 * eject the target for `ejectFor`; after that it takes traffic again with a
 * clean count.
 *
 * The decision reads the injected Clock, so tests move time instead of
 * sleeping. The Clock is read only while some target is ejected: the common
 * case (all healthy) costs one integer compare per request.
 *
 * Not done (deliberately simple): Envoy's growing ejection time for repeat
 * offenders and its cap on the share of ejected hosts. When every target is
 * out, requests get `upstream_unavailable` — an honest 503 rather than
 * traffic to targets known to fail.
 */
import type { Clock } from '../../shared/clock.js'
import type { Logger } from '../../shared/log.js'
import type { Reason } from '../../shared/reasons.js'
import type { Target } from './target.js'

/** Settings from `healthCheck.passive` (validated: durations in ms). */
export interface PassiveHealthConfig {
  readonly consecutiveFailures: number
  readonly ejectFor: number
}

/** Ejection state of one upstream's targets. Single-threaded: called on the event loop only. */
export class PassiveHealth {
  /** Targets currently ejected; 0 means restoreExpired has nothing to do. */
  ejectedCount = 0

  constructor(
    private readonly cfg: PassiveHealthConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** A response that is not 502-504: the streak ends. */
  recordSuccess(t: Target): void {
    t.consecutiveFailures = 0
  }

  /** A target fault. Faults from requests that were in flight while the target was already out are ignored. */
  recordFailure(t: Target, reason: Reason | number): void {
    if (t.isEjected) return
    t.consecutiveFailures += 1
    if (t.consecutiveFailures < this.cfg.consecutiveFailures) return
    t.isEjected = true
    t.ejectedUntil = this.clock.now() + this.cfg.ejectFor
    t.consecutiveFailures = 0
    this.ejectedCount += 1
    this.log.warn(
      { target: t.address.label, lastFailure: reason, failures: this.cfg.consecutiveFailures, ejectForMs: this.cfg.ejectFor },
      'upstream target ejected',
    )
  }

  /** Brings back targets whose cool-off has passed. Cheap no-op while none is ejected. */
  restoreExpired(targets: readonly Target[]): void {
    if (this.ejectedCount === 0) return
    const now = this.clock.now()
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!
      if (t.isEjected && t.ejectedUntil <= now) {
        t.isEjected = false
        t.ejectedUntil = 0
        this.ejectedCount -= 1
        this.log.info({ target: t.address.label }, 'upstream target restored after ejection')
      }
    }
  }
}
