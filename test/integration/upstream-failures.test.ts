/**
 * Upstream faults against real servers on 127.0.0.1: which failures are
 * retried (and where), timeouts, invalid responses, cancellation reaching the
 * upstream socket, and that client-side faults never count against a target.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { PassThrough, Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Upstream, type UpstreamRequest, type UpstreamResult } from '../../src/proxy/upstream/upstream.js'
import { createTestUpstream, upstreamRequest } from '../harness/upstream-client.js'

interface TestServer {
  readonly url: string
  readonly port: number
  readonly hits: string[]
  /** Resolves each time a server-side request socket closes. */
  readonly closedSockets: number[]
  close(): Promise<void>
}

const cleanups: (() => Promise<void>)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c()
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end('ok')): Promise<TestServer> {
  const hits: string[] = []
  const closedSockets: number[] = []
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`)
    req.socket.once('close', () => closedSockets.push(Date.now()))
    handler(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const close = () => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  }
  cleanups.push(close)
  return { url: `http://127.0.0.1:${port}`, port, hits, closedSockets, close }
}

/** A raw TCP server: for invalid HTTP and for peers that never answer a handshake. */
async function rawServer(onSocket: (s: Socket) => void): Promise<{ port: number }> {
  const sockets = new Set<Socket>()
  const server = createNetServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    onSocket(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port }
}

async function closedPortUrl(): Promise<string> {
  const s = await serve()
  await s.close()
  return s.url
}

function upstream(cfg: Record<string, unknown>): Upstream {
  const u = createTestUpstream(cfg)
  cleanups.push(() => u.destroy())
  return u
}

function request(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return upstreamRequest(over, 2000)
}

async function drain(r: UpstreamResult): Promise<string> {
  assert.equal(r.ok, true, r.ok ? '' : `unexpected denial ${r.denial.reason}`)
  if (!r.ok) return ''
  let text = ''
  for await (const chunk of r.body) text += String(chunk)
  return text
}

function reasonOf(r: UpstreamResult): string {
  return r.ok ? `ok ${r.statusCode}` : r.denial.reason
}

/** The request body as text; '' if the client side went away mid-body. */
async function readAll(req: IncomingMessage): Promise<string> {
  let text = ''
  try {
    for await (const chunk of req) text += String(chunk)
  } catch {
    return ''
  }
  return text
}

describe('retries', { timeout: 20_000 }, () => {
  test('a refused connection is retried on the second target', async () => {
    const good = await serve()
    const u = upstream({ targets: [{ url: await closedPortUrl() }, { url: good.url }] })
    const r = await u.request(request({ retries: 1 }))
    assert.equal(r.ok, true)
    assert.equal(r.target, good.url)
    assert.equal(r.attempts, 2)
    await drain(r)
  })

  test('a POST whose body was not yet read is retried after a connect failure, body intact', async () => {
    const good = await serve(async (req, res) => res.end(`got ${await readAll(req)}`))
    const u = upstream({ targets: [{ url: await closedPortUrl() }, { url: good.url }] })
    const body = Readable.from([Buffer.from('order-'), Buffer.from('42')])
    const r = await u.request(request({ method: 'POST', body, headers: { 'content-length': '8' }, retries: 1 }))
    assert.equal(r.attempts, 2)
    assert.equal(await drain(r), 'got order-42')
  })

  test('without retries a connect failure is answered upstream_connect_failed', async () => {
    const u = upstream({ targets: [{ url: await closedPortUrl() }, { url: (await serve()).url }] })
    const r = await u.request(request({ retries: 0 }))
    assert.equal(reasonOf(r), 'upstream_connect_failed')
    assert.equal(r.attempts, 1)
  })

  test('a POST with a body is not retried after the upstream reset the connection', async () => {
    const resetting = await serve((req) => req.socket.destroy())
    const other = await serve()
    const u = upstream({ targets: [{ url: resetting.url }, { url: other.url }] })
    const body = Readable.from([Buffer.alloc(64 * 1024, 'x')])
    const r = await u.request(request({ method: 'POST', body, headers: { 'content-length': String(64 * 1024) }, retries: 2 }))
    assert.equal(reasonOf(r), 'upstream_reset')
    assert.equal(r.attempts, 1)
    assert.equal(other.hits.length, 0)
  })

  test('a bodiless POST is not retried after a reset either (not idempotent)', async () => {
    const resetting = await serve((req) => req.socket.destroy())
    const other = await serve()
    const u = upstream({ targets: [{ url: resetting.url }, { url: other.url }] })
    const r = await u.request(request({ method: 'POST', retries: 2 }))
    assert.equal(reasonOf(r), 'upstream_reset')
    assert.equal(other.hits.length, 0)
  })

  test('a GET without a body is retried on another target after a reset before any response', async () => {
    const resetting = await serve((req) => req.socket.destroy())
    const other = await serve()
    const u = upstream({ targets: [{ url: resetting.url }, { url: other.url }] })
    const r = await u.request(request({ retries: 1 }))
    assert.equal(r.target, other.url)
    assert.equal(r.attempts, 2)
    assert.equal(resetting.hits.length, 1)
    await drain(r)
  })

  test('nothing is retried once response headers arrived: a mid-body reset errors the body', async () => {
    const breaking = await serve((_q, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('partial')
      setTimeout(() => res.socket?.destroy(), 20)
    })
    const other = await serve()
    const u = upstream({ targets: [{ url: breaking.url }, { url: other.url }] })
    const r = await u.request(request({ retries: 3 }))
    assert.equal(r.ok, true)
    assert.equal(r.attempts, 1)
    await assert.rejects(drain(r), (err: NodeJS.ErrnoException) => ['UND_ERR_SOCKET', 'ECONNRESET'].includes(err.code ?? ''))
    assert.equal(other.hits.length, 0)
  })
})

describe('timeouts and invalid answers', { timeout: 20_000 }, () => {
  test('no response headers in time is upstream_timeout, and is not retried', async () => {
    const silent = await serve(() => {})
    const silent2 = await serve(() => {})
    const u = upstream({ targets: [{ url: silent.url }, { url: silent2.url }] })
    const started = Date.now()
    const r = await u.request(request({ responseHeadersTimeoutMs: 200, retries: 2 }))
    const elapsed = Date.now() - started
    assert.equal(reasonOf(r), 'upstream_timeout')
    assert.equal(r.attempts, 1)
    assert.ok(elapsed >= 180 && elapsed < 2000, `took ${elapsed}ms`)
  })

  test('a response body that goes quiet fails with a body timeout after idleTimeoutMs', async () => {
    const stalling = await serve((_q, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('start')
    })
    const u = upstream({ targets: [{ url: stalling.url }] })
    const r = await u.request(request({ idleTimeoutMs: 200 }))
    await assert.rejects(drain(r), (err: NodeJS.ErrnoException) => err.code === 'UND_ERR_BODY_TIMEOUT')
  })

  test('a client that stops sending its body is request_timeout, not the target\'s fault', async () => {
    const s = await serve(async (req, res) => res.end(await readAll(req)))
    const u = upstream({ targets: [{ url: s.url }], healthCheck: { passive: { consecutiveFailures: 1 } } })
    const body = new PassThrough()
    body.write('first bytes')
    const r = await u.request(request({ method: 'POST', body, idleTimeoutMs: 200, responseHeadersTimeoutMs: 5000 }))
    assert.equal(reasonOf(r), 'request_timeout')
    // Not ejected: the next request still reaches the target.
    const next = await u.request(request())
    assert.equal(await drain(next), '')
  })

  test('an upstream that stops reading the request body is upstream_timeout', async () => {
    const s = await serve(() => {}) // never reads the body
    const u = upstream({ targets: [{ url: s.url }] })
    const body = new PassThrough()
    const chunk = Buffer.alloc(1024 * 1024, 'y')
    for (let i = 0; i < 16; i++) body.write(chunk)
    const r = await u.request(request({ method: 'PUT', body, idleTimeoutMs: 300, responseHeadersTimeoutMs: 10_000 }))
    assert.equal(reasonOf(r), 'upstream_timeout')
    body.destroy()
  })

  test('a response that is not HTTP is upstream_bad_response', async () => {
    const { port } = await rawServer((s) => s.once('data', () => s.end('NOT-HTTP garbage\r\n\r\n')))
    const u = upstream({ targets: [{ url: `http://127.0.0.1:${port}` }] })
    assert.equal(reasonOf(await u.request(request())), 'upstream_bad_response')
  })

  test('a response with a malformed Content-Length is upstream_bad_response', async () => {
    const { port } = await rawServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nabc')))
    const u = upstream({ targets: [{ url: `http://127.0.0.1:${port}` }] })
    assert.equal(reasonOf(await u.request(request())), 'upstream_bad_response')
  })
})

describe('cancellation', { timeout: 20_000 }, () => {
  test('aborting mid-response closes the upstream request socket and errors the body', async () => {
    const streaming = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('tick')
      const timer = setInterval(() => res.write('tick'), 10)
      res.on('close', () => clearInterval(timer))
    })
    const u = upstream({ targets: [{ url: streaming.url }] })
    const controller = new AbortController()
    const r = await u.request(request({ signal: controller.signal }))
    assert.equal(r.ok, true)
    if (!r.ok) return
    const bodyError = new Promise<unknown>((resolve) => r.body.once('error', resolve))
    r.body.resume()
    await sleep(50)
    assert.equal(streaming.closedSockets.length, 0)
    controller.abort()
    assert.ok(await bodyError)
    const deadline = Date.now() + 2000
    while (streaming.closedSockets.length === 0 && Date.now() < deadline) await sleep(10)
    assert.equal(streaming.closedSockets.length, 1, 'the upstream saw its request socket close')
  })

  test('aborting before the response answers client_closed and closes the upstream socket', async () => {
    const silent = await serve(() => {})
    const u = upstream({ targets: [{ url: silent.url }], healthCheck: { passive: { consecutiveFailures: 1 } } })
    const controller = new AbortController()
    const pending = u.request(request({ signal: controller.signal }))
    while (silent.hits.length === 0) await sleep(5)
    controller.abort()
    assert.equal(reasonOf(await pending), 'client_closed')
    const deadline = Date.now() + 2000
    while (silent.closedSockets.length === 0 && Date.now() < deadline) await sleep(10)
    assert.equal(silent.closedSockets.length, 1)
  })

  test('aborting while the connection is still being set up answers at once', async () => {
    // Accepts TCP but never completes the TLS handshake.
    const { port } = await rawServer(() => {})
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${port}` }], connectTimeout: '5s' })
    const controller = new AbortController()
    const started = Date.now()
    const pending = u.request(request({ signal: controller.signal }))
    await sleep(50)
    controller.abort()
    assert.equal(reasonOf(await pending), 'client_closed')
    assert.ok(Date.now() - started < 1000)
  })

  test('destroying the response body (client left) aborts the upstream request', async () => {
    const streaming = await serve((_q, res) => {
      res.writeHead(200)
      const timer = setInterval(() => res.write('x'.repeat(1000)), 5)
      res.on('close', () => clearInterval(timer))
    })
    const u = upstream({ targets: [{ url: streaming.url }] })
    const r = await u.request(request())
    assert.equal(r.ok, true)
    if (r.ok) r.body.destroy()
    const deadline = Date.now() + 2000
    while (streaming.closedSockets.length === 0 && Date.now() < deadline) await sleep(10)
    assert.equal(streaming.closedSockets.length, 1)
  })

  test('client aborts never eject a healthy target', async () => {
    const slow = await serve((_q, res) => setTimeout(() => res.end('late'), 200))
    const u = upstream({ targets: [{ url: slow.url }], healthCheck: { passive: { consecutiveFailures: 1 } } })
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController()
      const pending = u.request(request({ signal: controller.signal }))
      await sleep(20)
      controller.abort()
      assert.equal(reasonOf(await pending), 'client_closed')
    }
    assert.equal(await drain(await u.request(request())), 'late')
  })
})

describe('request shaping', { timeout: 20_000 }, () => {
  test('prepends the target path prefix and sets Host to the target (hostHeader: target)', async () => {
    const echo = await serve((req, res) => res.end(`${req.headers.host} ${req.url}`))
    const u = upstream({ targets: [{ url: `${echo.url}/base/` }] })
    const r = await u.request(request({ path: '/orders/7?x=1', headers: { host: 'spoofed.example' } }))
    assert.equal(await drain(r), `127.0.0.1:${echo.port} /base/orders/7?x=1`)
  })

  test('keeps the client Host with hostHeader: preserve', async () => {
    const echo = await serve((req, res) => res.end(String(req.headers.host)))
    const u = upstream({ targets: [{ url: echo.url }], hostHeader: 'preserve' })
    assert.equal(await drain(await u.request(request({ clientHost: 'api.example.com' }))), 'api.example.com')
  })

  test('reuses keep-alive connections instead of opening one per request', async () => {
    const ports = new Set<number>()
    const s = await serve((req, res) => {
      ports.add(req.socket.remotePort ?? 0)
      res.end('k')
    })
    const u = upstream({ targets: [{ url: s.url }] })
    for (let i = 0; i < 10; i++) await drain(await u.request(request()))
    // undici's Pool may open a second connection while the first is still being released.
    assert.ok(ports.size <= 2, `${ports.size} connections for 10 sequential requests`)
  })
})
