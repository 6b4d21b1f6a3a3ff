/**
 * A test client for the gateway: HTTPS over HTTP/1.1 (node:https, no pooling)
 * or HTTP/2 (node:http2), with an optional client certificate.
 */
import { readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect as http2Connect } from 'node:http2'
import type { IncomingHttpHeaders } from 'node:http'

export interface ClientOptions {
  readonly port: number
  readonly path?: string
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string | Buffer
  /** Trust anchor for the gateway's server certificate. */
  readonly ca: string
  /** Client certificate (chain file) and key. */
  readonly cert?: string
  readonly key?: string
  /** SNI; default: localhost. */
  readonly servername?: string
  readonly http2?: boolean
}

export interface ClientResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
  json(): Record<string, unknown>
}

function respond(status: number, headers: IncomingHttpHeaders, chunks: Buffer[]): ClientResponse {
  const body = Buffer.concat(chunks).toString('utf8')
  return { status, headers, body, json: () => JSON.parse(body) as Record<string, unknown> }
}

/** Sends one request on a fresh connection. Rejects when the connection fails (e.g. refused handshake). */
export function send(opts: ClientOptions): Promise<ClientResponse> {
  const tls = {
    ca: readFileSync(opts.ca),
    cert: opts.cert ? readFileSync(opts.cert) : undefined,
    key: opts.key ? readFileSync(opts.key) : undefined,
    servername: opts.servername ?? 'localhost',
  }
  if (opts.http2) {
    return new Promise((resolve, reject) => {
      const session = http2Connect(`https://localhost:${opts.port}`, { ...tls, host: '127.0.0.1' })
      session.on('error', reject)
      const stream = session.request({ ':method': opts.method ?? 'GET', ':path': opts.path ?? '/', ...opts.headers })
      const chunks: Buffer[] = []
      let status = 0
      let headers: IncomingHttpHeaders = {}
      stream.on('response', (h) => {
        status = Number(h[':status'])
        headers = h as IncomingHttpHeaders
      })
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        session.close()
        // A stream that ends without response headers (reset, GOAWAY, closed
        // connection) got no answer: that is a failure, not "status 0".
        if (status === 0) reject(Object.assign(new Error('stream ended without a response'), { code: 'ERR_NO_RESPONSE' }))
        else resolve(respond(status, headers, chunks))
      })
      stream.on('error', (err) => {
        session.destroy()
        reject(err)
      })
      stream.end(opts.body)
    })
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        ...tls,
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: { host: `${opts.servername ?? 'localhost'}:${opts.port}`, ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve(respond(res.statusCode ?? 0, res.headers, chunks)))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** What a client saw: a response, or a connection or stream that failed without one. */
export type Outcome = { readonly kind: 'response'; readonly res: ClientResponse } | { readonly kind: 'closed'; readonly code: string }

/**
 * One request reduced to what the client saw. A client that neither gets an
 * answer nor sees the connection fail within `ms` fails the test: a refused
 * caller must not be left hanging.
 */
export async function attempt(opts: ClientOptions, ms = 5000): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no response and no close within ${ms}ms`)), ms)
  })
  try {
    return { kind: 'response', res: await Promise.race([send(opts), timeout]) }
  } catch (err) {
    if ((err as Error).message.startsWith('no response and no close')) throw err
    return { kind: 'closed', code: (err as NodeJS.ErrnoException).code ?? (err as Error).message }
  } finally {
    clearTimeout(timer)
  }
}

/** Polls until `check` holds or `ms` passes; returns whether it held. */
export async function waitFor(check: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 10))
  }
  return true
}
