/**
 * Renders a Denial as the client sees it (Envoy's "local reply"): an RFC 9457
 * problem+json body naming the stable reason code and the request id, so a
 * caller can quote the id to an operator who finds the access-log line with
 * the detail. The detail itself is never sent: it may name identities,
 * addresses and rules an attacker should not learn.
 */
import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { reasons, type Denial, type Reason } from '../shared/reasons.js'

/**
 * The problem `type` URI for a reason: `urn:portcullis:error:<reason>`. A URN,
 * not a URL: it is stable whatever host the docs live on, and RFC 9457 §3.1.1
 * asks consumers not to dereference `type` anyway. docs/errors.md has one
 * section per reason, headed with the reason code. raw-reply.ts uses the same
 * form.
 */
export function problemType(reason: Reason): string {
  return `urn:portcullis:error:${reason}`
}

/**
 * Reasons after which an HTTP/1.1 connection cannot be trusted to be in sync
 * (the request was not, or not completely, read): the reply closes it.
 */
const FRAMING: ReadonlySet<Reason> = new Set<Reason>(['bad_request', 'payload_too_large', 'request_timeout'])

/** Body text up to the request id, per reason, built once at load (floods hit this path). */
const PREFIX = new Map<Reason, string>(
  (Object.keys(reasons) as Reason[]).map((reason) => {
    const { status, title } = reasons[reason]
    const head = JSON.stringify({ type: problemType(reason), title, status, reason })
    return [reason, `${head.slice(0, -1)},"requestId":`]
  }),
)

/** Header names we own; a denial's extra headers cannot replace them. */
const OWN = new Set(['content-type', 'content-length', 'cache-control', 'x-request-id', 'x-content-type-options', 'connection'])
/** A request id is echoed in a header only if it is a plain visible-ASCII token. */
const SAFE_ID = /^[\x21-\x7e]{1,200}$/

/**
 * Answers `res` with the denial: status from the reason table; body
 * `{ type, title, status, reason, requestId }` as `application/problem+json`;
 * headers `cache-control: no-store` (a denial depends on who asked),
 * `x-request-id`, `x-content-type-options: nosniff`, plus `denial.headers`
 * (Allow, Retry-After...), which cannot override those.
 *
 * On HTTP/1.1 the connection is closed (`connection: close`) after a framing
 * reason, when the denial's headers ask for it, and whenever the request
 * announced a body that was not read: otherwise Node would read and discard that whole body, of any size, to
 * reuse the connection — unbounded work for a request we refused. HTTP/2
 * needs neither (the stream ends alone; connection headers are forbidden).
 *
 * If the response already started (headers sent), no well-formed answer is
 * possible: the stream is destroyed (HTTP/1.1: the connection; HTTP/2: a
 * RST_STREAM) so the client sees a failure, not a truncated success. A
 * response that already finished or was destroyed is left alone.
 */
export function sendDenial(res: ServerResponse | Http2ServerResponse, denial: Denial, requestId: string): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy()
    return
  }
  if (res.destroyed || res.writableEnded) return
  const { reason } = denial
  const body = PREFIX.get(reason)! + JSON.stringify(requestId) + '}'
  const headers: Record<string, string> = {}
  if (denial.headers) {
    for (const [name, value] of Object.entries(denial.headers)) if (!OWN.has(name.toLowerCase())) headers[name] = value
  }
  headers['content-type'] = 'application/problem+json'
  headers['content-length'] = String(Buffer.byteLength(body))
  headers['cache-control'] = 'no-store'
  headers['x-content-type-options'] = 'nosniff'
  if (SAFE_ID.test(requestId)) headers['x-request-id'] = requestId
  if (!('stream' in res) && (FRAMING.has(reason) || asksToClose(denial) || hasUnreadBody(res))) headers['connection'] = 'close'
  res.writeHead(reasons[reason].status, headers)
  res.end(body)
}

/** The denial itself asks for `connection: close` (honoured on HTTP/1.1 only; HTTP/2 forbids the header). */
function asksToClose(denial: Denial): boolean {
  if (!denial.headers) return false
  for (const [name, value] of Object.entries(denial.headers)) if (name.toLowerCase() === 'connection' && value.toLowerCase() === 'close') return true
  return false
}

/** The HTTP/1.1 request announced a body (length > 0 or chunked) that has not been read to its end. */
function hasUnreadBody(res: ServerResponse): boolean {
  const req = res.req
  if (!req || req.readableEnded) return false
  const length = req.headers['content-length']
  if (length !== undefined) return length !== '0'
  return req.headers['transfer-encoding'] !== undefined
}
