/**
 * Driving the upstream client (src/proxy/upstream/) directly, without the
 * gateway in front: a validated Upstream from a config object, and request
 * templates with test-friendly timeouts.
 */
import { upstreamSchema } from '../../src/config/schema/upstreams.js'
import { createUpstream, type Upstream, type UpstreamRequest } from '../../src/proxy/upstream/upstream.js'
import { systemClock, type Clock } from '../../src/shared/clock.js'
import { silentLogger } from '../../src/shared/log.js'

/** An Upstream from a raw config object (validated by the schema). The caller destroys it. */
export function createTestUpstream(
  cfg: Record<string, unknown>,
  opts: { readonly name?: string; readonly baseDir?: string; readonly clock?: Clock } = {},
): Upstream {
  return createUpstream(opts.name ?? 'test', upstreamSchema.parse(cfg), {
    source: { baseDir: opts.baseDir ?? '/', env: {} },
    clock: opts.clock ?? systemClock,
    log: silentLogger(),
  })
}

/** A bodiless GET / with the given timeouts; fields in `over` replace the defaults. */
export function upstreamRequest(over: Partial<UpstreamRequest> = {}, timeoutMs = 2000): UpstreamRequest {
  return {
    method: 'GET',
    path: '/',
    headers: {},
    clientHost: 'client.example',
    body: null,
    signal: new AbortController().signal,
    responseHeadersTimeoutMs: timeoutMs,
    idleTimeoutMs: timeoutMs,
    retries: 0,
    ...over,
  }
}
