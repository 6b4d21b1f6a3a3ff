/**
 * The floor: the simplest Node proxy a team would write instead of
 * Portcullis. `https.createServer` with `requestCert` and
 * `rejectUnauthorized: true` (OpenSSL alone checks the client certificate),
 * and an undici Pool per upstream; headers are copied as they come, minus
 * what undici refuses. No identity, routing table, IP filter, header hygiene
 * or access log: it checks nothing beyond the handshake, so Portcullis should
 * cost no more CPU per request than this does.
 *
 * HTTP/2 is served on a separate port by `http2.createSecureServer` with the
 * same handler (Node's compatibility API), so the HTTP/2 scenario has a floor
 * too. Run as its own process: `node naive-proxy.js <config.json>`.
 */
import { readFileSync } from 'node:fs'
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import { Pool } from 'undici'

/** What the bench passes in the JSON file. */
export interface NaiveProxyConfig {
  readonly listeners: readonly { readonly port: number; readonly cert: string; readonly key: string; readonly ca: string; readonly http2: boolean }[]
  readonly upstreamUrl: string
  readonly sinkUrl: string
  readonly uploadPath: string
}

const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'host', 'http2-settings'])

function main(config: NaiveProxyConfig): void {
  const upstream = new Pool(config.upstreamUrl, { connections: 128 })
  const sink = new Pool(config.sinkUrl, { connections: 8 })

  const handle = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && name[0] !== ':' && !hopByHop.has(name)) headers[name] = value
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
    const pool = req.url === config.uploadPath ? sink : upstream
    pool
      .request({ path: req.url ?? '/', method: req.method as 'GET', headers, body: hasBody ? req : null })
      .then(({ statusCode, headers: upHeaders, body }) => {
        const out: Record<string, string | string[]> = {}
        for (const [name, value] of Object.entries(upHeaders)) if ((typeof value === 'string' || Array.isArray(value)) && !hopByHop.has(name)) out[name] = value
        res.writeHead(statusCode, out)
        body.pipe(res as NodeJS.WritableStream)
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502)
        res.end()
      })
  }

  for (const l of config.listeners) {
    const tls = { cert: readFileSync(l.cert), key: readFileSync(l.key), ca: readFileSync(l.ca), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' as const }
    const server = l.http2 ? createSecureServer({ ...tls, allowHTTP1: true }, handle) : createServer({ ...tls, keepAliveTimeout: 60_000 }, handle)
    server.listen(l.port, '127.0.0.1')
  }
}

main(JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as NaiveProxyConfig)
