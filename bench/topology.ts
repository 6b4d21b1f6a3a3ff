/**
 * Where everything in one bench run listens, and the paths every proxy
 * serves. One shape for all proxies, so each config generator maps the same
 * facts to its own syntax and every client hits the same URLs.
 */
import type { BenchPki } from './pki.js'

/** The proxies compared, in the table's column order. */
export const proxyNames = ['portcullis', 'portcullis-cluster', 'nginx', 'haproxy', 'naive'] as const
export type ProxyName = (typeof proxyNames)[number]

/** A proxy's ports: one listener per server key type (ECDSA, RSA). */
export interface ProxyPorts {
  readonly ec: number
  readonly rsa: number
  /** HTTP/2 port when the proxy's HTTP/1.1 listener cannot speak it (the naive floor). */
  readonly h2?: number
}

/** Everything the config generators need. */
export interface Topology {
  /** Run directory: configs, logs, pid files, temp files. */
  readonly dir: string
  readonly pki: { readonly ec: BenchPki; readonly rsa: BenchPki }
  /** The fast upstream: 64-byte answers and the 100 MB download. */
  readonly upstreamPort: number
  /** The sink upstream: reads an upload to its end and answers with its size. */
  readonly sinkPort: number
  readonly ports: Readonly<Record<ProxyName, ProxyPorts>>
  /** Idle keep-alive connections the memory scenario opens; every proxy is sized for it. */
  readonly idleConnections: number
}

/**
 * Paths every proxy serves. `full` and `bare` reach the same upstream; only
 * Portcullis treats them differently (full pipeline vs a bare route).
 */
export const paths = {
  full: '/',
  bare: '/bare',
  download: '/stream/down',
  upload: '/stream/up',
} as const

/** Size of the upstream's small answer, and of the streamed body. */
export const smallBodyBytes = 64
export const streamBytes = 100 * 1024 * 1024

/**
 * The idle-connection scenario's count: 10,000, or fewer when the descriptor
 * hard limit cannot hold them. HAProxy reserves two descriptors per
 * connection up to its maxconn and cannot raise a hard limit, so under the
 * 20,000 of some containers it holds ~9,900 at most.
 */
export function idleConnectionCount(fdHardLimit: number): number {
  return Math.min(10_000, Math.floor((fdHardLimit - 1000) / 200) * 100)
}
