/**
 * One JSON line per request (and per refused handshake): who, what, which
 * route and upstream, the outcome's reason code, sizes and timings. Built from
 * fields the request already carries, so the hot path only assembles one
 * object; pino serialises it off the request's critical path.
 */
import { pino } from 'pino'
import type { Logger } from '../shared/log.js'
import type { Connection, Principal } from './context.js'

/** The fields of one access-log line. Times in ms with µs precision. */
export interface AccessRecord {
  readonly requestId: string
  readonly listener: string
  readonly clientIp: string
  readonly clientPort: number
  readonly httpVersion: string
  readonly method: string
  readonly host: string
  readonly path: string
  readonly status: number
  /** Reason code when the gateway answered (denial), else undefined. */
  readonly reason: string | undefined
  /** Log-only detail of a denial (never sent to clients). */
  readonly detail: string | undefined
  readonly route: string | undefined
  readonly upstream: string | undefined
  readonly target: string | undefined
  readonly attempts: number | undefined
  readonly principal: Principal | undefined
  readonly conn: Connection
  readonly bytesIn: number
  readonly bytesOut: number
  readonly upstreamConnectMs: number | undefined
  readonly upstreamHeadersMs: number | undefined
  readonly totalMs: number
  /** The client went away before the response finished. */
  readonly aborted: boolean
}

function principalFields(p: Principal | undefined, conn: Connection) {
  if (p?.kind === 'mtls') {
    return { kind: 'mtls', subject: p.identity.subject, spiffeId: p.identity.spiffeId, fingerprint: p.identity.fingerprint256, names: p.names }
  }
  if (p?.kind === 'anonymous') return { kind: 'anonymous' }
  // Denied before authn ran: still say which certificate was on the connection.
  if (conn.identity) return { kind: 'unauthenticated', subject: conn.identity.subject, fingerprint: conn.identity.fingerprint256 }
  return undefined
}

const round = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1000) / 1000)

/**
 * pino options for access-log lines: ISO time, the level as a label (as in the
 * process log), no pid/host fields. (A level formatter returning {} would be
 * neater, but pino then writes invalid JSON: `{,"time":...}`.)
 */
export const accessLogOptions = {
  base: undefined,
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label: string) => ({ level: label }) },
}

/**
 * Writes access-log lines. `fallback` is the destination when the config names
 * no file (stdout in production, a collector in tests); `configure()` follows
 * the config's `accessLog` section at each apply.
 */
export class AccessLog {
  private log: Logger | undefined
  private path: string | undefined

  constructor(private readonly fallback: Logger) {
    this.log = fallback
  }

  /** Points the log at the configured destination; a no-op when unchanged. */
  configure(cfg: { readonly enabled: boolean; readonly path?: string | undefined }): void {
    if (!cfg.enabled) {
      this.log = undefined
      this.path = undefined
      return
    }
    if (cfg.path === this.path && this.log) return
    this.path = cfg.path
    this.log = cfg.path
      ? pino(accessLogOptions, pino.destination({ dest: cfg.path, append: true, mkdir: true, sync: false }))
      : this.fallback
  }

  /** Logs one finished (or aborted) request. */
  request(r: AccessRecord): void {
    if (!this.log) return
    this.log.info({
      type: 'request',
      requestId: r.requestId,
      listener: r.listener,
      clientIp: r.clientIp,
      clientPort: r.clientPort,
      http: r.httpVersion,
      method: r.method,
      host: r.host,
      path: r.path,
      status: r.status,
      reason: r.reason,
      detail: r.detail,
      route: r.route,
      upstream: r.upstream,
      target: r.target,
      attempts: r.attempts,
      principal: principalFields(r.principal, r.conn),
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      tls: { version: r.conn.tlsVersion, cipher: r.conn.cipher, resumed: r.conn.isResumed, sni: r.conn.serverName },
      durations: {
        tlsHandshakeMs: round(r.conn.handshakeMs),
        upstreamConnectMs: round(r.upstreamConnectMs),
        upstreamHeadersMs: round(r.upstreamHeadersMs),
        totalMs: round(r.totalMs),
      },
      aborted: r.aborted || undefined,
    })
  }

  /** Logs a connection refused at or right after the handshake. */
  handshake(fields: { listener: string; clientIp: string; clientPort: number; reason: string; detail?: string; subject?: string; fingerprint?: string; sni?: string }): void {
    this.log?.info({ type: 'handshake', ...fields })
  }
}
