/**
 * The life of a request end to end: real mTLS handshakes on loopback, routing,
 * access stages, forwarding over HTTP/1.1 and HTTP/2, problem+json denials
 * and the access log.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { send } from '../harness/client.js'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'

let pki: TestPki
let root: CaFiles
let server: CertFiles
let alice: CertFiles
let bob: CertFiles
let upstream: TestUpstream
let gw: TestGateway

function config(upstreamUrl: string): string {
  return `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates:
        - cert: { file: ${server.chain} }
          key: { file: ${server.key} }
      clientAuth:
        mode: optional
        trustBundle: [{ file: ${root.cert} }]
identities:
  alice:
    - spiffeId: spiffe://example.org/alice
upstreams:
  app:
    targets: [{ url: ${upstreamUrl} }]
routes:
  - name: public
    match: { path: { exact: /public }, methods: [GET] }
    access: { allowAnonymous: true }
    upstream: app
  - name: orders
    match: { path: { prefix: /orders } }
    access: { identities: [alice] }
    upstream: app
  - name: admin-net
    match: { path: { prefix: /internal } }
    access: { allowAnyClientCert: true, ipAllow: [10.0.0.0/8] }
    upstream: app
`
}

before(async () => {
  pki = new TestPki()
  root = pki.root('root')
  server = pki.server('gateway', root)
  alice = pki.client('alice', root, { san: 'URI:spiffe://example.org/alice' })
  bob = pki.client('bob', root, { san: 'URI:spiffe://example.org/bob' })
  upstream = await startUpstream()
  gw = await startGateway({ yaml: config(upstream.url) })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

describe('proxying', { timeout: 30_000 }, () => {
  for (const http2 of [false, true]) {
    const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

    test(`forwards an admitted identity's request over ${proto}`, async () => {
      const before = upstream.requests.length
      const res = await send({ port: gw.port(), path: '/orders/42?x=1', ca: root.cert, cert: alice.chain, key: alice.key, http2 })
      assert.equal(res.status, 200)
      const seen = upstream.requests[before]!
      assert.equal(seen.url, '/orders/42?x=1')
      assert.match(String(seen.headers['x-request-id']), /^[A-Za-z0-9._:-]{1,128}$/)
      assert.equal(res.headers['x-request-id'], seen.headers['x-request-id'])
      assert.ok(String(seen.headers['client-cert']).startsWith(':'), 'RFC 9440 Client-Cert is sent')
    })

    test(`refuses an identity the route does not name over ${proto}`, async () => {
      const before = upstream.requests.length
      const res = await send({ port: gw.port(), path: '/orders/1', ca: root.cert, cert: bob.chain, key: bob.key, http2 })
      assert.equal(res.status, 403)
      assert.equal(res.headers['content-type'], 'application/problem+json')
      assert.equal(res.json().reason, 'identity_denied')
      assert.equal(upstream.requests.length, before, 'nothing reached the upstream')
    })
  }

  test('answers 404 route_not_found for paths no route names', async () => {
    const res = await send({ port: gw.port(), path: '/nothing-here', ca: root.cert, cert: alice.chain, key: alice.key })
    assert.equal(res.status, 404)
    assert.equal(res.json().reason, 'route_not_found')
  })

  test('serves a public route without a client certificate and refuses the mTLS route', async () => {
    const open = await send({ port: gw.port(), path: '/public', ca: root.cert })
    assert.equal(open.status, 200)
    const closed = await send({ port: gw.port(), path: '/orders/1', ca: root.cert })
    assert.equal(closed.status, 401)
    assert.equal(closed.json().reason, 'client_cert_required')
  })

  test('refuses a client address outside the route allow list', async () => {
    const res = await send({ port: gw.port(), path: '/internal/x', ca: root.cert, cert: alice.chain, key: alice.key })
    assert.equal(res.status, 403)
    assert.equal(res.json().reason, 'ip_denied')
  })

  test('writes one access-log line per request with reason, route and principal', async () => {
    const res = await send({ port: gw.port(), path: '/orders/7', ca: root.cert, cert: bob.chain, key: bob.key })
    const id = res.headers['x-request-id']
    await new Promise((r) => setTimeout(r, 50))
    const line = gw.logs.find((l) => l.requestId === id)
    assert.ok(line, 'access log line present')
    assert.equal(line.reason, 'identity_denied')
    assert.equal(line.route, 'orders')
    assert.equal(line.status, 403)
    const principal = line.principal as { kind: string; spiffeId?: string }
    assert.equal(principal.spiffeId, 'spiffe://example.org/bob')
  })

  for (const [who, certs, expected] of [
    ['an admitted', () => alice, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /],
    ['a refused', () => bob, /^HTTP\/1\.1 403 /],
  ] as const) {
    test(`answers Expect: 100-continue only after access checks, for ${who} client`, async () => {
      const c = certs()
      const socket = connect({
        host: '127.0.0.1', port: gw.port(), servername: 'localhost', ALPNProtocols: ['http/1.1'],
        ca: readFileSync(root.cert), cert: readFileSync(c.chain), key: readFileSync(c.key),
      })
      await new Promise((r) => socket.once('secureConnect', r))
      let text = ''
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1')
        // Send the body only once told to continue, as a real client would.
        if (text.startsWith('HTTP/1.1 100')) socket.write('hello')
      })
      socket.write('POST /orders/1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
      const deadline = Date.now() + 5000
      while (!/\r\n\r\n[\s\S]*\}/.test(text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
      }
      socket.destroy()
      assert.match(text, expected)
    })
  }

  test('logs a refused TLS handshake once, with its reason', async () => {
    const before = gw.logs.length
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: gw.port(), servername: 'localhost', maxVersion: 'TLSv1.2', ca: readFileSync(root.cert) })
      socket.on('error', () => resolve())
      socket.on('close', () => resolve())
    })
    await new Promise((r) => setTimeout(r, 50))
    const lines = gw.logs.slice(before).filter((l) => l.type === 'handshake')
    assert.equal(lines.length, 1, JSON.stringify(lines))
    assert.equal(lines[0]!.reason, 'tls_handshake_failed')
    assert.equal(lines[0]!.level, 'info', 'the level is a label, as in the process log')
  })
})
