import assert from 'node:assert/strict'
import { createSecureServer, type Http2SecureServer } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { TestPki, pem } from '../../test/harness/pki.js'
import { rawHttp1, rawHttp2 } from '../../test/integration/raw-clients.js'
import type { Denial } from '../shared/reasons.js'
import { checkFraming, checkHeaderList, isValidAuthority, parseContentLength, type FramingRule } from './framing.js'

const h1 = { isHttp2: false, isHttp10: false, target: '/' }
const h2 = { isHttp2: true, isHttp10: false, target: '/' }
const h2base = [':method', 'POST', ':scheme', 'https', ':path', '/', ':authority', 'api.example']

describe('parseContentLength', () => {
  test('accepts canonical decimal up to 2^53-1', () => {
    assert.equal(parseContentLength('0'), 0)
    assert.equal(parseContentLength('5'), 5)
    assert.equal(parseContentLength('9007199254740991'), Number.MAX_SAFE_INTEGER)
  })
  for (const bad of ['', '05', '00', '+5', '-1', ' 5', '5 ', '0x5', '1e3', '5,5', '9007199254740992', '18446744073709551616', '٥']) {
    test(`refuses ${JSON.stringify(bad)}`, () => assert.equal(parseContentLength(bad), undefined))
  }
})

describe('isValidAuthority', () => {
  for (const ok of ['a', 'api.example.com', 'api.example.com:8443', '127.0.0.1', '127.0.0.1:1', '[::1]', '[::1]:443', 'x_y-z~1']) {
    test(`accepts ${ok}`, () => assert.equal(isValidAuthority(ok), true))
  }
  for (const bad of ['', ':443', 'a:', 'a:65536', 'a:123456', 'a:+1', 'u@a', 'a b', 'a/b', '[::1', '[nope]', '[::1]x', 'a,b', 'é.example', 'a%2eb']) {
    test(`refuses ${JSON.stringify(bad)}`, () => assert.equal(isValidAuthority(bad), false))
  }
})

describe('checkHeaderList (rules on header lists, HTTP/1)', () => {
  const cases: [string, string[], FramingRule | undefined, Partial<typeof h1>?][] = [
    ['plain GET', ['Host', 'a'], undefined],
    ['canonical CL', ['Host', 'a', 'Content-Length', '5'], undefined],
    ['chunked', ['Host', 'a', 'Transfer-Encoding', 'chunked'], undefined],
    ['chunked in capitals (case-insensitive coding name)', ['Host', 'a', 'transfer-encoding', 'CHUNKED'], undefined],
    ['GET with a CL body', ['Host', 'a', 'Content-Length', '3'], undefined],
    ['TE: trailers on HTTP/1', ['Host', 'a', 'TE', 'trailers'], undefined],
    ['Upgrade: websocket (dropped later, not refused)', ['Host', 'a', 'Connection', 'Upgrade', 'Upgrade', 'websocket'], undefined],
    ['CL and TE', ['Host', 'a', 'Content-Length', '5', 'Transfer-Encoding', 'chunked'], 'content_length_with_transfer_encoding'],
    ['TE and CL', ['Host', 'a', 'Transfer-Encoding', 'chunked', 'Content-Length', '5'], 'content_length_with_transfer_encoding'],
    ['two equal CL', ['Host', 'a', 'Content-Length', '5', 'content-length', '5'], 'duplicate_content_length'],
    ['CL 05', ['Host', 'a', 'Content-Length', '05'], 'invalid_content_length'],
    ['CL +5', ['Host', 'a', 'Content-Length', '+5'], 'invalid_content_length'],
    ['CL empty', ['Host', 'a', 'Content-Length', ''], 'invalid_content_length'],
    ['CL over 2^53', ['Host', 'a', 'Content-Length', '9007199254740993'], 'invalid_content_length'],
    ['TE ,chunked', ['Host', 'a', 'Transfer-Encoding', ',chunked'], 'unsupported_transfer_encoding'],
    ['TE chunked, identity', ['Host', 'a', 'Transfer-Encoding', 'chunked, identity'], 'unsupported_transfer_encoding'],
    ['TE gzip, chunked', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked'], 'unsupported_transfer_encoding'],
    ['TE "chunked " kept by a lenient parser', ['Host', 'a', 'Transfer-Encoding', 'chunked '], 'unsupported_transfer_encoding'],
    ['TE identity', ['Host', 'a', 'Transfer-Encoding', 'identity'], 'unsupported_transfer_encoding'],
    ['TE empty', ['Host', 'a', 'Transfer-Encoding', ''], 'unsupported_transfer_encoding'],
    ['TE on two lines', ['Host', 'a', 'Transfer-Encoding', 'identity', 'Transfer-Encoding', 'chunked'], 'duplicate_transfer_encoding'],
    ['TE on HTTP/1.0', ['Host', 'a', 'Transfer-Encoding', 'chunked'], 'transfer_encoding_in_http10', { isHttp10: true }],
    ['obs-fold remnant (CRLF SP) in a value', ['Host', 'a', 'X-A', 'a\r\n b'], 'invalid_header_value'],
    ['NUL in value', ['Host', 'a', 'X-A', 'a\0b'], 'invalid_header_value'],
    ['CR in value', ['Host', 'a', 'X-A', 'a\rb'], 'invalid_header_value'],
    ['LF in value', ['Host', 'a', 'X-A', 'a\nb'], 'invalid_header_value'],
    ['DEL in value', ['Host', 'a', 'X-A', 'a\x7fb'], 'invalid_header_value'],
    ['obs-text 0x80 in value', ['Host', 'a', 'X-A', 'a\x80b'], 'invalid_header_value'],
    ['obs-text 0xff in value', ['Host', 'a', 'X-A', '\xff'], 'invalid_header_value'],
    ['space in name', ['Host', 'a', 'X A', 'b'], 'invalid_header_name'],
    ['trailing space in name (space before colon)', ['Host', 'a', 'Content-Length ', '5'], 'invalid_header_name'],
    ['empty name', ['Host', 'a', '', 'b'], 'invalid_header_name'],
    ['obs-text in name', ['Host', 'a', 'X-\xe9', 'b'], 'invalid_header_name'],
    ['Upgrade: h2c', ['Host', 'a', 'Connection', 'Upgrade, HTTP2-Settings', 'Upgrade', 'h2c'], 'h2c_upgrade'],
    ['Upgrade: H2C among others', ['Host', 'a', 'Upgrade', 'websocket, H2C'], 'h2c_upgrade'],
    ['HTTP2-Settings alone', ['Host', 'a', 'HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'], 'http2_settings'],
    ['Connection naming Content-Length', ['Host', 'a', 'Connection', 'close, Content-Length', 'Content-Length', '5'], 'connection_nominates_framing_header'],
    ['Connection naming Host', ['Host', 'a', 'Connection', 'host'], 'connection_nominates_framing_header'],
    ['no Host', ['X-A', 'b'], 'missing_host'],
    ['no Host on HTTP/1.0', [], 'missing_host', { isHttp10: true }],
    ['two Host lines', ['Host', 'a', 'host', 'b'], 'duplicate_host'],
    ['two equal Host lines', ['Host', 'a', 'Host', 'a'], 'duplicate_host'],
    ['Host with userinfo', ['Host', 'u@a'], 'invalid_host'],
    ['Host with a path', ['Host', 'a/b'], 'invalid_host'],
    ['empty Host', ['Host', ''], 'invalid_host'],
    ['absolute-form matching Host', ['Host', 'a'], undefined, { target: 'https://a/x' }],
    ['absolute-form with default port', ['Host', 'A'], undefined, { target: 'https://a:443?q' }],
    ['absolute-form naming another host', ['Host', 'a'], 'host_authority_mismatch', { target: 'https://b/x' }],
    ['absolute-form http://', ['Host', 'a'], 'invalid_request_target', { target: 'http://a/x' }],
    ['absolute-form with userinfo', ['Host', 'a'], 'invalid_request_target', { target: 'https://u@a/x' }],
    ['asterisk-form', ['Host', 'a'], 'invalid_request_target', { target: '*' }],
  ]
  for (const [name, raw, rule, line] of cases) {
    test(`${rule ? `refuses (${rule})` : 'accepts'}: ${name}`, () => {
      const denial = checkHeaderList(raw, { ...h1, ...line })
      assert.equal(denial?.detail, rule)
      if (rule) {
        assert.equal(denial?.reason, 'bad_request')
        assert.deepEqual(denial?.headers, { connection: 'close' }, 'HTTP/1 framing denials close the connection')
      }
    })
  }
})

describe('checkHeaderList (rules on header lists, HTTP/2)', () => {
  const cases: [string, string[], FramingRule | undefined][] = [
    ['plain request', [...h2base], undefined],
    ['canonical content-length', [...h2base, 'content-length', '5'], undefined],
    ['te: trailers', [...h2base, 'te', 'trailers'], undefined],
    ['host equal to :authority', [...h2base, 'host', 'API.example:443'], undefined],
    ['host alone', [':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'a'], undefined],
    ['transfer-encoding', [...h2base, 'transfer-encoding', 'chunked'], 'transfer_encoding_in_http2'],
    ['connection', [...h2base, 'connection', 'close'], 'connection_header_in_http2'],
    ['keep-alive', [...h2base, 'keep-alive', 'timeout=5'], 'connection_header_in_http2'],
    ['proxy-connection', [...h2base, 'proxy-connection', 'keep-alive'], 'connection_header_in_http2'],
    ['upgrade', [...h2base, 'upgrade', 'h2c'], 'connection_header_in_http2'],
    ['te: gzip', [...h2base, 'te', 'gzip'], 'connection_header_in_http2'],
    ['http2-settings', [...h2base, 'http2-settings', 'AAMA'], 'http2_settings'],
    ['content-length 05', [...h2base, 'content-length', '05'], 'invalid_content_length'],
    ['two content-length', [...h2base, 'content-length', '5', 'content-length', '5'], 'duplicate_content_length'],
    ['obs-text value', [...h2base, 'x-a', 'a\x80b'], 'invalid_header_value'],
    ['host differing from :authority', [...h2base, 'host', 'b'], 'host_authority_mismatch'],
    [':authority with userinfo', [':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'u@a'], 'invalid_host'],
    [':scheme http', [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'a'], 'invalid_scheme'],
    ['no authority at all', [':method', 'GET', ':scheme', 'https', ':path', '/'], 'missing_host'],
  ]
  for (const [name, raw, rule] of cases) {
    test(`${rule ? `refuses (${rule})` : 'accepts'}: ${name}`, () => {
      const denial = checkHeaderList(raw, h2)
      assert.equal(denial?.detail, rule)
      if (rule) assert.equal(denial?.headers, undefined, 'no connection header on HTTP/2')
    })
  }
})

/**
 * The same rules behind Node's real parsers. Each payload is sent over a real
 * TLS socket to the server kind the listener uses. "node" means llhttp or
 * nghttp2 refuses it before any handler runs (the probe this module's doc
 * records); a change there makes these tests fail so the guard gets revisited.
 */
describe('checkFraming behind Node 20 parsers', { timeout: 60_000 }, () => {
  let server: Http2SecureServer
  let port: number
  const seen: { url: string | undefined; denial: Denial | undefined }[] = []

  before(async () => {
    const pki = new TestPki()
    const ca = pki.root('framing-ca')
    const leaf = pki.server('localhost', ca)
    server = createSecureServer({ key: pem(leaf.key), cert: pem(leaf.cert), allowHTTP1: true }, (req, res) => {
      const denial = checkFraming(req)
      seen.push({ url: req.url, denial })
      // Answer without reading the body, as the gateway does on a denial.
      if (denial) {
        res.writeHead(400, { ...denial.headers })
        res.end(denial.detail ?? '')
      } else {
        req.resume()
        req.on('end', () => res.end('ok'))
        req.on('error', () => {})
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const H = 'Host: api.example\r\n'
  const http1: [string, string, FramingRule | 'node' | undefined][] = [
    ['plain POST', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`, undefined],
    ['chunked POST', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, undefined],
    ['GET with a body', `GET / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`, undefined],
    ['CL + TE', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'node'],
    ['two equal CL', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 'node'],
    ['CL +5', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 'node'],
    ['CL 05', `POST / HTTP/1.1\r\n${H}Content-Length: 05\r\n\r\nhello`, 'invalid_content_length'],
    ['CL 2^53+1', `POST / HTTP/1.1\r\n${H}Content-Length: 9007199254740993\r\n\r\nhello`, 'invalid_content_length'],
    ['TE ,chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n`, 'unsupported_transfer_encoding'],
    ['TE gzip, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 'unsupported_transfer_encoding'],
    ['TE chunked, identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 'node'],
    ['TE identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\nhello`, 'unsupported_transfer_encoding'],
    ['TE on two lines', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'duplicate_transfer_encoding'],
    ['TE empty', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, 'unsupported_transfer_encoding'],
    ['TE on HTTP/1.0', `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'transfer_encoding_in_http10'],
    ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, 'node'],
    ['NUL in value', `GET / HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, 'node'],
    ['CR in value', `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 'node'],
    ['obs-text in value', `GET / HTTP/1.1\r\n${H}X-A: a\x80b\r\n\r\n`, 'invalid_header_value'],
    ['space before colon', `POST / HTTP/1.1\r\n${H}Content-Length : 5\r\n\r\nhello`, 'node'],
    ['Upgrade: h2c', `GET / HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`, 'h2c_upgrade'],
    ['HTTP2-Settings alone', `GET / HTTP/1.1\r\n${H}HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`, 'http2_settings'],
    ['two Host lines', `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 'duplicate_host'],
    ['no Host', `GET / HTTP/1.1\r\n\r\n`, 'missing_host'],
    ['absolute-form naming another host', `GET https://b/x HTTP/1.1\r\nHost: a\r\n\r\n`, 'host_authority_mismatch'],
    ['HTTP/0.9 request line', `GET /\r\n\r\n`, 'unsupported_http_version'],
    ['HTTP/2.0 request line over HTTP/1', `GET / HTTP/2.0\r\n${H}\r\n`, 'unsupported_http_version'],
    ['Connection naming Content-Length', `POST / HTTP/1.1\r\n${H}Connection: close, Content-Length\r\nContent-Length: 5\r\n\r\nhello`, 'connection_nominates_framing_header'],
  ]
  for (const [name, payload, expected] of http1) {
    const what = expected === undefined ? 'passes' : expected === 'node' ? 'is refused by Node itself' : `is refused (${expected})`
    test(`HTTP/1.1 ${name} ${what}`, async () => {
      seen.length = 0
      const result = await rawHttp1({ port, idleMs: 800 }, payload)
      if (expected === 'node') {
        assert.equal(seen.length, 0, 'the handler must not run')
        return
      }
      assert.equal(seen.length, 1)
      assert.equal(seen[0]!.denial?.detail, expected)
      if (expected) {
        assert.equal(result.status, 400)
        assert.equal(result.closedByServer, true, 'the connection is closed after a framing denial')
      }
    })
  }

  test('HTTP/1.1 refuses a request pipelined after a refused one on the same connection, not on others', async () => {
    seen.length = 0
    const hidden = `GET /hidden HTTP/1.1\r\n${H}\r\n`
    await rawHttp1({ port, idleMs: 800 }, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n${hidden}`)
    assert.deepEqual(
      seen.map((s) => [s.url, s.denial?.detail]),
      [['/', 'unsupported_transfer_encoding'], ['/hidden', 'pipelined_after_framing_error']],
      'Node runs the handler for the pipelined request; the guard must refuse it',
    )
    seen.length = 0
    const fresh = await rawHttp1({ port, idleMs: 800 }, hidden)
    assert.equal(fresh.status, 200)
    assert.deepEqual(seen.map((s) => [s.url, s.denial]), [['/hidden', undefined]])
  })

  const base: [string, string][] = [[':method', 'POST'], [':scheme', 'https'], [':path', '/'], [':authority', 'api.example']]
  const http2: [string, [string, string][], string | undefined, FramingRule | 'node' | undefined][] = [
    ['plain POST', [...base, ['content-length', '5']], 'hello', undefined],
    ['te: trailers', [...base, ['te', 'trailers']], undefined, undefined],
    ['transfer-encoding', [...base, ['transfer-encoding', 'chunked']], 'hello', 'node'],
    ['connection', [...base, ['connection', 'close']], undefined, 'node'],
    ['upgrade: h2c', [...base, ['upgrade', 'h2c']], undefined, 'node'],
    ['te: gzip', [...base, ['te', 'gzip']], undefined, 'node'],
    ['two content-length', [...base, ['content-length', '5'], ['content-length', '5']], 'hello', 'node'],
    ['content-length 05', [...base, ['content-length', '05']], 'hello', 'invalid_content_length'],
    ['http2-settings', [...base, ['http2-settings', 'AAMAAABkAARAAAAAAAIAAAAA']], undefined, 'http2_settings'],
    ['obs-text in a value', [...base, ['x-a', 'a\x80b']], undefined, 'invalid_header_value'],
    ['host differing from :authority', [...base, ['host', 'other.example']], undefined, 'host_authority_mismatch'],
    [':authority with userinfo', [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'u@api.example']], undefined, 'invalid_host'],
    [':scheme http', [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'api.example']], undefined, 'invalid_scheme'],
  ]
  for (const [name, fields, body, expected] of http2) {
    const what = expected === undefined ? 'passes' : expected === 'node' ? 'is refused by Node itself' : `is refused (${expected})`
    test(`HTTP/2 ${name} ${what}`, async () => {
      seen.length = 0
      const result = await rawHttp2({ port, idleMs: 800 }, fields, body)
      if (expected === 'node') {
        assert.equal(seen.length, 0, 'the handler must not run')
        assert.ok(result.frames.some((f) => f.startsWith('RST_STREAM')), `stream reset, got ${result.frames.join(',')}`)
        return
      }
      assert.equal(seen.length, 1)
      assert.equal(seen[0]!.denial?.detail, expected)
      assert.equal(result.status, expected ? 400 : 200)
    })
  }
})
