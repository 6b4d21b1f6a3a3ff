/**
 * The request id: one value in the access log, the problem+json answer, the
 * upstream request (X-Request-Id) and the response, so one request can be
 * followed across services.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'

/** Longest incoming id we keep. */
const MAX_LENGTH = 128

/** [A-Za-z0-9._:-], indexed by char code. */
const SAFE = new Uint8Array(128)
for (const c of '._:-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ') SAFE[c.charCodeAt(0)] = 1

/** True for 1-128 characters of [A-Za-z0-9._:-]. */
export function isSafeRequestId(id: string): boolean {
  const n = id.length
  if (n === 0 || n > MAX_LENGTH) return false
  for (let i = 0; i < n; i++) {
    const c = id.charCodeAt(i)
    if (c >= 128 || SAFE[c] === 0) return false
  }
  return true
}

/**
 * A caller's X-Request-Id when it is one safe value (so a trace started
 * upstream of us continues), else a new random UUID. The id is for
 * correlation only and grants nothing, so taking it from any client is safe
 * once its alphabet cannot inject into logs or headers. Two X-Request-Id lines
 * arrive joined by ", " and so fail the check. randomUUID draws from a cached
 * entropy pool: tens of nanoseconds, cheaper than anything hand-rolled that is
 * still unguessable.
 */
export function requestIdFrom(req: IncomingMessage | Http2ServerRequest): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && isSafeRequestId(incoming) ? incoming : randomUUID()
}
