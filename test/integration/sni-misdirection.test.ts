/**
 * SNI and Host must not select different trust, end to end through the real
 * gateway. One server certificate names a.example and b.example (so clients,
 * browsers especially, may reuse one connection for both: RFC 9113 §9.1.1
 * connection coalescing). Two listeners serve it:
 * - `split`: `perServerName` trust — a.example trusts partner CA A only,
 *   b.example partner CA B only. A client verified for a.example that sends
 *   `Host: b.example` would reach b.example's routes without B's trust ever
 *   having vouched for it: it is answered 421 misdirected_request (RFC 9110
 *   §15.5.20, which tells a coalescing client to retry on a new connection);
 * - `shared`: one bundle for both names — the trust is the same, so SNI
 *   a.example with Host b.example is fine and the Host picks the route;
 * - `default-a`: the common shape "listener bundle for everyone, an override
 *   for one partner": a.example uses the listener's bundle (CA A), b.example
 *   has its own (CA B).
 * Host and SNI are compared as the router sees the Host: any case, port
 * removed, and the FQDN form ("b.example.") is the same name as "b.example".
 * Each route has its own recording upstream, so "routed by Host" and
 * "nothing reached an upstream" are observed, not inferred.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2'
import { after, before, describe, test } from 'node:test'
import { reasons } from '../../src/shared/reasons.js'
import { attempt, send, waitFor, type ClientOptions, type ClientResponse } from '../harness/client.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { rawHttp1 } from './raw-clients.js'

let pki: TestPki
let serverRoot: CaFiles
let caA: CaFiles
let caB: CaFiles
let caDefault: CaFiles
let server: CertFiles
let clientA: CertFiles
let clientB: CertFiles
let upA: TestUpstream
let upB: TestUpstream
let gw: TestGateway

function config(): string {
  const certificates = `
      certificates:
        - serverNames: [a.example, b.example]
          cert: { file: ${server.chain} }
          key: { file: ${server.key} }`
  return `
version: 1
listeners:
  - name: split
    port: 0
    tls:${certificates}
      unknownServerName: reject
      clientAuth:
        mode: required
        # Names without their own bundle (none here) would use this CA, which no client holds.
        trustBundle: [{ file: ${caDefault.cert} }]
        perServerName:
          - serverNames: [a.example]
            trustBundle: [{ file: ${caA.cert} }]
          - serverNames: [b.example]
            trustBundle: [{ file: ${caB.cert} }]
  - name: shared
    port: 0
    tls:${certificates}
      unknownServerName: reject
      clientAuth:
        mode: required
        trustBundle: [{ file: ${caA.cert} }, { file: ${caB.cert} }]
  - name: default-a
    port: 0
    tls:${certificates}
      unknownServerName: reject
      clientAuth:
        mode: required
        trustBundle: [{ file: ${caA.cert} }]
        perServerName:
          - serverNames: [b.example]
            trustBundle: [{ file: ${caB.cert} }]
identities: {}
upstreams:
  app-a:
    targets: [{ url: ${upA.url} }]
  app-b:
    targets: [{ url: ${upB.url} }]
routes:
  - name: route-a
    match: { hosts: [a.example] }
    access: { allowAnyClientCert: true }
    upstream: app-a
  - name: route-b
    match: { hosts: [b.example] }
    access: { allowAnyClientCert: true }
    upstream: app-b
`
}

before(async () => {
  pki = new TestPki()
  serverRoot = pki.root('server-root')
  caA = pki.root('partner-a')
  caB = pki.root('partner-b')
  caDefault = pki.root('nobody')
  server = pki.server('gateway', serverRoot, { san: 'DNS:a.example,DNS:b.example' })
  clientA = pki.client('client-a', caA)
  clientB = pki.client('client-b', caB)
  upA = await startUpstream()
  upB = await startUpstream()
  gw = await startGateway({ yaml: config() })
})

after(async () => {
  await gw?.close()
  await upA?.close()
  await upB?.close()
})

/** Request counts of both upstreams, to compare before and after. */
const counts = () => ({ a: upA.requests.length, b: upB.requests.length })

/**
 * Options for the harness client with SNI `sni` and Host `host`. HTTP/1.1
 * takes `host` as the Host header; the harness's HTTP/2 path would send
 * `:authority: localhost:<port>`, so it is set explicitly.
 */
function opts(listener: string, client: CertFiles, sni: string, host: string, http2: boolean): ClientOptions {
  const port = gw.port(listener)
  return {
    port,
    path: '/orders/1',
    ca: serverRoot.cert,
    cert: client.chain,
    key: client.key,
    servername: sni,
    http2,
    headers: http2 ? { ':authority': `${host}:${port}` } : { host: `${host}:${port}` },
  }
}

function assertMisdirected(res: ClientResponse): void {
  assert.equal(res.status, 421)
  assert.equal(reasons.misdirected_request.status, 421)
  assert.equal(res.headers['content-type'], 'application/problem+json')
  assert.equal(res.json().reason, 'misdirected_request')
}

/** The request-log line for a response (by its request id). */
async function requestLine(res: ClientResponse): Promise<LogLine | undefined> {
  const id = res.headers['x-request-id']
  await waitFor(() => gw.logs.some((l) => l.type === 'request' && l.requestId === id))
  return gw.logs.find((l) => l.type === 'request' && l.requestId === id)
}

describe('SNI and Host with per-server-name trust', { timeout: 60_000 }, () => {
  for (const http2 of [false, true]) {
    const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

    test(`admits partner A on a.example and routes to a.example's upstream (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('split', clientA, 'a.example', 'a.example', http2))
      assert.equal(res.status, 200)
      assert.deepEqual(counts(), { a: from.a + 1, b: from.b })
      assert.equal((await requestLine(res))?.route, 'route-a')
    })

    test(`compares Host to SNI without case or port (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('split', clientA, 'a.example', 'A.Example', http2))
      assert.equal(res.status, 200)
      assert.deepEqual(counts(), { a: from.a + 1, b: from.b })
    })

    test(`answers 421 misdirected_request to partner A with SNI a.example and Host b.example (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('split', clientA, 'a.example', 'b.example', http2))
      assertMisdirected(res)
      assert.deepEqual(counts(), from, 'nothing reached either upstream')
      const line = await requestLine(res)
      assert.equal(line?.reason, 'misdirected_request')
      assert.equal(line?.status, 421)
      assert.equal(line?.route, undefined, 'refused before routing')
    })

    test(`answers 421 misdirected_request to partner B with SNI b.example and Host a.example (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('split', clientB, 'b.example', 'a.example', http2))
      assertMisdirected(res)
      assert.deepEqual(counts(), from, 'nothing reached either upstream')
    })

    test(`admits partner B on b.example and routes to b.example's upstream (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('split', clientB, 'b.example', 'b.example', http2))
      assert.equal(res.status, 200)
      assert.deepEqual(counts(), { a: from.a, b: from.b + 1 })
      assert.equal((await requestLine(res))?.route, 'route-b')
    })

    test(`refuses partner A at the handshake when it asks for b.example (${proto})`, async () => {
      const logFrom = gw.logs.length
      const from = counts()
      const out = await attempt(opts('split', clientA, 'b.example', 'b.example', http2))
      assert.equal(out.kind, 'closed', out.kind === 'response' ? `got HTTP ${out.res.status} ${out.res.body}` : '')
      const pick = () => gw.logs.slice(logFrom).filter((l) => l.type === 'handshake' && l.listener === 'split')
      await waitFor(() => pick().length > 0)
      await new Promise((r) => setTimeout(r, 50))
      const lines = pick()
      assert.equal(lines.length, 1, JSON.stringify(lines))
      assert.equal(lines[0]!.reason, 'cert_unknown_ca')
      assert.equal(lines[0]!.sni, 'b.example')
      const detail = String(lines[0]!.detail)
      assert.ok(detail.includes('partner-a') && detail.includes('b.example'), `detail names the issuer and the server name: ${detail}`)
      assert.deepEqual(counts(), from, 'nothing reached either upstream')
    })
  }

  test('answers 421 to the second request of an HTTP/1.1 keep-alive connection when its Host switches to b.example', async () => {
    const from = counts()
    const port = gw.port('split')
    const out = await rawHttp1(
      { port, servername: 'a.example', cert: readFileSync(clientA.chain, 'utf8'), key: readFileSync(clientA.key, 'utf8') },
      `GET /orders/1 HTTP/1.1\r\nHost: a.example:${port}\r\n\r\nGET /orders/2 HTTP/1.1\r\nHost: b.example:${port}\r\nConnection: close\r\n\r\n`,
    )
    assert.deepEqual([...out.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])), [200, 421])
    assert.match(out.text, /"reason":"misdirected_request"/)
    assert.deepEqual(counts(), { a: from.a + 1, b: from.b })
  })

  test('answers 421 to a coalesced HTTP/2 request for b.example on a.example\'s connection, and serves a.example on it', async () => {
    const port = gw.port('split')
    const session = http2Connect(`https://a.example:${port}`, {
      host: '127.0.0.1', servername: 'a.example',
      ca: readFileSync(serverRoot.cert), cert: readFileSync(clientA.chain), key: readFileSync(clientA.key),
    })
    try {
      const from = counts()
      const [onB, onA] = await Promise.all([h2Get(session, `b.example:${port}`), h2Get(session, `a.example:${port}`)])
      assert.equal(onB.status, 421)
      assert.equal(onB.reason, 'misdirected_request')
      assert.equal(onA.status, 200, 'the connection stays usable for its own name')
      assert.deepEqual(counts(), { a: from.a + 1, b: from.b })
    } finally {
      session.destroy()
    }
  })
})

describe('SNI and Host in FQDN form (trailing dot)', { timeout: 60_000 }, () => {
  for (const http2 of [false, true]) {
    const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

    for (const listener of ['split', 'default-a']) {
      test(`answers 421 to partner A with SNI a.example and Host b.example. on ${listener} (${proto})`, async () => {
        const from = counts()
        const out = await attempt(opts(listener, clientA, 'a.example', 'b.example.', http2))
        assert.equal(out.kind, 'response', out.kind === 'closed' ? out.code : '')
        assert.deepEqual(counts(), from, 'nothing reached either upstream')
        assertMisdirected(out.res)
      })
    }

    test(`answers 421 to partner A with SNI a.example and Host b.example on default-a (control, ${proto})`, async () => {
      const from = counts()
      const res = await send(opts('default-a', clientA, 'a.example', 'b.example', http2))
      assertMisdirected(res)
      assert.deepEqual(counts(), from, 'nothing reached either upstream')
    })

    test(`admits partner A with SNI a.example and Host a.example. on split: the same name (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('split', clientA, 'a.example', 'a.example.', http2))
      assert.equal(res.status, 200, res.body)
      assert.deepEqual(counts(), { a: from.a + 1, b: from.b })
    })
  }
})

describe('SNI and Host with one trust bundle for both names', { timeout: 60_000 }, () => {
  for (const http2 of [false, true]) {
    const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

    test(`lets SNI a.example carry Host b.example and routes by Host (${proto})`, async () => {
      const from = counts()
      const res = await send(opts('shared', clientA, 'a.example', 'b.example', http2))
      assert.equal(res.status, 200)
      assert.deepEqual(counts(), { a: from.a, b: from.b + 1 }, 'the Host picked the route')
      assert.equal((await requestLine(res))?.route, 'route-b')
    })

    test(`admits both partners under either name (${proto})`, async () => {
      for (const [client, sni, host] of [
        [clientA, 'b.example', 'a.example'],
        [clientB, 'a.example', 'a.example'],
        [clientB, 'b.example', 'b.example'],
      ] as const) {
        const res = await send(opts('shared', client, sni, host, http2))
        assert.equal(res.status, 200, `${client.cert} sni ${sni} host ${host}`)
      }
    })
  }
})

/** One GET on an open HTTP/2 session with the given :authority: status and problem reason (if any). */
function h2Get(session: ClientHttp2Session, authority: string): Promise<{ status: number; reason: unknown }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/orders/1', ':authority': authority })
    let status = 0
    let body = ''
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.on('data', (d: Buffer) => (body += d.toString('utf8')))
    stream.on('end', () => {
      const isProblem = body.startsWith('{') && status >= 400
      resolve({ status, reason: isProblem ? (JSON.parse(body) as { reason?: unknown }).reason : undefined })
    })
    stream.on('error', reject)
  })
}
