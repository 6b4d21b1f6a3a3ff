/**
 * The plain-HTTP endpoint Prometheus scrapes: `GET /metrics` in the text
 * exposition format, nothing else. It binds 127.0.0.1 by default: metrics name
 * partners, certificates and upstreams, so exposing them is a decision the
 * operator makes (`metrics.host`), not a default. Plain HTTP, because a
 * scraper on the same host or a private network is the common case; put it
 * behind a listener of its own if it must cross a network.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Socket limits: a scrape is one small GET. */
const HTTP_TIMEOUT_MS = 5000

/** What is served: a prom-client Registry, or (cluster mode) the merge of every process's. */
export interface MetricsSource {
  readonly contentType: string
  metrics(): Promise<string>
}

/** A running endpoint. */
export interface MetricsServer {
  readonly port: number
  close(): Promise<void>
}

/** Starts serving `registry` at `path` on host:port; rejects with the listen error (e.g. EADDRINUSE). */
export async function startMetricsServer(registry: MetricsSource, opts: { readonly host: string; readonly port: number; readonly path: string }): Promise<MetricsServer> {
  const server: Server = createServer({ requestTimeout: HTTP_TIMEOUT_MS, headersTimeout: HTTP_TIMEOUT_MS, keepAliveTimeout: HTTP_TIMEOUT_MS }, (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0]
    res.setHeader('Cache-Control', 'no-store')
    if (path !== opts.path) {
      res.writeHead(404, { 'Content-Length': 0 }).end()
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 }).end()
      return
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text) })
        res.end(req.method === 'HEAD' ? undefined : text)
      },
      () => res.writeHead(500, { 'Content-Length': 0 }).end(),
    )
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(opts.port, opts.host, () => {
      server.off('error', fail)
      ok()
    })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      }),
  }
}
