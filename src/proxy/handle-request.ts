/**
 * One request's life after the handshake (docs/architecture.md, steps 3-8):
 * read the runtime once, check framing, normalise the path, route, run the
 * route's stages, forward, answer, log. Exceptions here are bugs: the boundary
 * logs the stack with the request id and answers internal_error.
 */
import type { ListenerRuntime } from '../compile.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import type { Denial } from '../shared/reasons.js'
import type { AccessLog } from './access-log.js'
import type { Connection, RequestContext } from './context.js'
import { checkFraming } from './framing.js'
import { forward, type ExchangeRecord, type ServerRequest, type ServerResponseLike } from './forward.js'
import { normalizePath } from './path.js'
import { runStages } from './pipeline.js'
import { sendDenial } from './reply.js'
import { requestIdFrom } from './upstream-headers.js'
import type { CompiledRoute } from './compiled-route.js'

/** What the handler needs besides the request; fixed for the process. */
export interface HandlerDeps {
  readonly clock: Clock
  readonly log: Logger
  readonly accessLog: AccessLog
  /** The listener's current compiled state; read once per request. */
  readonly current: () => ListenerRuntime
  /** The connection facts the listener stored at secureConnection, or the denial it decided. */
  readonly connectionOf: (req: ServerRequest) => { conn: Connection; denial: Denial | undefined } | undefined
}

/** Host without port or trailing dot, lowercased; undefined when absent or malformed. */
function requestHost(req: ServerRequest): string | undefined {
  const raw = 'stream' in req ? (req.headers[':authority'] ?? req.headers.host) : req.headers.host
  if (typeof raw !== 'string' || raw.length === 0) return undefined
  let host = raw
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    if (end < 0) return undefined
    host = host.slice(1, end)
  } else {
    const colon = host.indexOf(':')
    if (colon >= 0) host = host.slice(0, colon)
  }
  // "b.example." is the same host as "b.example" (an absolute FQDN). Every
  // consumer — the misdirection check, the router, the logs — must see one
  // form, or a trailing dot selects one name's trust and another's routes.
  if (host.endsWith('.')) host = host.slice(0, -1)
  return host.toLowerCase()
}

/**
 * SNI and Host must not pick different trust: a client verified against
 * partner A's CA (SNI a.example) must not reach b.example's routes by sending
 * `Host: b.example`. Same trust (one bundle, or names sharing a bundle) is fine.
 */
function isMisdirected(lr: ListenerRuntime, conn: Connection, host: string): boolean {
  const sni = conn.serverName
  if (sni === undefined || sni === host) return false
  return lr.tls.trustKeyFor(sni) !== lr.tls.trustKeyFor(host)
}

/**
 * The identity assertion's public keys, so upstreams can verify who called.
 * Public data: served to any client the listener admitted at the handshake.
 */
function serveJwks(res: ServerResponseLike, body: string, requestId: string, method: string): void {
  res.writeHead(200, {
    'content-type': 'application/jwk-set+json',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'public, max-age=300',
    'x-content-type-options': 'nosniff',
    'x-request-id': requestId,
  })
  if (method === 'HEAD') res.end()
  else res.end(body)
}

/** Builds the request handler for one listener (by name; the runtime may change under it). */
export function createRequestHandler(listenerName: string, deps: HandlerDeps) {
  return function handleRequest(req: ServerRequest, res: ServerResponseLike): void {
    const receivedAt = deps.clock.now()
    const started = performance.now()
    const lr = deps.current()
    const connInfo = deps.connectionOf(req)
    const id = requestIdFrom(req)
    const rec: ExchangeRecord = {
      status: 0, reason: undefined, detail: undefined, target: undefined, attempts: undefined,
      bytesIn: 0, bytesOut: 0, upstreamConnectMs: undefined, upstreamHeadersMs: undefined,
    }
    let ctx: RequestContext | undefined
    let route: CompiledRoute | undefined
    let host = ''
    let logged = false

    const finish = () => {
      if (logged || !connInfo) return
      logged = true
      deps.accessLog.request({
        requestId: id,
        listener: listenerName,
        clientIp: connInfo.conn.remoteAddress,
        clientPort: connInfo.conn.remotePort,
        httpVersion: req.httpVersion,
        method: req.method ?? '',
        host,
        path: ctx?.path ?? (req.url ?? '').slice(0, 256),
        status: rec.status || res.statusCode,
        reason: rec.reason,
        detail: rec.detail,
        route: route?.name,
        upstream: route?.upstream.name,
        target: rec.target,
        attempts: rec.attempts,
        principal: ctx?.principal,
        conn: connInfo.conn,
        bytesIn: rec.bytesIn,
        bytesOut: rec.bytesOut,
        upstreamConnectMs: rec.upstreamConnectMs,
        upstreamHeadersMs: rec.upstreamHeadersMs,
        totalMs: performance.now() - started,
        aborted: !res.writableFinished,
      })
    }
    res.once('close', finish)

    const deny = (denial: Denial) => {
      rec.reason = denial.reason
      rec.detail = denial.detail
      // The request body is not read: drain nothing, the reply closes framing-unsafe connections.
      sendDenial(res, denial, id)
      rec.status = res.statusCode
    }

    const run = (): Denial | undefined | Promise<Denial | undefined> => {
      if (!connInfo) return { reason: 'internal_error', detail: 'no state for this connection' }
      if (connInfo.denial) return connInfo.denial
      // rawHeaders is [name, value, ...]; HTTP/2 pseudo-headers are not in it.
      if (req.rawHeaders.length > lr.config.limits.maxHeadersCount * 2) {
        return { reason: 'header_too_large', detail: `${req.rawHeaders.length / 2} header fields > ${lr.config.limits.maxHeadersCount}` }
      }
      const framing = checkFraming(req)
      if (framing) return framing
      const h = requestHost(req)
      if (h === undefined) return { reason: 'bad_request', detail: 'missing or malformed Host' }
      host = h
      if (isMisdirected(lr, connInfo.conn, host)) {
        return { reason: 'misdirected_request', detail: `sni ${connInfo.conn.serverName} host ${host}` }
      }
      const target = req.url ?? ''
      const normalised = normalizePath(target, lr.paths)
      if ('reason' in normalised) return normalised
      const method = req.method ?? ''
      if (lr.jwks && normalised.path === lr.jwks.path && (method === 'GET' || method === 'HEAD')) {
        serveJwks(res, lr.jwks.body, id, method)
        rec.status = 200
        return undefined
      }
      const found = lr.router.find(listenerName, host, method, normalised.path)
      if ('reason' in found) return found
      const matched = found.route
      route = matched
      if (target.length > matched.maxUrlLength) return { reason: 'uri_too_long', detail: `${target.length} > ${matched.maxUrlLength}` }
      const context: RequestContext = {
        id,
        receivedAt,
        conn: connInfo.conn,
        method,
        host,
        path: normalised.path,
        query: normalised.query,
        params: found.params,
      }
      ctx = context
      const admitted = runStages(matched.stages, context)
      if (admitted === undefined) return forward(context, req, res, matched, rec)
      if (admitted instanceof Promise) {
        return admitted.then((d) => d ?? forward(context, req, res, matched, rec))
      }
      return admitted
    }

    const onBug = (err: unknown) => {
      deps.log.error({ err, requestId: id, listener: listenerName }, 'request handler failed')
      if (!res.headersSent) deny({ reason: 'internal_error', detail: (err as Error)?.message })
      else res.destroy()
    }

    try {
      const out = run()
      if (out instanceof Promise) out.then((d) => d && deny(d), onBug)
      else if (out) deny(out)
    } catch (err) {
      onBug(err)
    }
  }
}
