/**
 * A recording upstream on 127.0.0.1 port 0: plain HTTP, or HTTPS with an
 * optional client-certificate requirement. It answers JSON describing what it
 * received, so tests can check what the gateway forwarded, and keeps every
 * request for assertions (including that a refused request never arrived).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
  /** Subject of the client certificate, for HTTPS upstreams with requestCert. */
  readonly peerSubject: string | undefined
}

export interface TestUpstream {
  readonly url: string
  readonly port: number
  readonly requests: RecordedRequest[]
  close(): Promise<void>
}

export interface UpstreamOptions {
  /** HTTPS with these files; `ca` + requireClientCert to demand mTLS. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string; readonly requireClientCert?: boolean }
  /** Custom answer; default: 200 JSON echo. */
  readonly handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void
  /** Do not buffer bodies (streaming tests); recorded body stays empty. */
  readonly isStreaming?: boolean
}

/** Starts the upstream. */
export async function startUpstream(opts: UpstreamOptions = {}): Promise<TestUpstream> {
  const requests: RecordedRequest[] = []
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    const socket = req.socket as IncomingMessage['socket'] & { getPeerCertificate?: () => { subject?: { CN?: string } } }
    const done = () => {
      const body = Buffer.concat(chunks)
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
        peerSubject: socket.getPeerCertificate?.()?.subject?.CN,
      })
      if (opts.handler) return opts.handler(req, res, body)
      const answer = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyLength: body.length })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) })
      res.end(answer)
    }
    if (opts.isStreaming && opts.handler) {
      done()
      return
    }
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', done)
  }
  let server: Server
  if (opts.tls) {
    server = createHttpsServer(
      {
        cert: readFileSync(opts.tls.cert),
        key: readFileSync(opts.tls.key),
        ca: opts.tls.ca ? readFileSync(opts.tls.ca) : undefined,
        requestCert: opts.tls.requireClientCert ?? false,
        rejectUnauthorized: opts.tls.requireClientCert ?? false,
      },
      onRequest,
    )
  } else {
    server = createHttpServer(onRequest)
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
