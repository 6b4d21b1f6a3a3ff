/**
 * When a worker dies unexpectedly, the primary replaces it, after a delay
 * that doubles with every recent death, and gives up (stopping the gateway
 * with an error) once deaths come too fast to be bad luck: a worker that
 * crashes at start, or on every request of some kind, would otherwise be
 * forked forever while the remaining workers carry the load unnoticed.
 *
 * Deaths are counted across all workers within a sliding window, because the
 * usual cause (a bad certificate file after a renewal, a poisoned request, a
 * broken build) hits every worker alike. The clock is injected; the decision
 * depends only on it and the recorded deaths.
 */
import type { Clock } from '../shared/clock.js'

/** Limits of the replacement loop. */
export interface RestartPolicy {
  /** Deaths older than this are forgotten. */
  readonly windowMs: number
  /** This many deaths within the window stop the gateway. */
  readonly maxDeaths: number
  /** Delay before the first replacement; doubled per further recent death. */
  readonly baseDelayMs: number
  readonly maxDelayMs: number
}

/** 5 deaths (or two per worker, whichever is more) in a minute; 100 ms doubling to 10 s. */
export function defaultRestartPolicy(workers: number): RestartPolicy {
  return { windowMs: 60_000, maxDeaths: Math.max(5, 2 * workers), baseDelayMs: 100, maxDelayMs: 10_000 }
}

/** What to do about a death: replace the worker after `delayMs`, or stop the gateway. */
export type RestartDecision =
  | { readonly action: 'replace'; readonly delayMs: number }
  | { readonly action: 'give_up'; readonly deaths: number; readonly windowMs: number }

/** Remembers recent worker deaths and decides what each new one means. */
export class RestartGuard {
  private deaths: number[] = []

  constructor(
    private readonly policy: RestartPolicy,
    private readonly clock: Clock,
  ) {}

  /** Records a death now and decides. */
  onDeath(): RestartDecision {
    const now = this.clock.now()
    this.deaths = [...this.deaths.filter((t) => now - t < this.policy.windowMs), now]
    const recent = this.deaths.length
    if (recent >= this.policy.maxDeaths) return { action: 'give_up', deaths: recent, windowMs: this.policy.windowMs }
    return { action: 'replace', delayMs: Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (recent - 1)) }
  }
}
