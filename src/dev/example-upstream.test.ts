import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, rmSync, mkdtempSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TestPki } from '../../test/harness/pki.js'
import { startExampleUpstream } from './example-upstream.js'
import type { ExampleResponse, ExampleUpstream } from './example-upstream.js'

/** A raw request, so paths like "//evil/x" reach the server unchanged. */
function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET') {
  const url = new URL(base)
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }))
    })
    req.once('error', reject)
    req.end()
  })
}

describe('startExampleUpstream', { timeout: 20_000 }, () => {
  let upstream: ExampleUpstream
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-upstream-'))
  const pki = new TestPki(dir)
  const ca = pki.root('upstream-test-ca')
  const client = pki.client('orders', ca, { san: 'URI:spiffe://acme.test/ns/prod/orders' })
  const der = new X509Certificate(readFileSync(client.cert)).raw

  before(async () => {
    upstream = await startExampleUpstream({})
  })
  after(async () => {
    await upstream.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('listens on a loopback port of its own choosing', () => {
    assert.match(upstream.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.notEqual(new URL(upstream.url).port, '0')
  })

  test('answers /healthz with 200 ok', async () => {
    const res = await get(upstream.url, '/healthz')
    assert.deepEqual([res.status, res.body], [200, 'ok\n'])
  })

  test('echoes method, path, query and forwarding headers as JSON', async () => {
    const res = await get(upstream.url, '/hello/world?a=1&a=2&b=x%20y', {
      'x-request-id': 'req-123',
      'x-forwarded-for': '203.0.113.7',
    }, 'DELETE')
    assert.equal(res.status, 200)
    assert.match(res.type, /^application\/json/)
    const body = JSON.parse(res.body) as ExampleResponse
    assert.equal(body.method, 'DELETE')
    assert.equal(body.path, '/hello/world')
    assert.deepEqual({ ...body.query }, { a: ['1', '2'], b: 'x y' })
    assert.equal(body.headers['x-request-id'], 'req-123')
    assert.equal(body.headers['x-forwarded-for'], '203.0.113.7')
    assert.deepEqual(body.identity, { clientCert: { isPresent: false }, hasIdentityAssertion: false })
  })

  test('parses an RFC 9440 Client-Cert into subject, issuer, SPIFFE id and fingerprint', async () => {
    const res = await get(upstream.url, '/whoami', {
      'client-cert': `:${der.toString('base64')}:`,
      'portcullis-identity': 'eyJhbGciOiJFUzI1NiJ9.e30.sig',
    })
    const body = JSON.parse(res.body) as ExampleResponse
    assert.deepEqual(body.identity, {
      clientCert: {
        isPresent: true,
        isParsed: true,
        subject: 'CN=orders,O=Portcullis Test',
        issuer: 'CN=upstream-test-ca,O=Portcullis Test',
        spiffeId: 'spiffe://acme.test/ns/prod/orders',
        fingerprint256: new X509Certificate(der).fingerprint256.replace(/:/g, '').toLowerCase(),
      },
      hasIdentityAssertion: true,
    })
    // The raw header is summarised, not echoed.
    assert.equal(body.headers['client-cert'], undefined)
  })

  test('reports a Client-Cert that is not an RFC 9440 byte sequence as unparsed', async () => {
    for (const value of [der.toString('base64'), ':not base64!:', ':AAAA:']) {
      const body = JSON.parse((await get(upstream.url, '/', { 'client-cert': value })).body) as ExampleResponse
      assert.deepEqual(body.identity.clientCert, { isPresent: true, isParsed: false }, value)
    }
  })

  test('keeps a path that starts with "//" as a path, not a host', async () => {
    const body = JSON.parse((await get(upstream.url, '//evil.example/x?q=1')).body) as ExampleResponse
    assert.equal(body.path, '//evil.example/x')
    assert.deepEqual({ ...body.query }, { q: '1' })
  })

  test('answers HEAD without a body', async () => {
    const res = await get(upstream.url, '/hello', {}, 'HEAD')
    assert.deepEqual([res.status, res.body], [200, ''])
  })
})

test('close() returns while a keep-alive connection is open', { timeout: 10_000 }, async () => {
  const upstream = await startExampleUpstream({ port: 0 })
  const { Agent } = await import('node:http')
  const agent = new Agent({ keepAlive: true })
  const url = new URL(upstream.url)
  await new Promise<void>((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path: '/', agent }, (res) => {
      res.resume()
      res.on('end', resolve)
    })
      .once('error', reject)
      .end()
  })
  await upstream.close()
  agent.destroy()
})
