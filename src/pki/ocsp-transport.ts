/**
 * The HTTP half of the OCSP client (RFC 6960 Appendix A.1, POST).
 *
 * Decisions:
 * - Each query has its own undici Agent, closed after it: one connection, no
 *   keep-alive socket left behind (queries are rare: one per certificate
 *   every few hours), a connect/headers/body timeout and an overall deadline
 *   of `timeoutMs`, redirects not followed.
 * - The body is cut off past `MAX_RESPONSE_BYTES`: a real response is a few
 *   KiB, and a responder must not be able to make us buffer megabytes.
 * - Only http: and https: URLs; anything else (ldap:, file:) is refused.
 */
import { Agent, request } from 'undici'
import { OcspError } from './ocsp-error.js'

/** Largest response body read; more is `malformed`. */
export const MAX_RESPONSE_BYTES = 64 * 1024

/** POSTs a DER OCSPRequest to `url` and returns the response body; every failure is an OcspError. */
export async function postOcspRequest(url: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  if (!/^https?:\/\//i.test(url)) throw new OcspError('unreachable', `not an http(s) URL: ${url}`)
  const agent = new Agent({
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    maxResponseSize: MAX_RESPONSE_BYTES,
    pipelining: 0,
  })
  try {
    const res = await request(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
      dispatcher: agent,
      signal: AbortSignal.timeout(timeoutMs),
    }).catch((cause: unknown) => {
      throw new OcspError('unreachable', `${url}: ${describe(cause)}`, { cause })
    })
    if (res.statusCode !== 200) {
      res.body.resume()
      throw new OcspError('http_status', `${url} answered HTTP ${res.statusCode}`)
    }
    const declared = Number(res.headers['content-length'] ?? 0)
    if (declared > MAX_RESPONSE_BYTES) {
      res.body.destroy()
      throw new OcspError('malformed', `${url}: the response is ${declared} bytes; the limit is ${MAX_RESPONSE_BYTES}`)
    }
    try {
      return new Uint8Array(await res.body.arrayBuffer())
    } catch (cause) {
      const code = (cause as { code?: string }).code
      if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') throw new OcspError('malformed', `${url}: the response exceeds ${MAX_RESPONSE_BYTES} bytes`, { cause })
      throw new OcspError('unreachable', `${url}: ${describe(cause)}`, { cause })
    }
  } finally {
    void agent.destroy().catch(() => undefined)
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out'
  return e.code ?? e.message ?? String(err)
}
