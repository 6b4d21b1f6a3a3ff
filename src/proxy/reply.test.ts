import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import { connect, type AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { isReason, reasons, type Denial, type Reason } from '../shared/reasons.js'
import { problemType, sendDenial } from './reply.js'

const SECRET_DETAIL = 'detail-for-the-log-only'

/** The server answers `/<reason>` with that denial; a few paths exercise special cases. */
function handler(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x')
  const name = url.pathname.slice(1)
  if (name === 'already-started') {
    const h1 = res as http.ServerResponse
    h1.writeHead(200, { 'content-type': 'text/plain' })
    h1.write('partial')
    setTimeout(() => sendDenial(res, { reason: 'upstream_reset' }, 'rid-1'), 20)
    return
  }
  const reason: Reason = isReason(name) ? name : 'internal_error'
  const denial: Denial = {
    reason,
    detail: SECRET_DETAIL,
    headers: url.searchParams.has('allow')
      ? { allow: 'GET, HEAD', 'Content-Type': 'text/html', 'X-Request-Id': 'forged' }
      : url.searchParams.has('close')
        ? { Connection: 'close' }
        : undefined,
  }
  sendDenial(res, denial, url.searchParams.get('id') ?? 'req-123')
}

let server: http.Server
let base: string
before(async () => {
  server = http.createServer({ keepAliveTimeout: 1000 }, handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => {
  server.closeAllConnections()
  server.close()
})

test('renders every reason as problem+json with its status, and never the detail', { timeout: 10_000 }, async () => {
  for (const reason of Object.keys(reasons) as Reason[]) {
    const res = await fetch(`${base}/${reason}`)
    const text = await res.text()
    assert.equal(res.status, reasons[reason].status, reason)
    assert.equal(res.headers.get('content-type'), 'application/problem+json')
    assert.equal(res.headers.get('cache-control'), 'no-store')
    assert.equal(res.headers.get('x-request-id'), 'req-123')
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(text))
    assert.deepEqual(JSON.parse(text), {
      type: `urn:portcullis:error:${reason}`,
      title: reasons[reason].title,
      status: reasons[reason].status,
      reason,
      requestId: 'req-123',
    })
    assert.equal(problemType(reason), `urn:portcullis:error:${reason}`)
    assert.ok(!text.includes(SECRET_DETAIL))
  }
})

test('adds the denial headers but never lets them replace ours', { timeout: 5_000 }, async () => {
  const res = await fetch(`${base}/method_not_allowed?allow`)
  await res.text()
  assert.equal(res.status, 405)
  assert.equal(res.headers.get('allow'), 'GET, HEAD')
  assert.equal(res.headers.get('content-type'), 'application/problem+json')
  assert.equal(res.headers.get('x-request-id'), 'req-123')
})

test('escapes the request id in the body and leaves an unsafe one out of the headers', { timeout: 5_000 }, async () => {
  const id = 'a"b\\c é'
  const res = await fetch(`${base}/route_not_found?id=${encodeURIComponent(id)}`)
  const body = (await res.json()) as { requestId: string }
  assert.equal(body.requestId, id)
  assert.equal(res.headers.get('x-request-id'), null)
})

/** Sends raw HTTP/1.1 and returns the response head and whether the server closed the connection. */
async function raw(request: string): Promise<{ head: string; closedByServer: boolean }> {
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  socket.setEncoding('latin1')
  let data = ''
  socket.on('data', (chunk: string) => (data += chunk))
  socket.write(request)
  const closed = once(socket, 'end').then(() => true)
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300))
  const closedByServer = await Promise.race([closed, timeout])
  socket.destroy()
  return { head: data.split('\r\n\r\n')[0]!.toLowerCase(), closedByServer }
}

test('closes the HTTP/1.1 connection after framing reasons', { timeout: 5_000 }, async () => {
  for (const reason of ['bad_request', 'payload_too_large', 'request_timeout']) {
    const { head, closedByServer } = await raw(`GET /${reason} HTTP/1.1\r\nHost: x\r\n\r\n`)
    assert.ok(head.includes('connection: close'), reason)
    assert.equal(closedByServer, true, reason)
  }
})

test('closes the HTTP/1.1 connection when the denial asks for it', { timeout: 5_000 }, async () => {
  const { head, closedByServer } = await raw('GET /uri_too_long?close HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.ok(head.startsWith('http/1.1 414'))
  assert.ok(head.includes('connection: close'))
  assert.equal(closedByServer, true)
})

test('keeps the HTTP/1.1 connection for other reasons when no body is pending', { timeout: 5_000 }, async () => {
  const { head, closedByServer } = await raw('GET /route_not_found HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.ok(head.startsWith('http/1.1 404'))
  assert.ok(head.includes('connection: keep-alive'))
  assert.equal(closedByServer, false)
})

test('closes the HTTP/1.1 connection when the request body was not read', { timeout: 5_000 }, async () => {
  const big = await raw('POST /identity_denied HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n' + 'x'.repeat(1000))
  assert.ok(big.head.startsWith('http/1.1 403'))
  assert.ok(big.head.includes('connection: close'))
  assert.equal(big.closedByServer, true)
  const chunked = await raw('POST /identity_denied HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
  assert.ok(chunked.head.includes('connection: close'))
  assert.equal(chunked.closedByServer, true)
})

test('destroys the stream when the response had already started', { timeout: 5_000 }, async () => {
  const res = await fetch(`${base}/already-started`)
  assert.equal(res.status, 200)
  await assert.rejects(res.text())
})

test('renders over HTTP/2 without connection headers', { timeout: 5_000 }, async () => {
  const h2 = http2.createServer(handler)
  h2.listen(0, '127.0.0.1')
  await once(h2, 'listening')
  const client = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`)
  try {
    const req = client.request({ ':path': '/payload_too_large?close', ':method': 'GET' })
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders]
    req.setEncoding('utf8')
    let body = ''
    for await (const chunk of req) body += chunk
    assert.equal(headers[':status'], 413)
    assert.equal(headers['connection'], undefined)
    assert.equal(headers['content-type'], 'application/problem+json')
    assert.equal((JSON.parse(body) as { reason: string }).reason, 'payload_too_large')
  } finally {
    client.close()
    h2.close()
  }
})
