/**
 * One target of an upstream: its connection pool, the values derived once
 * from its URL, and the mutable counters balancing and health read. Counters
 * are plain fields written on the event loop, so they need no locking and cost
 * an add per request.
 */
import type { Pool } from 'undici'

/** What a target URL gives, computed once at compile time. */
export interface TargetAddress {
  /** scheme://host[:port], the pool's origin. */
  readonly origin: string
  /** The URL's path without a trailing slash; '' when the URL has none. Prepended to every forwarded path. */
  readonly pathPrefix: string
  /** host[:port] as the URL wrote it; sent as Host when hostHeader is "target". */
  readonly hostHeader: string
  /** Host name or IP without brackets or port; the default SNI. */
  readonly hostname: string
  /** origin + pathPrefix, for logs and results. Credentials cannot appear (the schema refuses them). */
  readonly label: string
}

/** Splits a target URL into the parts requests use. */
export function parseTargetUrl(url: string): TargetAddress {
  const u = new URL(url)
  const pathPrefix = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '')
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
  return { origin: u.origin, pathPrefix, hostHeader: u.host, hostname, label: u.origin + pathPrefix }
}

/** A target and its live state. Owned by one Upstream; never shared across runtimes. */
export class Target {
  /** Requests dispatched and not finished (response body ended or failed), including those queued in the pool. */
  inflight = 0
  /** Smooth weighted round-robin state (nginx's `current_weight`). */
  rrCurrent = 0
  /** Passive health: target faults in a row since the last success. */
  consecutiveFailures = 0
  /** Passive health: out of rotation until `ejectedUntil` (injected Clock, ms). */
  isEjected = false
  ejectedUntil = 0
  /** Active health: false after `unhealthyThreshold` failed probes, until `healthyThreshold` passes. */
  isProbeHealthy = true

  constructor(
    readonly index: number,
    readonly address: TargetAddress,
    readonly weight: number,
    /** SNI constant passed with every dispatch so undici never derives it from a (client-chosen) Host header. */
    readonly servername: string,
    readonly pool: Pool,
    /** inflight at which the target counts as full: connections plus allowed queue. */
    readonly maxInflight: number,
  ) {}

  /** Eligible for new requests: not ejected, not failing probes, not full. */
  isAvailable(): boolean {
    return !this.isEjected && this.isProbeHealthy && this.inflight < this.maxInflight
  }
}
