/**
 * Serves the current CRL over HTTP for the CRL distribution point URL in the
 * certificates we issue (RFC 5280 §4.2.1.13: DER, `application/pkix-crl`).
 *
 * The handler only reads: the publisher swaps in a new CRL (via the getter)
 * after each rebuild, so a request never waits for signing. Caches may keep
 * the CRL until its nextUpdate (`max-age`), but `must-revalidate` plus the
 * ETag make a revalidation cheap (304), which matters after a revocation:
 * RFC 5019-style caching would otherwise hide a new CRL until expiry.
 * No CRL yet (first build pending or failed) is 503 with Retry-After, never
 * an empty or stale body.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** The CRL being served, with its window (ms since the epoch). */
export interface PublishedCrl {
  readonly der: Buffer
  readonly thisUpdate: number
  readonly nextUpdate: number
}

/** Options for {@link createCrlHttpHandler}. */
export interface CrlHttpOptions {
  /** Exact path served, e.g. "/crl/issuing.crl". */
  readonly path: string
  /** Supplies "now" for max-age; usually the process Clock's `now`. */
  readonly now: () => number
}

/** Returns a node:http listener serving `current()` at `options.path`. */
export function createCrlHttpHandler(current: () => PublishedCrl | undefined, options: CrlHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const etags = new WeakMap<Buffer, string>()
  return (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0]
    if (path !== options.path) return empty(res, 404)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return empty(res, 405)
    }
    const crl = current()
    if (crl === undefined) {
      res.setHeader('Retry-After', '10')
      return empty(res, 503)
    }
    let etag = etags.get(crl.der)
    if (etag === undefined) {
      etag = `"${createHash('sha256').update(crl.der).digest('hex')}"`
      etags.set(crl.der, etag)
    }
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate - options.now()) / 1000))
    res.setHeader('Cache-Control', `max-age=${maxAge}, public, no-transform, must-revalidate`)
    res.setHeader('ETag', etag)
    res.setHeader('Last-Modified', new Date(crl.thisUpdate).toUTCString())
    res.setHeader('Expires', new Date(crl.nextUpdate).toUTCString())
    if (req.headers['if-none-match'] === etag) return empty(res, 304)
    res.statusCode = 200
    res.setHeader('Content-Type', 'application/pkix-crl')
    res.setHeader('Content-Length', crl.der.length)
    res.end(req.method === 'HEAD' ? undefined : crl.der)
  }
}

function empty(res: ServerResponse, status: number): void {
  res.statusCode = status
  if (status !== 304) {
    res.setHeader('Cache-Control', 'no-store')
    res.setHeader('Content-Length', 0)
  }
  res.end()
}
