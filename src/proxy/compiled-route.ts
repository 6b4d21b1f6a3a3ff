/** What a route becomes at compile time: everything a request needs, resolved and frozen. */
import type { NamedStage } from './pipeline.js'
import type { Upstream } from './upstream/upstream.js'
import type { HeaderPolicy } from './upstream-headers.js'

export interface CompiledRoute {
  readonly name: string
  readonly upstream: Upstream
  /** Stages in STAGE_ORDER, only those this route enables. */
  readonly stages: readonly NamedStage[]
  readonly headerPolicy: HeaderPolicy
  /** Removed from the normalised path before forwarding; undefined = none. */
  readonly stripPrefix: string | undefined
  readonly maxBodyBytes: number
  readonly maxUrlLength: number
  readonly responseHeadersTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly totalTimeoutMs: number
  readonly retries: number
}
