/**
 * Downloads a CRL from a distribution point over HTTP(S) with undici.
 *
 * Decisions:
 * - One Agent per fetch, destroyed after it (as ocsp-client does): fetches
 *   are rare (a CRL per CA per refresh), and no keep-alive socket to a
 *   partner's server outlives one.
 * - `timeoutMs` bounds the whole exchange (connect, headers, body, every
 *   redirect). `maxBytes` caps the body: a declared Content-Length above it
 *   is refused before reading, and an undeclared body is cut off there.
 * - Up to 3 redirects, to http: or https: only: CDNs move CRLs around, but a
 *   redirect must not turn a CRL fetch into a request for another scheme.
 * - HTTPS distribution points are verified against Node's CA store. Plain
 *   HTTP is the norm for CRLs (RFC 5280 §4.2.1.13): the CRL is signed, and
 *   its signature, not the transport, is what we trust.
 */
import { Agent, request } from 'undici'

/** Why a fetch failed; `message` is the operator-facing cause ("unreachable: timed out"). */
export class CrlFetchError extends Error {
  override readonly name = 'CrlFetchError'
}

/** Limits of one fetch. */
export interface CrlFetchLimits {
  readonly timeoutMs: number
  readonly maxBytes: number
}

const maxRedirects = 3

function describe(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out'
  if (e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') return 'timed out'
  return e.code ?? e.message ?? String(err)
}

/**
 * The body, copied chunk by chunk into one buffer of the declared length
 * (a multi-MB CRL is then never held twice, nor concatenated in one go on
 * the event loop); bodies without a length are gathered and joined.
 */
async function readBody(body: AsyncIterable<Buffer>, declared: number, maxBytes: number): Promise<Uint8Array> {
  const out = declared > 0 ? new Uint8Array(declared) : undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    if (size + chunk.length > (out ? declared : maxBytes)) {
      throw new CrlFetchError(out ? `body longer than its Content-Length ${declared}` : `more than maxCrlSize ${maxBytes} bytes`)
    }
    if (out) out.set(chunk, size)
    else chunks.push(chunk)
    size += chunk.length
  }
  if (out && size !== declared) throw new CrlFetchError(`body shorter than its Content-Length ${declared}`)
  return out ?? new Uint8Array(Buffer.concat(chunks, size))
}

/** The CRL bytes at `url` (PEM or DER; crl-der.ts tells). Rejects with CrlFetchError. */
export async function fetchCrl(url: string, limits: CrlFetchLimits): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(limits.timeoutMs)
  const agent = new Agent({
    connect: { timeout: limits.timeoutMs },
    headersTimeout: limits.timeoutMs,
    bodyTimeout: limits.timeoutMs,
    maxResponseSize: limits.maxBytes,
  })
  try {
    let target = url
    for (let hop = 0; ; hop++) {
      if (!/^https?:$/i.test(new URL(target).protocol)) throw new CrlFetchError(`${target} is not an http(s) URL`)
      const res = await request(target, { method: 'GET', headers: { accept: 'application/pkix-crl' }, dispatcher: agent, signal }).catch((cause: unknown) => {
        throw new CrlFetchError(`unreachable: ${describe(cause)}`, { cause })
      })
      if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location !== undefined) {
        res.body.resume()
        if (hop >= maxRedirects) throw new CrlFetchError(`more than ${maxRedirects} redirects`)
        const location = String(res.headers.location)
        const next = new URL(location, target)
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new CrlFetchError(`redirect to ${next.protocol} not followed`)
        target = next.href
        continue
      }
      if (res.statusCode !== 200) {
        res.body.resume()
        throw new CrlFetchError(`HTTP ${res.statusCode}`)
      }
      const declared = Number(res.headers['content-length'] ?? 0)
      if (declared > limits.maxBytes) {
        res.body.destroy()
        throw new CrlFetchError(`${declared} bytes, more than maxCrlSize ${limits.maxBytes}`)
      }
      try {
        return await readBody(res.body, declared, limits.maxBytes)
      } catch (cause) {
        if (cause instanceof CrlFetchError) throw cause
        if ((cause as { code?: string }).code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') throw new CrlFetchError(`more than maxCrlSize ${limits.maxBytes} bytes`, { cause })
        throw new CrlFetchError(`unreachable: ${describe(cause)}`, { cause })
      }
    }
  } catch (err) {
    if (err instanceof CrlFetchError) throw err
    throw new CrlFetchError(`unreachable: ${describe(err)}`, { cause: err })
  } finally {
    void agent.destroy().catch(() => undefined)
  }
}
