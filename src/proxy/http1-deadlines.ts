/**
 * Header and request deadlines for HTTP/1.1 connections, the slowloris guard.
 *
 * Why our own: Node 20's HTTP/2 server with `allowHTTP1` hands HTTP/1.1
 * clients to the HTTP/1 parser but never sweeps them for `headersTimeout` or
 * `requestTimeout` (verified: a client trickling one header line every 200 ms
 * held a socket open indefinitely, where `https.createServer` closed it after
 * headersTimeout). So the listener tracks an absolute deadline per socket and
 * one interval sweeps them, as Node's own connection checker does: no timer
 * per request, only a property write.
 *
 * Phases of a connection:
 *   headers  — waiting for a request head; deadline = headersTimeout (plus
 *              keepAliveTimeout between requests). Expiry: raw 408, close.
 *   body     — head received, body still arriving; deadline = requestTimeout.
 *              Expiry: the request is marked and its exchange told to stop
 *              reading (onBodyTimeout), so it answers 408 (see isTimedOut);
 *              the connection closes if a response already started.
 *   response — request complete; the route's upstream timeouts govern.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Denial } from '../shared/reasons.js'
import { sendRawDenial } from './raw-reply.js'

const kDeadline = Symbol('portcullis.deadline')
const kPhase = Symbol('portcullis.phase')
const kResponse = Symbol('portcullis.response')
const kRequest = Symbol('portcullis.request')
const kTimedOut = Symbol('portcullis.timedOut')
const kOnTimeout = Symbol('portcullis.onTimeout')

type Phase = 'headers' | 'body' | 'response'
type Tracked = TLSSocket & {
  [kDeadline]?: number
  [kPhase]?: Phase
  [kResponse]?: ServerResponse
  [kRequest]?: IncomingMessage
}

type Marked = { [kTimedOut]?: boolean; [kOnTimeout]?: () => void }

/** True when the request's body did not arrive within requestTimeout (the exchange should answer 408). */
export function isTimedOut(req: object): boolean {
  return (req as Marked)[kTimedOut] === true
}

/**
 * Registers how the exchange in flight stops reading a body that missed its
 * deadline (e.g. by failing its body pipe), so it can still answer 408.
 * Destroying the request itself would destroy the socket with it.
 */
export function onBodyTimeout(req: object, stop: () => void): void {
  ;(req as Marked)[kOnTimeout] = stop
}

export interface DeadlineLimits {
  readonly headersTimeout: number
  readonly requestTimeout: number
  readonly keepAliveTimeout: number
}

/** Tracks HTTP/1.1 sockets of one listener and closes the ones past their deadline. */
export class Http1Deadlines {
  private readonly sockets = new Set<Tracked>()
  private timer: NodeJS.Timeout | undefined

  /**
   * @param limits read at each event, so a reload's new limits apply to the next phase
   * @param onExpired told of each expiry (for the access log)
   */
  constructor(
    private readonly limits: () => DeadlineLimits,
    private readonly onExpired: (socket: TLSSocket, denial: Denial) => void,
  ) {}

  /** Begins sweeping; the interval is a quarter of the header timeout, within 100 ms..1 s. */
  start(): void {
    const every = Math.min(1000, Math.max(100, Math.floor(this.limits().headersTimeout / 4)))
    this.timer = setInterval(() => this.sweep(performance.now()), every)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.sockets.clear()
  }

  /** A new HTTP/1.1 connection: its first request head is due within headersTimeout. */
  track(socket: TLSSocket): void {
    const s = socket as Tracked
    s[kPhase] = 'headers'
    s[kDeadline] = performance.now() + this.limits().headersTimeout
    this.sockets.add(s)
    socket.once('close', () => this.sockets.delete(s))
  }

  /** A request head arrived: the body is due within requestTimeout, then the next head after the response. */
  onRequest(req: IncomingMessage, res: ServerResponse): void {
    const s = req.socket as Tracked
    if (!this.sockets.has(s)) return
    const limits = this.limits()
    s[kResponse] = res
    s[kRequest] = req
    if (req.complete) {
      s[kPhase] = 'response'
      s[kDeadline] = Infinity
    } else {
      s[kPhase] = 'body'
      s[kDeadline] = performance.now() + limits.requestTimeout
      req.once('end', () => {
        if (s[kResponse] === res && s[kPhase] === 'body') {
          s[kPhase] = 'response'
          s[kDeadline] = Infinity
        }
      })
    }
    res.once('finish', () => {
      if (s[kResponse] !== res) return
      s[kResponse] = undefined
      s[kRequest] = undefined
      s[kPhase] = 'headers'
      const next = this.limits()
      s[kDeadline] = performance.now() + next.keepAliveTimeout + next.headersTimeout
    })
  }

  private sweep(now: number): void {
    for (const s of this.sockets) {
      if ((s[kDeadline] ?? Infinity) > now) continue
      const denial: Denial = { reason: 'request_timeout', detail: `${s[kPhase]} not received in time` }
      this.sockets.delete(s)
      this.onExpired(s, denial)
      const req = s[kRequest]
      if (s[kPhase] === 'body' && req && !s[kResponse]?.headersSent) {
        // The exchange in flight sees its body fail and answers 408, which closes the connection.
        const marked = req as Marked
        marked[kTimedOut] = true
        if (marked[kOnTimeout]) marked[kOnTimeout]()
        else s.destroy()
      } else if (s[kPhase] === 'headers') {
        sendRawDenial(s, denial)
      } else {
        s.destroy()
      }
    }
  }
}
