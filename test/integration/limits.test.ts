/**
 * Listener and route limits against slowloris, floods and oversized requests,
 * each driven over real TLS with raw sockets where a well-behaved client
 * library would not misbehave on purpose.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { send } from '../harness/client.js'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'

let root: CaFiles
let server: CertFiles
let client: CertFiles
let upstream: TestUpstream
let gw: TestGateway

before(async () => {
  const pki = new TestPki()
  root = pki.root('root')
  server = pki.server('gateway', root)
  client = pki.client('client', root)
  upstream = await startUpstream()
  gw = await startGateway({
    yaml: `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${root.cert} }] }
      handshakeTimeout: 1s
    limits:
      headersTimeout: 1s
      requestTimeout: 2s
      maxHeadersCount: 20
      maxHeaderSize: 4KiB
      maxConnections: 50
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: small
    match: { path: { prefix: /small } }
    access: { allowAnyClientCert: true }
    upstream: app
    limits: { maxBodySize: 1KiB, maxUrlLength: 64 }
`,
  })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

/** An mTLS socket to the gateway, speaking HTTP/1.1 by hand. */
function rawTls(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: gw.port(),
      servername: 'localhost',
      ca: readFileSync(root.cert),
      cert: readFileSync(client.chain),
      key: readFileSync(client.key),
      ALPNProtocols: ['http/1.1'],
    })
    socket.once('secureConnect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Everything the server sends until it closes, and how long that took. */
function readUntilClose(socket: TLSSocket | import('node:net').Socket, limitMs = 5000): Promise<{ text: string; ms: number }> {
  const started = Date.now()
  return new Promise((resolve) => {
    let text = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ text, ms: Date.now() - started })
    }, limitMs)
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')))
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text, ms: Date.now() - started })
    })
  })
}

const base = { ca: '', cert: '', key: '' }
const opts = () => ({ ...base, ca: root.cert, cert: client.chain, key: client.key, port: gw.port() })

describe('limits', { timeout: 30_000 }, () => {
  test('closes a connection that never finishes its TLS handshake (handshakeTimeout)', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: gw.port() })
    await new Promise((r) => socket.once('connect', r))
    const { ms } = await readUntilClose(socket)
    assert.ok(ms >= 900 && ms < 4000, `closed after ${ms} ms`)
  })

  test('answers 408 to a client that trickles its headers (slowloris, headersTimeout)', async () => {
    const socket = await rawTls()
    socket.write('GET /small HTTP/1.1\r\nHost: localhost\r\n')
    const timer = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 200)
    const { text, ms } = await readUntilClose(socket)
    clearInterval(timer)
    assert.match(text, /^HTTP\/1\.1 408/)
    assert.match(text, /"reason":"request_timeout"/)
    assert.ok(ms < 4000, `closed after ${ms} ms`)
  })

  test('answers 408 and never forwards a body that trickles past requestTimeout', async () => {
    const before = upstream.requests.length
    const socket = await rawTls()
    socket.write('POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n')
    const timer = setInterval(() => socket.writable && socket.write('a'), 300)
    const { text, ms } = await readUntilClose(socket, 8000)
    clearInterval(timer)
    assert.match(text, /^HTTP\/1\.1 408/)
    assert.match(text, /"reason":"request_timeout"/)
    assert.ok(ms < 5000, `answered after ${ms} ms`)
    assert.equal(upstream.requests.length, before, 'the incomplete request never completed upstream')
  })

  test('answers 431 when header fields exceed maxHeadersCount', async () => {
    const headers = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`x-h${i}`, 'v']))
    const res = await send({ ...opts(), path: '/small', headers })
    assert.equal(res.status, 431)
    assert.equal(res.json().reason, 'header_too_large')
  })

  test('answers 431 when the header block exceeds maxHeaderSize', async () => {
    const socket = await rawTls()
    socket.write(`GET /small HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(6000)}\r\n\r\n`)
    const { text } = await readUntilClose(socket)
    assert.match(text, /^HTTP\/1\.1 431/)
    assert.match(text, /"reason":"header_too_large"/)
  })

  test('answers 414 when the URL exceeds the route maxUrlLength', async () => {
    const res = await send({ ...opts(), path: `/small/${'a'.repeat(80)}` })
    assert.equal(res.status, 414)
    assert.equal(res.json().reason, 'uri_too_long')
  })

  test('answers 413 for a declared body over maxBodySize, before forwarding', async () => {
    const before = upstream.requests.length
    const res = await send({ ...opts(), path: '/small', method: 'POST', body: 'x'.repeat(2000) })
    assert.equal(res.status, 413)
    assert.equal(res.json().reason, 'payload_too_large')
    assert.equal(upstream.requests.length, before)
  })

  test('answers 413 for a chunked body that grows past maxBodySize', async () => {
    const socket = await rawTls()
    const chunk = 'y'.repeat(600)
    socket.write('POST /small HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n')
    socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
    socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`)
    const { text } = await readUntilClose(socket)
    assert.match(text, /^HTTP\/1\.1 413/)
  })

  test('passes a body within the limit', async () => {
    const res = await send({ ...opts(), path: '/small', method: 'POST', body: 'z'.repeat(500) })
    assert.equal(res.status, 200)
    assert.equal(res.json().bodyLength, 500)
  })
})
