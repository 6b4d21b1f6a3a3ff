/**
 * HTTP transport for the OCSP responder (RFC 6960 Appendix A, RFC 5019 §5-6):
 *
 * - `GET <prefix><url-encoded base64 of the DER request>`; the standard and
 *   the URL-safe base64 alphabets are both accepted, because clients and
 *   proxies disagree on escaping '+' and '/'. A query string is ignored.
 * - `POST <prefix>` with `Content-Type: application/ocsp-request` and a body
 *   of at most `maxBodyBytes` (64 KiB default; a real request is a few hundred
 *   bytes, and a larger limit only helps a flood). Content-Length beyond the
 *   limit is refused before reading.
 *
 * HTTP-level faults get plain HTTP statuses (405 with Allow, 413, 415, 404
 * outside the prefix): they come from clients that are not speaking OCSP at
 * all. Anything that reached the OCSP layer — including undecodable base64 —
 * is answered 200 with an OCSPResponse, `malformedRequest` if need be, as
 * OCSP clients expect.
 *
 * Caching (RFC 5019 §6.2): a response without nonce whose every status is
 * good or revoked gets `Cache-Control: max-age=<seconds to nextUpdate>,
 * public, no-transform, must-revalidate`, Last-Modified, Expires and an ETag,
 * so CDNs can absorb GET traffic. Everything else is `no-store`: a nonce
 * response is one client's, `unknown` may change as soon as storage catches
 * up, and error statuses must not stick in caches.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { OcspAnswer, OcspResponder } from './ocsp-responder.js'

/** Options for {@link createOcspHttpHandler}. */
export interface OcspHttpOptions {
  /** Path the responder is mounted at, ending in '/'. Default '/'. */
  readonly pathPrefix?: string
  /** Largest accepted POST body (and decoded GET request), bytes. Default 65536. */
  readonly maxBodyBytes?: number
}

/** A node:http request listener; never throws. */
export type OcspHttpHandler = (req: IncomingMessage, res: ServerResponse) => void

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

/** Wraps `responder` in the HTTP binding described in the module doc. */
export function createOcspHttpHandler(responder: OcspResponder, options: OcspHttpOptions = {}): OcspHttpHandler {
  const prefix = options.pathPrefix ?? '/'
  if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error("pathPrefix must start and end with '/'")
  const maxBodyBytes = options.maxBodyBytes ?? 65_536

  const answer = (res: ServerResponse, der: Uint8Array): void => {
    responder(der).then(
      (a) => send(res, a),
      () => plain(res, 500), // unreachable: the responder never rejects
    )
  }

  return (req, res) => {
    const url = req.url ?? ''
    const path = url.split('?', 1)[0] ?? ''
    if (!path.startsWith(prefix) && `${path}/` !== prefix) return plain(res, 404)

    if (req.method === 'GET') {
      const der = decodeGetPath(path.slice(prefix.length), maxBodyBytes)
      return answer(res, der ?? new Uint8Array(0)) // empty → malformedRequest
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'GET, POST')
      return plain(res, 405)
    }
    if (path !== prefix && `${path}/` !== prefix) return plain(res, 404)
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase()
    if (type !== 'application/ocsp-request') return plain(res, 415)
    const declared = Number(req.headers['content-length'] ?? '0')
    if (declared > maxBodyBytes) return plain(res, 413, true)

    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return
      size += chunk.length
      if (size > maxBodyBytes) {
        tooLarge = true
        plain(res, 413, true)
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (!tooLarge) answer(res, Buffer.concat(chunks))
    })
    req.on('error', () => res.destroy())
  }
}

/** URL-decodes and base64-decodes a GET path; undefined when it is not a request encoding. */
function decodeGetPath(encoded: string, maxBytes: number): Uint8Array | undefined {
  if (encoded.length === 0 || encoded.length > Math.ceil((maxBytes * 4) / 3) * 3 + 4) return undefined
  let b64: string
  try {
    b64 = decodeURIComponent(encoded)
  } catch {
    return undefined
  }
  if (!BASE64.test(b64)) return undefined
  const der = Buffer.from(b64.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  return der.length > 0 && der.length <= maxBytes ? der : undefined
}

function send(res: ServerResponse, a: OcspAnswer): void {
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/ocsp-response')
  res.setHeader('Content-Length', a.der.length)
  if (a.isCacheable && a.producedAt !== undefined && a.nextUpdate !== undefined) {
    const maxAge = Math.max(0, Math.floor((a.nextUpdate - a.producedAt) / 1000))
    res.setHeader('Cache-Control', `max-age=${maxAge}, public, no-transform, must-revalidate`)
    res.setHeader('Last-Modified', new Date(a.producedAt).toUTCString())
    res.setHeader('Expires', new Date(a.nextUpdate).toUTCString())
    res.setHeader('ETag', `"${createHash('sha256').update(a.der).digest('hex')}"`)
  } else {
    res.setHeader('Cache-Control', 'no-store')
  }
  res.end(a.der)
}

/** An empty-bodied HTTP error; `close` ends the connection instead of draining an unwanted body. */
function plain(res: ServerResponse, status: number, close = false): void {
  if (res.headersSent) return
  res.statusCode = status
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('Content-Length', 0)
  if (close) res.setHeader('Connection', 'close')
  res.end()
}
