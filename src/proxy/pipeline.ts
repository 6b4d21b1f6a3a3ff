/**
 * The security pipeline: its one fixed order, and the loop that runs a
 * route's compiled stages. Config enables and configures stages per route but
 * cannot reorder them (DESIGN.md §1), so authorization never runs before
 * authentication.
 */
import type { Denial } from '../shared/reasons.js'
import type { RequestContext, Stage } from './context.js'

/**
 * The order of the stages, each with why it stands where it does. Names are
 * snake_case because they leave the process (logs, metrics).
 */
export const STAGE_ORDER = [
  // Cheapest refusal first, and needs nothing but the peer address: a denied
  // network never costs us identity matching or token parsing.
  'ip_filter',
  // Establishes the principal; every stage after it may rely on ctx.principal.
  'authn',
  // Decides on the principal. Must follow authn, and must precede anything
  // that spends resources on behalf of the caller (rate-limit buckets, WAF).
  'authz',
] as const
export type StageName = (typeof STAGE_ORDER)[number]

/** A route's stage list, as built once at compile time. */
export interface NamedStage {
  readonly name: StageName
  readonly run: Stage
}

/** Orders stage factories' outputs by STAGE_ORDER; stages a route does not enable are absent. */
export function orderStages(stages: Partial<Record<StageName, Stage>>): readonly NamedStage[] {
  const ordered: NamedStage[] = []
  for (const name of STAGE_ORDER) {
    const run = stages[name]
    if (run) ordered.push({ name, run })
  }
  return Object.freeze(ordered)
}

/**
 * Runs the stages in order and stops at the first Denial. Synchronous stages
 * stay synchronous (no promise per stage on the hot path); the first stage
 * that returns a promise switches the rest of the loop to async.
 */
export function runStages(stages: readonly NamedStage[], ctx: RequestContext): Denial | undefined | Promise<Denial | undefined> {
  for (let i = 0; i < stages.length; i++) {
    const out = stages[i]!.run(ctx)
    if (out === undefined) continue
    if (out instanceof Promise) return continueAsync(stages, ctx, i, out)
    return out
  }
  return undefined
}

async function continueAsync(
  stages: readonly NamedStage[],
  ctx: RequestContext,
  index: number,
  pending: Promise<Denial | undefined>,
): Promise<Denial | undefined> {
  const first = await pending
  if (first) return first
  for (let i = index + 1; i < stages.length; i++) {
    const out = await stages[i]!.run(ctx)
    if (out) return out
  }
  return undefined
}
