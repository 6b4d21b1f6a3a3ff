/**
 * Picks the target for one attempt. Both policies scan the target list once
 * (O(n), no allocation): gateway upstreams have a handful of targets, where an
 * exact scan costs less than the random draws of power-of-two-choices, which
 * Envoy uses because its host sets can be thousands long.
 *
 * Targets that are ejected, failing probes or full are skipped. A retry
 * passes the targets already tried in `avoid`; they are used again only when
 * no other target is available.
 */
import type { Target } from './target.js'

/** Chooses a target, or undefined when none is available. */
export interface Balancer {
  pick(avoid: readonly Target[] | undefined): Target | undefined
}

/**
 * Smooth weighted round-robin (nginx): each pick adds every eligible target's
 * weight to its `rrCurrent`, takes the largest, and subtracts the total from
 * it. Weights 5:1:1 give a a b a c a a, spread out rather than in bursts, and
 * a skipped target does not bank credit while it is out.
 */
class RoundRobin implements Balancer {
  constructor(private readonly targets: readonly Target[]) {}

  pick(avoid: readonly Target[] | undefined): Target | undefined {
    const targets = this.targets
    let best: Target | undefined
    let total = 0
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!
      if (!t.isAvailable() || (avoid !== undefined && avoid.includes(t))) continue
      t.rrCurrent += t.weight
      total += t.weight
      if (best === undefined || t.rrCurrent > best.rrCurrent) best = t
    }
    if (best !== undefined) best.rrCurrent -= total
    return best
  }
}

/**
 * Fewest requests in flight, scaled by weight: the lowest (inflight + 1) /
 * weight wins, compared by cross-multiplying (no division). The scan starts
 * one target later on each pick, so ties (an idle upstream) rotate instead of
 * always landing on the first target.
 */
class LeastRequest implements Balancer {
  private cursor = 0

  constructor(private readonly targets: readonly Target[]) {}

  pick(avoid: readonly Target[] | undefined): Target | undefined {
    const targets = this.targets
    const n = targets.length
    const start = this.cursor
    this.cursor = start + 1 === n ? 0 : start + 1
    let best: Target | undefined
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n
      const t = targets[i]!
      if (!t.isAvailable() || (avoid !== undefined && avoid.includes(t))) continue
      if (best === undefined || (t.inflight + 1) * best.weight < (best.inflight + 1) * t.weight) best = t
    }
    return best
  }
}

/** Falls back to the avoided targets when nothing else is available ("another target when there is one"). */
class AvoidingBalancer implements Balancer {
  constructor(private readonly inner: Balancer) {}

  pick(avoid: readonly Target[] | undefined): Target | undefined {
    const picked = this.inner.pick(avoid)
    if (picked !== undefined || avoid === undefined) return picked
    return this.inner.pick(undefined)
  }
}

/** The balancer for a policy over a fixed target list (built once per upstream). */
export function createBalancer(policy: 'round_robin' | 'least_request', targets: readonly Target[]): Balancer {
  return new AvoidingBalancer(policy === 'least_request' ? new LeastRequest(targets) : new RoundRobin(targets))
}
