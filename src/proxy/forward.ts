/**
 * Sends an admitted request to its upstream and streams the answer back.
 * Bodies stream both ways without buffering; the route's body limit is
 * enforced up front (Content-Length) and while streaming (chunked, HTTP/2).
 * If the client leaves, or the route's total timeout fires, the upstream
 * request is aborted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { Denial } from '../shared/reasons.js'
import type { CompiledRoute } from './compiled-route.js'
import type { RequestContext } from './context.js'
import { isTimedOut, onBodyTimeout } from './http1-deadlines.js'
import { cleanResponseHeaders } from './response-headers.js'
import { buildUpstreamHeaders } from './upstream-headers.js'

export type ServerRequest = IncomingMessage | Http2ServerRequest
export type ServerResponseLike = ServerResponse | Http2ServerResponse

/** Mutable facts about one exchange, filled in as it goes; read by the access log. */
export interface ExchangeRecord {
  status: number
  reason: string | undefined
  detail: string | undefined
  target: string | undefined
  attempts: number | undefined
  bytesIn: number
  bytesOut: number
  upstreamConnectMs: number | undefined
  upstreamHeadersMs: number | undefined
}

/**
 * Counts request-body bytes, fails the stream once the route's limit is
 * passed, and fails it at the end when a declared Content-Length was not met.
 * The last check is for HTTP/2: when nghttp2 resets a stream whose DATA does
 * not match its content-length, Node's compat layer ends the request stream
 * cleanly, which would forward a truncated body as complete.
 */
class BodyLimit extends Transform {
  seen = 0
  exceeded = false
  constructor(
    private readonly max: number,
    private readonly declared: number | undefined,
  ) {
    super()
  }
  override _flush(done: TransformCallback): void {
    if (this.declared !== undefined && this.seen !== this.declared) {
      done(new Error(`request body ended after ${this.seen} of ${this.declared} declared bytes`))
      return
    }
    done()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.max) {
      this.exceeded = true
      done(new Error('request body exceeds the route limit'))
      return
    }
    done(null, chunk)
  }
}

/**
 * Streams the upstream's body to the client with backpressure, counting bytes.
 * Not stream.pipeline(): it aborts an internal AbortController at every
 * finish, building a DOMException with a stack trace per response (measured:
 * 3% of gateway CPU under keep-alive load). The two failure directions are
 * wired by hand instead: an upstream error destroys the client response (the
 * client sees a failure, not a truncated success), and a client that leaves
 * destroys the upstream body (its connection is aborted, not drained).
 */
function streamResponse(body: Readable, res: ServerResponseLike, rec: ExchangeRecord): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('close', onClose)
      resolve()
    }
    const onClose = () => {
      if (!body.readableEnded) body.destroy()
      done()
    }
    body.on('data', (chunk: Buffer) => {
      rec.bytesOut += chunk.length
    })
    body.once('error', () => {
      res.destroy()
      done()
    })
    res.once('close', onClose)
    res.once('finish', done)
    ;(body as Readable).pipe(res as NodeJS.WritableStream)
  })
}

/** The declared body length, or undefined for chunked / HTTP/2 without content-length. */
function declaredLength(req: ServerRequest): number | undefined {
  const cl = req.headers['content-length']
  return cl === undefined ? undefined : Number(cl)
}

function hasBody(req: ServerRequest): boolean {
  const length = declaredLength(req)
  if (length !== undefined) return length > 0
  if ('stream' in req) return !req.stream.endAfterHeaders && !req.stream.readableEnded
  return req.headers['transfer-encoding'] !== undefined
}

/**
 * Forwards and answers. Returns a Denial when the gateway must answer instead
 * (the caller renders it); resolves undefined once the upstream's response has
 * been streamed (or the exchange was torn down mid-stream).
 */
export async function forward(
  ctx: RequestContext,
  req: ServerRequest,
  res: ServerResponseLike,
  route: CompiledRoute,
  rec: ExchangeRecord,
): Promise<Denial | undefined> {
  const length = declaredLength(req)
  if (length !== undefined && length > route.maxBodyBytes) {
    return { reason: 'payload_too_large', detail: `content-length ${length} > ${route.maxBodyBytes}` }
  }

  let body: Readable | null = null
  let limit: BodyLimit | undefined
  if (hasBody(req)) {
    limit = new BodyLimit(route.maxBodyBytes, length)
    const bodyLimit = limit
    body = req.pipe(bodyLimit)
    req.on('error', (err) => bodyLimit.destroy(err))
    // A reset HTTP/2 stream or a client gone mid-upload: never let the upstream see a clean end.
    req.on('aborted', () => bodyLimit.destroy(new Error('client aborted the request body')))
    onBodyTimeout(req, () => {
      req.unpipe(bodyLimit)
      bodyLimit.destroy(new Error('request body not received in time'))
    })
  }

  const controller = new AbortController()
  const onClientGone = () => {
    if (!res.writableFinished) controller.abort()
  }
  res.on('close', onClientGone)
  const totalTimer = setTimeout(() => controller.abort(), route.totalTimeoutMs)

  const path =
    (route.stripPrefix && ctx.path.startsWith(route.stripPrefix) ? ctx.path.slice(route.stripPrefix.length) || '/' : ctx.path) +
    (ctx.query ? `?${ctx.query}` : '')
  // Expect: 100-continue is answered only now, after routing and access
  // checks: a refused client never gets the go-ahead to send its body.
  if (body && req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue()
  const started = performance.now()
  try {
    const headers = await buildUpstreamHeaders(ctx, req, route.headerPolicy)
    const result = await route.upstream.request({
      method: ctx.method,
      path: path.startsWith('/') ? path : `/${path}`,
      headers,
      clientHost: ctx.host,
      body,
      signal: controller.signal,
      responseHeadersTimeoutMs: route.responseHeadersTimeoutMs,
      idleTimeoutMs: route.idleTimeoutMs,
      retries: route.retries,
    })
    rec.attempts = result.attempts
    rec.target = result.target
    if (!result.ok) {
      if (isTimedOut(req)) return { reason: 'request_timeout', detail: 'request body not received in time' }
      if (limit?.exceeded) return { reason: 'payload_too_large', detail: `body passed ${route.maxBodyBytes} bytes` }
      if (controller.signal.aborted && !res.writableEnded && !res.destroyed) {
        return { reason: 'upstream_timeout', detail: `route total timeout ${route.totalTimeoutMs}ms` }
      }
      return result.denial
    }
    rec.upstreamConnectMs = result.connectMs
    rec.upstreamHeadersMs = performance.now() - started
    rec.status = result.statusCode
    if (res.destroyed) {
      result.body.destroy()
      return undefined
    }
    res.writeHead(result.statusCode, cleanResponseHeaders(result.headers, ctx.id))
    await streamResponse(result.body, res, rec)
    return undefined
  } finally {
    clearTimeout(totalTimer)
    res.off('close', onClientGone)
    if (limit) rec.bytesIn = limit.seen
  }
}
