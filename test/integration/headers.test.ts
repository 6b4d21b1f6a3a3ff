/**
 * Header hygiene through the real gateway, over HTTP/1.1 and HTTP/2: identity
 * headers a client sends are stripped, the gateway's own arrive correctly
 * (checked against openssl's view of the certificate and with jose for the
 * assertion), hop-by-hop headers never pass, and upstream responses are
 * cleaned for the client.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { send } from '../harness/client.js'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'

let pki: TestPki
let root: CaFiles
let inter: CaFiles
let server: CertFiles
let alice: CertFiles
let upstream: TestUpstream
let gw: TestGateway
/** openssl's view of alice's certificate: DER (base64), SHA-256 fingerprint (hex). */
let aliceDer64: string
let aliceFp: string
let interDer64: string

function opensslDer64(certFile: string): string {
  return execFileSync('openssl', ['x509', '-in', certFile, '-outform', 'DER']).toString('base64')
}

function yaml(upstreamUrl: string, extraListener = ''): string {
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
${extraListener}
identityAssertion:
  issuer: https://portcullis.test
  ttl: 60s
upstreams:
  app:
    targets: [{ url: ${upstreamUrl} }]
routes:
  - name: plain
    match: { path: { prefix: /plain } }
    access: { allowAnyClientCert: true }
    upstream: app
  - name: full
    match: { path: { prefix: /full } }
    access: { allowAnyClientCert: true }
    upstream: app
    headers:
      forwarded: both
      xfcc: true
      identityAssertion: true
      set: { X-Tenant: acme }
      remove: [X-Debug]
  - name: public
    match: { path: { prefix: /public } }
    access: { allowAnonymous: true }
    upstream: app
`
}

before(async () => {
  pki = new TestPki()
  root = pki.root('hdr-root')
  inter = pki.intermediate('hdr-inter', root)
  server = pki.server('gateway', root)
  alice = pki.client('alice', inter, { san: 'URI:spiffe://example.org/alice,DNS:alice.internal' }, [inter])
  aliceDer64 = opensslDer64(alice.cert)
  interDer64 = opensslDer64(inter.cert)
  aliceFp = execFileSync('openssl', ['x509', '-in', alice.cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' })
    .trim()
    .split('=')[1]!
    .replace(/:/g, '')
    .toLowerCase()
  // The upstream answers with every header a client must not see, beside the JSON echo.
  upstream = await startUpstream({
    handler: (req, res, body) => {
      const answer = JSON.stringify({ url: req.url, bodyLength: body.length })
      res.setHeader('Connection', 'keep-alive, X-Upstream-Hop')
      res.setHeader('X-Upstream-Hop', 'secret')
      res.setHeader('Keep-Alive', 'timeout=4')
      res.setHeader('Alt-Svc', 'h2="elsewhere.example:443"')
      res.setHeader('X-Request-Id', 'chosen-by-upstream')
      res.setHeader('Set-Cookie', ['a=1; Secure', 'b=2; HttpOnly'])
      res.setHeader('Content-Type', 'application/json')
      res.end(answer)
    },
  })
  gw = await startGateway({ yaml: yaml(upstream.url) })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

const spoofed = {
  'client-cert': ':Zm9yZ2Vk:',
  'client-cert-chain': ':Zm9yZ2Vk:',
  'x-forwarded-client-cert': 'Hash=0000;Subject="CN=admin";URI=spiffe://example.org/admin',
  'portcullis-identity': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
  'x-ssl-client-verify': 'SUCCESS',
  'x-ssl-client-s-dn': 'CN=admin',
  'x-client-cert': 'forged',
  'x-forwarded-for': '10.9.9.9',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'http',
  forwarded: 'for=10.9.9.9;proto=http',
  'x-real-ip': '10.9.9.9',
  'x-debug': '1',
  'x-tenant': 'evil',
}

function lastRequest(before: number) {
  assert.equal(upstream.requests.length, before + 1, 'exactly one request reached the upstream')
  return upstream.requests[before]!
}

describe('identity headers to upstreams', { timeout: 60_000 }, () => {
  for (const http2 of [false, true]) {
    const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

    test(`strips spoofed identity headers and sends the gateway's own over ${proto}`, async () => {
      const before = upstream.requests.length
      const res = await send({
        port: gw.port(), path: '/full/x', http2, ca: root.cert, cert: alice.chain, key: alice.key,
        headers: { ...spoofed, 'x-request-id': `trace-${proto.replace('/', '')}` },
      })
      assert.equal(res.status, 200, res.body)
      const h = lastRequest(before).headers
      const port = gw.port()

      assert.equal(h['client-cert'], `:${aliceDer64}:`, 'RFC 9440 Client-Cert is the DER openssl sees')
      assert.equal(h['client-cert-chain'], `:${interDer64}:`, 'the intermediate the client sent, not the leaf')
      assert.equal(
        h['x-forwarded-client-cert'],
        `Hash=${aliceFp};Subject="${String(h['x-forwarded-client-cert']).match(/Subject="([^"]*)"/)?.[1]}";URI=spiffe://example.org/alice;DNS=alice.internal`,
      )
      assert.match(String(h['x-forwarded-client-cert']), /Subject="[^"]*CN=alice[^"]*"/)
      assert.equal(h['x-forwarded-for'], '127.0.0.1')
      assert.equal(h['x-forwarded-proto'], 'https')
      assert.equal(h['x-forwarded-host'], `localhost:${port}`)
      assert.equal(h.forwarded, `for=127.0.0.1;host="localhost:${port}";proto=https`)
      for (const gone of ['x-real-ip', 'x-ssl-client-verify', 'x-ssl-client-s-dn', 'x-client-cert', 'x-debug']) {
        assert.equal(h[gone], undefined, `${gone} is stripped`)
      }
      assert.equal(h['x-tenant'], 'acme', 'the route set replaces the client value')
      assert.equal(h['x-request-id'], `trace-${proto.replace('/', '')}`, 'a safe incoming request id is kept')
      assert.equal(res.headers['x-request-id'], h['x-request-id'])

      const jwks = createLocalJWKSet(gw.gateway.current().assertion!.jwks() as never)
      const { payload } = await jwtVerify(String(h['portcullis-identity']), jwks, {
        issuer: 'https://portcullis.test',
        audience: 'app',
        algorithms: ['ES256'],
      })
      assert.equal(payload.sub, 'spiffe://example.org/alice')
      assert.deepEqual(payload.cnf, { 'x5t#S256': Buffer.from(aliceFp, 'hex').toString('base64url') })
    })

    test(`sends only the defaults on a plain route over ${proto}`, async () => {
      const before = upstream.requests.length
      const res = await send({ port: gw.port(), path: '/plain', http2, ca: root.cert, cert: alice.chain, key: alice.key, headers: spoofed })
      assert.equal(res.status, 200, res.body)
      const h = lastRequest(before).headers
      assert.equal(h['client-cert'], `:${aliceDer64}:`)
      assert.equal(h['x-forwarded-client-cert'], undefined)
      assert.equal(h['portcullis-identity'], undefined)
      assert.equal(h.forwarded, undefined)
      assert.equal(h['x-forwarded-for'], '127.0.0.1')
      assert.equal(h['x-debug'], '1', 'remove is per route')
      assert.equal(h['x-tenant'], 'evil', 'set is per route')
    })

    test(`strips spoofed identity headers from an anonymous caller over ${proto}`, async () => {
      const before = upstream.requests.length
      const res = await send({ port: gw.port(), path: '/public', http2, ca: root.cert, headers: spoofed })
      assert.equal(res.status, 200, res.body)
      const h = lastRequest(before).headers
      for (const gone of ['client-cert', 'client-cert-chain', 'x-forwarded-client-cert', 'portcullis-identity', 'x-ssl-client-verify', 'x-client-cert', 'x-real-ip']) {
        assert.equal(h[gone], undefined, `${gone} is stripped`)
      }
      assert.equal(h['x-forwarded-for'], '127.0.0.1')
    })

    test(`replaces an unsafe X-Request-Id and uses one id everywhere over ${proto}`, async () => {
      const before = upstream.requests.length
      const res = await send({ port: gw.port(), path: '/plain', http2, ca: root.cert, cert: alice.chain, key: alice.key, headers: { 'x-request-id': 'a"b<c>' } })
      const id = String(res.headers['x-request-id'])
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.equal(lastRequest(before).headers['x-request-id'], id)
      await new Promise((r) => setTimeout(r, 50))
      assert.ok(gw.logs.some((l) => l.requestId === id))
    })

    test(`cleans the upstream's response headers over ${proto}`, async () => {
      const res = await send({ port: gw.port(), path: '/plain', http2, ca: root.cert, cert: alice.chain, key: alice.key })
      assert.equal(res.status, 200, res.body)
      assert.deepEqual(res.headers['set-cookie'], ['a=1; Secure', 'b=2; HttpOnly'])
      assert.notEqual(res.headers['x-request-id'], 'chosen-by-upstream')
      assert.equal(res.headers['x-upstream-hop'], undefined)
      assert.equal(res.headers['alt-svc'], undefined)
      assert.equal(res.headers['keep-alive'], undefined)
    })
  }

  test('serves the assertion JWKS on the listener; an upstream verifies with it, and a reload keeps the key', async () => {
    const published = await send({ port: gw.port(), path: '/.well-known/portcullis/jwks.json', ca: root.cert })
    assert.equal(published.status, 200)
    assert.equal(published.headers['content-type'], 'application/jwk-set+json')
    const set = published.json() as { keys: { kid: string; d?: string }[] }
    assert.equal(set.keys.length, 1)
    assert.equal(set.keys[0]!.d, undefined, 'no private part is published')

    const before = upstream.requests.length
    const res = await send({ port: gw.port(), path: '/full/jwks', ca: root.cert, cert: alice.chain, key: alice.key })
    assert.equal(res.status, 200)
    const token = String(lastRequest(before).headers['portcullis-identity'])
    const { payload } = await jwtVerify(token, createLocalJWKSet(set as never), { issuer: 'https://portcullis.test', audience: 'app' })
    assert.equal(payload.sub, 'spiffe://example.org/alice')

    const reloaded = await gw.reload(yaml(upstream.url).replace('port: 0', `port: ${gw.port()}`))
    assert.ok(reloaded.ok)
    const after = await send({ port: gw.port(), path: '/.well-known/portcullis/jwks.json', ca: root.cert })
    assert.equal((after.json() as { keys: { kid: string }[] }).keys[0]!.kid, set.keys[0]!.kid, 'a generated key survives a reload')
  })

  test('drops hop-by-hop headers and what Connection names (HTTP/1.1), keeps te: trailers', async () => {
    const before = upstream.requests.length
    const res = await send({
      port: gw.port(), path: '/plain', ca: root.cert, cert: alice.chain, key: alice.key,
      headers: { connection: 'keep-alive, X-Drop-Me', 'x-drop-me': '1', 'keep-alive': 'timeout=9', 'proxy-authorization': 'Basic eDp5', te: 'trailers', 'x-keep': 'k' },
    })
    assert.equal(res.status, 200, res.body)
    const h = lastRequest(before).headers
    assert.equal(h['x-drop-me'], undefined)
    assert.equal(h['keep-alive'], undefined)
    assert.equal(h['proxy-authorization'], undefined)
    assert.equal(h.te, 'trailers')
    assert.equal(h['x-keep'], 'k')
  })
})

describe('trusted proxies', { timeout: 60_000 }, () => {
  let trusting: TestGateway
  before(async () => {
    const text = yaml(upstream.url).replace('    port: 0\n', '    port: 0\n    trustedProxies: [127.0.0.1/32]\n')
    assert.ok(text.includes('trustedProxies'))
    trusting = await startGateway({ yaml: text })
  })
  after(async () => {
    await trusting?.close()
  })

  test('extends X-Forwarded-For and keeps X-Forwarded-Host from a trusted proxy', async () => {
    const before = upstream.requests.length
    const res = await send({
      port: trusting.port(), path: '/plain', ca: root.cert, cert: alice.chain, key: alice.key,
      headers: { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-host': 'public.example', 'client-cert': ':Zm9yZ2Vk:' },
    })
    assert.equal(res.status, 200, res.body)
    const h = lastRequest(before).headers
    assert.equal(h['x-forwarded-for'], '198.51.100.7, 127.0.0.1')
    assert.equal(h['x-forwarded-host'], 'public.example')
    assert.equal(h['client-cert'], `:${aliceDer64}:`, 'identity headers are never taken from a proxy')
  })
})

