/**
 * Request smuggling through the real gateway: raw bytes over real mTLS
 * connections, each payload followed by a second request hidden where a
 * desynchronised hop would read it. Every payload must be answered 400 (by
 * checkFraming, or by Node's parser via the listener's clientError reply),
 * the connection closed, the hidden request never answered, and NOTHING may
 * reach the recording upstream.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, pem, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { rawHttp1, rawHttp2 } from './raw-clients.js'

let pki: TestPki
let root: CaFiles
let server: CertFiles
let client: CertFiles
let upstream: TestUpstream
let gw: TestGateway

before(async () => {
  pki = new TestPki()
  root = pki.root('smuggle-root')
  server = pki.server('gateway', root)
  client = pki.client('smuggler', root, { san: 'URI:spiffe://example.org/smuggler' })
  upstream = await startUpstream()
  gw = await startGateway({
    yaml: `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates:
        - cert: { file: ${server.chain} }
          key: { file: ${server.key} }
      clientAuth:
        mode: required
        trustBundle: [{ file: ${root.cert} }]
upstreams:
  app:
    targets: [{ url: ${upstream.url} }]
routes:
  - name: everything
    match: { path: { prefix: / } }
    access: { allowAnyClientCert: true }
    upstream: app
`,
  })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

const tls = () => ({ port: gw.port(), cert: pem(client.chain), key: pem(client.key), idleMs: 1500 })
const H = 'Host: localhost\r\n'
/** The request a desynchronised hop would see next. */
const HIDDEN = `GET /smuggled HTTP/1.1\r\n${H}\r\n`

/** [name, payload, the framing rule expected in the access log, or "parser" when Node's llhttp refuses it]. */
const http1: [string, string, string][] = [
  ['CL and TE', `POST /a HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${HIDDEN}`, 'parser'],
  ['TE and CL', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n${HIDDEN}`, 'parser'],
  ['duplicate Content-Length (equal)', `POST /a HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello${HIDDEN}`, 'parser'],
  ['duplicate Content-Length (different)', `POST /a HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 44\r\n\r\n${HIDDEN}`, 'parser'],
  ['Transfer-Encoding: ,chunked', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n${HIDDEN}`, 'unsupported_transfer_encoding'],
  ['Transfer-Encoding: chunked, identity', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${HIDDEN}`, 'parser'],
  ['Transfer-Encoding: gzip, chunked', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${HIDDEN}`, 'unsupported_transfer_encoding'],
  ['Transfer-Encoding: identity', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n${HIDDEN}`, 'unsupported_transfer_encoding'],
  ['Transfer-Encoding on two lines', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${HIDDEN}`, 'duplicate_transfer_encoding'],
  ['Transfer-Encoding on HTTP/1.0', `POST /a HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${HIDDEN}`, 'transfer_encoding_in_http10'],
  ['Content-Length: +5', `POST /a HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello${HIDDEN}`, 'parser'],
  ['Content-Length: 05', `POST /a HTTP/1.1\r\n${H}Content-Length: 05\r\n\r\nhello${HIDDEN}`, 'invalid_content_length'],
  ['Content-Length past 2^53', `POST /a HTTP/1.1\r\n${H}Content-Length: 9007199254740993\r\n\r\n${HIDDEN}`, 'invalid_content_length'],
  ['obs-fold', `GET /a HTTP/1.1\r\n${H}X-A: a\r\n Transfer-Encoding: chunked\r\n\r\n${HIDDEN}`, 'parser'],
  ['obs-fold on Transfer-Encoding', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n${HIDDEN}`, 'parser'],
  ['NUL in a value', `GET /a HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n${HIDDEN}`, 'parser'],
  ['CR in a value', `GET /a HTTP/1.1\r\n${H}X-A: a\rTransfer-Encoding: chunked\r\n\r\n${HIDDEN}`, 'parser'],
  ['bare LF line ending', `GET /a HTTP/1.1\n${H}X-A: b\n\n${HIDDEN}`, 'parser'],
  ['obs-text in a value', `GET /a HTTP/1.1\r\n${H}X-A: a\x80b\r\n\r\n${HIDDEN}`, 'invalid_header_value'],
  ['space before the colon', `POST /a HTTP/1.1\r\n${H}Content-Length : 5\r\n\r\nhello${HIDDEN}`, 'parser'],
  ['Upgrade: h2c', `GET /a HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n${HIDDEN}`, 'h2c_upgrade'],
  ['Upgrade: h2c without Connection', `GET /a HTTP/1.1\r\n${H}Upgrade: h2c\r\n\r\n${HIDDEN}`, 'h2c_upgrade'],
  ['HTTP2-Settings alone', `GET /a HTTP/1.1\r\n${H}HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n${HIDDEN}`, 'http2_settings'],
  ['two Host lines', `GET /a HTTP/1.1\r\nHost: localhost\r\nHost: other.example\r\n\r\n${HIDDEN}`, 'duplicate_host'],
  ['absolute-form naming another host', `GET https://other.example/a HTTP/1.1\r\n${H}\r\n${HIDDEN}`, 'host_authority_mismatch'],
  ['Connection naming Content-Length', `POST /a HTTP/1.1\r\n${H}Connection: Content-Length\r\nContent-Length: 34\r\n\r\n${HIDDEN}`, 'connection_nominates_framing_header'],
  ['HTTP/0.9 request line', `GET /a\r\n\r\n${HIDDEN}`, 'unsupported_http_version'],
  ['HTTP/2.0 request line over HTTP/1', `GET /a HTTP/2.0\r\n${H}\r\n${HIDDEN}`, 'unsupported_http_version'],
]

async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('HTTP/1.1 request smuggling through the gateway', { timeout: 120_000 }, () => {
  test('a well-framed request with a pipelined second one is answered twice (the checks below can see a second answer)', async () => {
    const before = upstream.requests.length
    const result = await rawHttp1(tls(), `POST /first HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello${HIDDEN}`)
    assert.equal(result.status, 200)
    assert.equal(result.responses, 2)
    assert.deepEqual(upstream.requests.slice(before).map((r) => r.url), ['/first', '/smuggled'])
    assert.equal(upstream.requests[before]!.body.toString(), 'hello')
  })

  test('a chunked body arrives at the upstream re-framed, with no Transfer-Encoding copied', async () => {
    const before = upstream.requests.length
    const result = await rawHttp1(tls(), `POST /chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
    assert.equal(result.status, 200)
    const seen = upstream.requests[before]!
    assert.equal(seen.body.toString(), 'hello')
    assert.equal(seen.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length').length <= 1, true)
  })

  for (const [name, payload, rule] of http1) {
    test(`refuses ${name} with 400 and nothing reaches the upstream`, async () => {
      const before = upstream.requests.length
      const logsBefore = gw.logs.length
      const result = await rawHttp1(tls(), payload)
      assert.equal(result.status, 400, `answer: ${JSON.stringify(result.text.slice(0, 200))}`)
      assert.equal(result.responses, 1, 'the hidden request is never answered')
      assert.equal(result.closedByServer, true, 'the connection is closed after the 400')
      assert.equal(upstream.requests.length, before, `nothing reached the upstream: ${JSON.stringify(upstream.requests.slice(before).map((r) => [r.method, r.url, r.headers]))}`)
      await settle()
      const lines = gw.logs.slice(logsBefore)
      assert.ok(lines.length >= 1 && lines.every((l) => l.reason === 'bad_request'), JSON.stringify(lines))
      const requests = lines.filter((l) => l.type === 'request')
      const parseErrors = lines.filter((l) => l.type !== 'request')
      for (const line of parseErrors) assert.match(String(line.detail), /^HPE_/)
      if (rule === 'parser') {
        // llhttp stops at the error: no request object, the hidden request is never parsed.
        assert.equal(requests.length, 0)
        assert.equal(parseErrors.length, 1)
      } else {
        assert.equal(requests[0]?.detail, rule)
        // Node parses a pipelined hidden request and runs the handler for it although the 400
        // closes the connection: it must be refused too, never forwarded.
        for (const later of requests.slice(1)) assert.equal(later.detail, 'pipelined_after_framing_error')
      }
    })
  }
})

describe('HTTP/2 framing through the gateway', { timeout: 60_000 }, () => {
  const base: [string, string][] = [[':method', 'POST'], [':scheme', 'https'], [':path', '/h2'], [':authority', 'localhost']]

  test('a well-formed request reaches the upstream (the checks below can see one)', async () => {
    const before = upstream.requests.length
    const result = await rawHttp2(tls(), [...base, ['content-length', '5']], 'hello')
    assert.equal(result.status, 200)
    assert.equal(upstream.requests.length, before + 1)
    assert.equal(upstream.requests[before]!.body.toString(), 'hello')
  })

  const cases: [string, [string, string][], string | undefined, string][] = [
    ['transfer-encoding', [...base, ['transfer-encoding', 'chunked']], '0\r\n\r\n', 'reset'],
    ['connection', [...base, ['connection', 'close']], undefined, 'reset'],
    ['upgrade: h2c', [...base, ['upgrade', 'h2c']], undefined, 'reset'],
    ['te: gzip', [...base, ['te', 'gzip']], undefined, 'reset'],
    ['two content-length', [...base, ['content-length', '5'], ['content-length', '5']], 'hello', 'reset'],
    ['content-length shorter than the body', [...base, ['content-length', '2']], 'hello', 'reset'],
    ['content-length: 05', [...base, ['content-length', '05']], 'hello', 'invalid_content_length'],
    ['http2-settings', [...base, ['http2-settings', 'AAMAAABkAARAAAAAAAIAAAAA']], undefined, 'http2_settings'],
    ['obs-text in a value', [...base, ['x-a', 'a\x80b']], undefined, 'invalid_header_value'],
    ['host differing from :authority', [...base, ['host', 'other.example']], undefined, 'host_authority_mismatch'],
    [':scheme http', [[':method', 'GET'], [':scheme', 'http'], [':path', '/h2'], [':authority', 'localhost']], undefined, 'invalid_scheme'],
  ]
  for (const [name, fields, body, expected] of cases) {
    test(`refuses ${name} and nothing reaches the upstream`, async () => {
      const before = upstream.requests.length
      const logsBefore = gw.logs.length
      const result = await rawHttp2(tls(), fields, body)
      await settle()
      assert.equal(upstream.requests.length, before, `nothing reached the upstream: ${JSON.stringify(upstream.requests.slice(before).map((r) => [r.url, r.headers['content-length'], r.body.toString()]))}`)
      if (expected === 'reset') {
        // nghttp2 resets the stream before a request exists, or the gateway's stream errors mid-body.
        assert.ok(result.frames.some((f) => f.startsWith('RST_STREAM')) || result.status === 400, `frames: ${result.frames.join(',')}`)
        return
      }
      assert.equal(result.status, 400, `frames: ${result.frames.join(',')}`)
      const lines = gw.logs.slice(logsBefore).filter((l) => l.reason === 'bad_request')
      assert.equal(lines.length, 1)
      assert.equal(lines[0]!.detail, expected)
    })
  }
})
