/**
 * A small HTTP service for the first-start demo, so `portcullis start` has
 * something to protect without any external service. It answers every request
 * with JSON showing what reached it through the gateway: method, path, query,
 * the request id, forwarding headers and the caller's certificate (RFC 9440
 * `Client-Cert`, parsed with node:crypto). `/healthz` answers `ok`.
 *
 * It is a mirror, not an example of upstream security: it trusts `Client-Cert`
 * because it only shows it, and any local process can reach a loopback port.
 * A real upstream accepts identity headers only from the gateway (mTLS to the
 * upstream, or the signed `Portcullis-Identity` assertion checked against the
 * gateway's JWKS).
 */
import { X509Certificate } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A running example upstream. `close()` ends open keep-alive connections too, so callers never hang. */
export interface ExampleUpstream {
  /** Base URL, e.g. "http://127.0.0.1:41234". */
  readonly url: string
  close(): Promise<void>
}

/** What the upstream reports about the caller's certificate. */
export type ClientCertView =
  | { readonly isPresent: false }
  | { readonly isPresent: true; readonly isParsed: false }
  | {
      readonly isPresent: true
      /** Parsed as a certificate. Not verified here: the gateway did that, and this service only mirrors it. */
      readonly isParsed: true
      readonly subject: string
      readonly issuer: string
      readonly spiffeId?: string
      readonly fingerprint256: string
    }

/** The JSON body of every non-health answer. */
export interface ExampleResponse {
  readonly message: string
  readonly method: string
  readonly path: string
  readonly query: Record<string, string | string[]>
  readonly identity: {
    readonly clientCert: ClientCertView
    /** Whether a `Portcullis-Identity` assertion arrived (shown, not verified). */
    readonly hasIdentityAssertion: boolean
  }
  /** Headers as received, except the certificate headers, which are summarised in `identity`. */
  readonly headers: Record<string, string | string[] | undefined>
}

const certHeaders = new Set(['client-cert', 'client-cert-chain'])

/**
 * Starts the example upstream on `host` (default 127.0.0.1: loopback only, the
 * gateway is its one intended client) and `port` (default 0, a free port).
 */
export async function startExampleUpstream(opts: { host?: string; port?: number } = {}): Promise<ExampleUpstream> {
  const host = opts.host ?? '127.0.0.1'
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, handle)
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject)
      resolvePromise()
    })
  })
  const { address, port } = server.address() as AddressInfo
  const urlHost = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${urlHost}:${port}`,
    close: () =>
      new Promise<void>((resolvePromise, reject) => {
        server.close((err) => (err ? reject(err) : resolvePromise()))
        server.closeAllConnections() // the gateway pools keep-alive connections; close() alone would wait for them
      }),
  }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  req.resume() // the body is not used; drain it so the connection can be reused
  const target = req.url ?? '/'
  const q = target.indexOf('?')
  // Split by hand: `new URL('//host/x', base)` would read a host out of the path.
  const path = q === -1 ? target : target.slice(0, q)
  const queryText = q === -1 ? '' : target.slice(q + 1)

  if (path === '/healthz') {
    send(res, req.method === 'HEAD', 200, 'text/plain; charset=utf-8', 'ok\n')
    return
  }

  const body: ExampleResponse = {
    message: 'Hello from the Portcullis example upstream. This request passed the gateway.',
    method: req.method ?? '',
    path,
    query: parseQuery(queryText),
    identity: {
      clientCert: viewClientCert(req.headers['client-cert']),
      hasIdentityAssertion: req.headers['portcullis-identity'] !== undefined,
    },
    headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !certHeaders.has(k))),
  }
  send(res, req.method === 'HEAD', 200, 'application/json; charset=utf-8', JSON.stringify(body, null, 2) + '\n')
}

function send(res: ServerResponse, isHead: boolean, status: number, type: string, text: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(isHead ? undefined : text)
}

function parseQuery(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null)
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = out[k]
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return out
}

/**
 * RFC 9440: `Client-Cert` is a structured-field byte sequence, `:base64(DER):`.
 * Parsed strictly; anything else is reported as present but not parsed.
 */
export function viewClientCert(value: string | string[] | undefined): ClientCertView {
  if (value === undefined) return { isPresent: false }
  if (typeof value !== 'string') return { isPresent: true, isParsed: false } // repeated header: ambiguous
  const m = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(value.trim())
  if (!m?.[1]) return { isPresent: true, isParsed: false }
  try {
    const cert = new X509Certificate(Buffer.from(m[1], 'base64'))
    const uris = (cert.subjectAltName ?? '')
      .split(', ')
      .filter((s) => s.startsWith('URI:spiffe://'))
      .map((s) => s.slice(4))
    const view: ClientCertView = {
      isPresent: true,
      isParsed: true,
      subject: cert.subject.split('\n').join(','),
      issuer: cert.issuer.split('\n').join(','),
      fingerprint256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
      ...(uris.length === 1 && uris[0] ? { spiffeId: uris[0] } : {}),
    }
    return view
  } catch {
    return { isPresent: true, isParsed: false }
  }
}
