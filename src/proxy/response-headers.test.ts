import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { connect as h2connect, createSecureServer } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { request } from 'undici'
import { TestPki, pem } from '../../test/harness/pki.js'
import { cleanResponseHeaders } from './response-headers.js'

describe('cleanResponseHeaders', () => {
  test('drops hop-by-hop headers, what Connection names, and adds our request id', () => {
    const out = cleanResponseHeaders(
      {
        connection: 'close, x-hop',
        'x-hop': 'only for the upstream hop',
        'keep-alive': 'timeout=4',
        'proxy-connection': 'keep-alive',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        te: 'trailers',
        'http2-settings': 'AAAA',
        host: 'upstream.internal',
        'proxy-authenticate': 'Basic',
        'alt-svc': 'h2="evil.example:443"',
        'x-request-id': 'upstream-chosen',
        'content-type': 'application/json',
        'content-length': '2',
        ':status': '200',
      },
      'req-7',
    )
    assert.deepEqual({ ...out }, { 'content-type': 'application/json', 'content-length': '2', 'x-request-id': 'req-7' })
  })

  test('keeps every Set-Cookie as an array and other list fields as arrays', () => {
    const out = cleanResponseHeaders({ 'set-cookie': ['a=1; Secure', 'b=2; HttpOnly'], vary: ['accept', 'origin'] }, 'r')
    assert.deepEqual(out['set-cookie'], ['a=1; Secure', 'b=2; HttpOnly'])
    assert.deepEqual(out.vary, ['accept', 'origin'])
  })

  test('keeps the first value of a single-value field sent twice', () => {
    const out = cleanResponseHeaders({ 'content-type': ['text/html', 'application/json'], location: ['/a', '/b'] }, 'r')
    assert.equal(out['content-type'], 'text/html')
    assert.equal(out.location, '/a')
  })

  test('drops values Node would refuse to write (CR, LF, NUL) but keeps obs-text', () => {
    const out = cleanResponseHeaders(
      { 'x-a': 'a\r\nset-cookie: evil=1', 'x-b': 'a\0b', 'x-c': ['ok', 'bad\n'], 'content-disposition': 'attachment; filename="caf\xe9.txt"' },
      'r',
    )
    assert.equal(out['x-a'], undefined)
    assert.equal(out['x-b'], undefined)
    assert.deepEqual(out['x-c'], ['ok'])
    assert.equal(out['content-disposition'], 'attachment; filename="caf\xe9.txt"')
  })

  /**
   * A real upstream that sends every connection-specific header it can,
   * fetched with undici, written to real HTTP/1.1 and HTTP/2 responses: Node's
   * HTTP/2 layer throws on connection headers and repeated single-value
   * fields, so this proves the filter is enough.
   */
  describe('from a real upstream to real HTTP/1.1 and HTTP/2 clients', { timeout: 30_000 }, () => {
    const upstream = createServer((_req, res) => {
      res.setHeader('Connection', 'close, X-Hop')
      res.setHeader('X-Hop', 'hop')
      res.setHeader('Keep-Alive', 'timeout=4')
      res.setHeader('Upgrade', 'h2c')
      res.setHeader('Content-Type', ['text/plain', 'text/html'])
      res.setHeader('Set-Cookie', ['a=1', 'b=2'])
      res.setHeader('Alt-Svc', 'h3=":443"')
      res.setHeader('X-Request-Id', 'upstream')
      res.setHeader('X-Kept', 'yes')
      res.write('hel') // a body in two writes: sent chunked, so Transfer-Encoding comes too
      res.end('lo')
    })
    let gateway: ReturnType<typeof createSecureServer>
    let port = 0
    let upstreamUrl = ''

    before(async () => {
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
      upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`
      const pki = new TestPki()
      const cert = pki.server('localhost', pki.root('resp-root'))
      gateway = createSecureServer({ key: pem(cert.key), cert: pem(cert.cert), allowHTTP1: true }, (_req, res) => {
        request(upstreamUrl)
          .then(async (r) => {
            assert.equal(r.headers['transfer-encoding'], 'chunked')
            res.writeHead(r.statusCode, cleanResponseHeaders(r.headers, 'req-42'))
            res.end(await r.body.text())
          })
          .catch((err: Error) => {
            res.statusCode = 500
            res.end(err.message)
          })
      })
      await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve))
      port = (gateway.address() as AddressInfo).port
    })
    after(async () => {
      await new Promise<void>((resolve) => gateway.close(() => resolve()))
      upstream.closeAllConnections()
      await new Promise<void>((resolve) => upstream.close(() => resolve()))
    })

    function check(status: number, headers: IncomingHttpHeaders, body: string): void {
      assert.equal(status, 200, body)
      assert.equal(body, 'hello')
      assert.deepEqual(headers['set-cookie'], ['a=1', 'b=2'])
      assert.equal(headers['content-type'], 'text/plain')
      assert.equal(headers['x-request-id'], 'req-42')
      assert.equal(headers['x-kept'], 'yes')
      assert.equal(headers['x-hop'], undefined)
      assert.equal(headers['alt-svc'], undefined)
      assert.equal(headers.upgrade, undefined)
      assert.equal(headers['keep-alive'], undefined)
    }

    test('over HTTP/1.1', async () => {
      const { status, headers, body } = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const r = httpsRequest({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, (res) => {
          let text = ''
          res.on('data', (d: Buffer) => (text += d.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
        })
        r.on('error', reject)
        r.end()
      })
      check(status, headers, body)
    })

    test('over HTTP/2', async () => {
      const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'localhost' })
      try {
        const stream = session.request({ ':path': '/' })
        let text = ''
        const [headers] = await new Promise<[IncomingHttpHeaders & { ':status'?: number }]>((resolve) => stream.once('response', (h) => resolve([h])))
        stream.on('data', (d: Buffer) => (text += d.toString()))
        await new Promise((resolve) => stream.on('end', resolve))
        check(Number(headers[':status']), headers, text)
      } finally {
        session.close()
      }
    })
  })
})
