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
 *
 * `format: 'pem'` serves the same CRL PEM-armoured (`application/x-pem-file`)
 * for tools and operators that want text (`curl … | openssl crl -noout
 * -text`); relying parties use the DER URL written into certificates.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { PemConverter } from '@peculiar/x509'

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
  /** Body encoding; default 'der'. */
  readonly format?: 'der' | 'pem'
}

/** Returns a node:http listener serving `current()` at `options.path`. */
export function createCrlHttpHandler(current: () => PublishedCrl | undefined, options: CrlHttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const isPem = options.format === 'pem'
  // Per published CRL: the body in the served format and its ETag, computed once.
  const bodies = new WeakMap<Buffer, { readonly body: Buffer; readonly etag: string }>()
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
    let served = bodies.get(crl.der)
    if (served === undefined) {
      const body = isPem ? Buffer.from(`${PemConverter.encode(new Uint8Array(crl.der), 'X509 CRL')}\n`) : crl.der
      served = { body, etag: `"${createHash('sha256').update(body).digest('hex')}"` }
      bodies.set(crl.der, served)
    }
    const { body, etag } = served
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate - options.now()) / 1000))
    res.setHeader('Cache-Control', `max-age=${maxAge}, public, no-transform, must-revalidate`)
    res.setHeader('ETag', etag)
    res.setHeader('Last-Modified', new Date(crl.thisUpdate).toUTCString())
    res.setHeader('Expires', new Date(crl.nextUpdate).toUTCString())
    if (req.headers['if-none-match'] === etag) return empty(res, 304)
    res.statusCode = 200
    res.setHeader('Content-Type', isPem ? 'application/x-pem-file' : 'application/pkix-crl')
    res.setHeader('Content-Length', body.length)
    res.end(req.method === 'HEAD' ? undefined : body)
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
