/**
 * One attempt of one request against one target: the undici dispatch handler
 * and the response body stream.
 *
 * Why a hand-written handler rather than `pool.request()`:
 * - It knows exactly whether the request left: undici calls `onConnect` when
 *   the request is assigned a connected socket and about to be written. A
 *   failure before that is a connect failure, safe to retry for any method.
 * - `onBodySent` lets us time request-body inactivity (undici has no timer
 *   for a client that stalls mid-upload).
 * - One object is the handler, the abort-signal listener (`handleEvent`) and
 *   the outcome: no closures per request. undici's legacy handler methods are
 *   its native protocol in v7 (the newer controller API is a wrapper over it).
 *
 * Backpressure: `onData` returns what `push()` returns; false pauses undici's
 * parser, and the body's `_read` resumes it. Destroying the body (the client
 * left, or the caller gave up) aborts the upstream request, which closes its
 * socket.
 */
import { Readable } from 'node:stream'
import { util as undiciUtil, type Dispatcher } from 'undici'
import type { Reason } from '../../shared/reasons.js'
import { isConnectPhase, isIdempotent, isTargetFault, reasonForError } from './classify.js'
import type { PassiveHealth } from './passive-health.js'
import type { Target } from './target.js'
import type { UpstreamRequest } from './upstream.js'

const RESPONSE_HIGH_WATER_MARK = 64 * 1024

/** The response body handed to the caller. Reading it drives the upstream socket. */
export class ResponseBody extends Readable {
  constructor(private readonly exchange: Exchange) {
    super({ highWaterMark: RESPONSE_HIGH_WATER_MARK })
  }

  override _read(): void {
    this.exchange.resumeUpstream()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.abortUpstream()
    callback(err)
  }
}

function onRequestBodyIdle(exchange: Exchange): void {
  exchange.requestBodyIdle()
}

/**
 * One attempt. `run()` resolves when the outcome is known: response headers
 * (`statusCode` > 0, `body` set) or a failure (`reason` set). The body keeps
 * streaming after that; `finish` runs once, when the exchange is fully over.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  statusCode = 0
  headers: Record<string, string | string[] | undefined> | undefined
  body: ResponseBody | undefined
  reason: Reason | undefined
  detail: string | undefined
  /** Another attempt may be made (see upstream.ts for the rules). */
  isRetryable = false
  /** ms from dispatch until the request had a connected socket (pool wait plus TCP/TLS connect when a new one was opened). */
  connectMs: number | undefined

  private isSent = false
  private isSettled = false
  private isFinished = false
  private localReason: Reason | undefined
  private abortFn: ((err?: Error) => void) | undefined
  private resumeFn: (() => void) | undefined
  private idleTimer: NodeJS.Timeout | undefined
  private resolveRun: (() => void) | undefined
  private readonly startedAt = performance.now()

  constructor(
    private readonly target: Target,
    private readonly req: UpstreamRequest,
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly health: PassiveHealth,
  ) {}

  /** Dispatches and waits for headers or failure. Never rejects. */
  run(): Promise<void> {
    this.target.inflight += 1
    this.req.signal.addEventListener('abort', this)
    return new Promise<void>((resolve) => {
      this.resolveRun = resolve
      this.target.pool.dispatch(this.opts, this)
    })
  }

  /** AbortSignal listener: the client left or the route's total timeout fired. */
  handleEvent(): void {
    this.localReason ??= 'client_closed'
    if (this.body !== undefined) {
      if (!this.body.destroyed) this.body.destroy(this.req.signal.reason as Error)
    } else if (this.abortFn !== undefined) {
      this.abortFn()
    } else if (!this.isSettled) {
      // Still queued or connecting: answer now; onConnect aborts it when a socket comes.
      this.fail('client_closed', 'aborted before a connection was ready')
    }
  }

  // ---- undici handler (legacy protocol, see module doc) ----

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort
    this.isSent = true
    this.connectMs = performance.now() - this.startedAt
    if (this.isSettled) {
      abort()
      return
    }
    const idle = this.req.idleTimeoutMs
    if (this.req.body !== null && idle > 0) {
      this.idleTimer = setTimeout(onRequestBodyIdle, idle, this)
    }
  }

  onBodySent(): void {
    this.idleTimer?.refresh()
  }

  onRequestSent(): void {
    this.clearIdleTimer()
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true // 1xx informational: the final response follows
    this.statusCode = statusCode
    this.headers = undiciUtil.parseHeaders(rawHeaders)
    this.resumeFn = resume
    this.body = new ResponseBody(this)
    if (statusCode === 502 || statusCode === 503 || statusCode === 504) this.health.recordFailure(this.target, statusCode)
    else this.health.recordSuccess(this.target)
    this.settle()
    return true
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk)
  }

  onComplete(): void {
    this.finish()
    this.body!.push(null)
  }

  onError(err: Error): void {
    this.finish()
    const code = (err as NodeJS.ErrnoException).code
    const reason = this.localReason ?? this.classify(err)
    if (isTargetFault(reason)) this.health.recordFailure(this.target, reason)
    if (this.body !== undefined) {
      if (!this.body.destroyed) this.body.destroy(err)
      return
    }
    if (this.isSettled) return
    this.isRetryable = this.isSafeToRetry(reason)
    this.fail(reason, code ?? err.name)
  }

  // ---- driven by the body and the idle timer ----

  /** The consumer wants more: let undici read again (no-op unless paused). */
  resumeUpstream(): void {
    this.resumeFn?.()
  }

  /** The body was destroyed: stop the upstream request unless it already completed. */
  abortUpstream(): void {
    if (this.isFinished) return
    this.localReason ??= 'client_closed'
    this.abortFn?.()
  }

  /**
   * No request-body progress for idleTimeoutMs. If the body has data waiting,
   * the upstream is not reading it (upstream_timeout); if not, the client
   * stopped sending (request_timeout, not the target's fault).
   */
  requestBodyIdle(): void {
    this.idleTimer = undefined
    const body = this.req.body
    this.localReason ??= body !== null && body.readableLength > 0 ? 'upstream_timeout' : 'request_timeout'
    this.abortFn?.()
  }

  // ---- internals ----

  private classify(err: Error): Reason {
    // The client left: its stream errors tell nothing about the target.
    if (this.req.signal.aborted) return 'client_closed'
    const known = reasonForError(err)
    if (known !== undefined) return known
    // An unknown error that the request body carries came from the client side (e.g. a body limit).
    const body = this.req.body
    if (body !== null && body.errored === err) return 'bad_request'
    return this.isSent ? 'upstream_reset' : 'upstream_connect_failed'
  }

  /**
   * Connect-phase failures: the request never left, so any method may go
   * again if its body is untouched. After sending: only a reset, only for an
   * idempotent method without a body. Never once headers arrived (this runs
   * only before).
   */
  private isSafeToRetry(reason: Reason): boolean {
    const body = this.req.body
    if (!this.isSent && isConnectPhase(reason)) {
      return body === null || (!body.destroyed && !body.readableDidRead && body.readableFlowing !== true)
    }
    return this.isSent && reason === 'upstream_reset' && body === null && isIdempotent(this.req.method)
  }

  private fail(reason: Reason, detail: string): void {
    this.reason = reason
    this.detail = detail
    this.settle()
  }

  private settle(): void {
    if (this.isSettled) return
    this.isSettled = true
    this.resolveRun?.()
  }

  private finish(): void {
    if (this.isFinished) return
    this.isFinished = true
    this.target.inflight -= 1
    this.clearIdleTimer()
    this.req.signal.removeEventListener('abort', this)
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer)
      this.idleTimer = undefined
    }
  }
}
