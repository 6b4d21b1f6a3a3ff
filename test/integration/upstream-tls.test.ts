/**
 * TLS to upstreams with real handshakes on 127.0.0.1 and openssl-made
 * certificates: mTLS, CA trust, server name, minimum version and SPKI pins
 * (pins computed by the openssl CLI, an independent judge).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type ServerOptions } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { TestPki, pem, type CaFiles, type CertFiles } from '../harness/pki.js'
import { type Upstream, type UpstreamRequest, type UpstreamResult } from '../../src/proxy/upstream/upstream.js'
import { createTestUpstream, upstreamRequest } from '../harness/upstream-client.js'
import { PIN_MISMATCH_CODE } from '../../src/proxy/upstream/classify.js'

let pki: TestPki
let upstreamCa: CaFiles
let gatewayCa: CaFiles
let rogueCa: CaFiles
let serverCert: CertFiles
let rsaServerCert: CertFiles
let gatewayClient: CertFiles
let rogueClient: CertFiles

const cleanups: (() => Promise<void>)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c()
})

before(() => {
  pki = new TestPki()
  upstreamCa = pki.root('upstream-ca')
  gatewayCa = pki.root('gateway-client-ca')
  rogueCa = pki.root('rogue-ca')
  serverCert = pki.server('orders-svc', upstreamCa)
  rsaServerCert = pki.server('billing-svc', upstreamCa, { keyType: 'rsa' })
  gatewayClient = pki.client('portcullis-gw', gatewayCa)
  rogueClient = pki.client('rogue-gw', rogueCa)
})

/** base64 SHA-256 of the DER SubjectPublicKeyInfo, computed by openssl alone. */
function opensslPin(certFile: string): string {
  const pubPem = execFileSync('openssl', ['x509', '-in', certFile, '-pubkey', '-noout'])
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: pubPem })
  const digest = execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der })
  return digest.toString('base64')
}

interface TlsServer {
  readonly port: number
  /** CN of the client certificate per request, '' when none. */
  readonly peers: string[]
  readonly hosts: string[]
  /** SNI per TLS connection ('' when none was sent). */
  readonly sni: string[]
}

async function tlsServer(cert: CertFiles, opts: Partial<ServerOptions> = {}): Promise<TlsServer> {
  const peers: string[] = []
  const hosts: string[] = []
  const sni: string[] = []
  const server = createServer({ cert: pem(cert.cert), key: pem(cert.key), ...opts }, (req, res) => {
    const socket = req.socket as TLSSocket
    peers.push(String(socket.getPeerCertificate().subject?.CN ?? ''))
    hosts.push(req.headers.host ?? '')
    res.end('secure hello')
  })
  server.on('secureConnection', (s: TLSSocket) => sni.push(typeof s.servername === 'string' ? s.servername : ''))
  server.on('tlsClientError', () => {})
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, peers, hosts, sni }
}

/** `openssl s_server -www` requiring a client certificate from the gateway CA; returns its port. */
async function opensslServer(): Promise<number> {
  const child = spawn(
    'openssl',
    ['s_server', '-accept', '127.0.0.1:0', '-cert', serverCert.cert, '-key', serverCert.key, '-CAfile', gatewayCa.cert, '-Verify', '1', '-verify_return_error', '-www'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill()
      await once(child, 'exit')
    }
  })
  return new Promise<number>((resolve, reject) => {
    let out = ''
    // Stays subscribed: the stream keeps flowing so s_server never blocks on its status output.
    child.stdout.on('data', (chunk: Buffer) => {
      out += String(chunk)
      const match = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(out)
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', () => reject(new Error('openssl s_server exited before listening')))
  })
}

function mtlsServer(opts: Partial<ServerOptions> = {}): Promise<TlsServer> {
  return tlsServer(serverCert, { ca: pem(gatewayCa.cert), requestCert: true, rejectUnauthorized: true, ...opts })
}

function upstream(cfg: Record<string, unknown>): Upstream {
  const u = createTestUpstream(cfg, { name: 'secure', baseDir: pki.dir })
  cleanups.push(() => u.destroy())
  return u
}

function request(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return upstreamRequest(over, 3000)
}

async function text(r: UpstreamResult): Promise<string> {
  assert.equal(r.ok, true, r.ok ? '' : `denied: ${r.denial.reason} (${r.denial.detail})`)
  if (!r.ok) return ''
  let out = ''
  for await (const chunk of r.body) out += String(chunk)
  return out
}

function reasonOf(r: UpstreamResult): string {
  return r.ok ? `ok ${r.statusCode}` : r.denial.reason
}

const withClientCert = () => ({ ca: [{ file: upstreamCa.cert }], cert: { file: gatewayClient.cert }, key: { file: gatewayClient.key } })

describe('upstream mTLS', { timeout: 30_000 }, () => {
  test('presents the client certificate to an upstream that requires one', async () => {
    const s = await mtlsServer()
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: withClientCert() })
    assert.equal(await text(await u.request(request())), 'secure hello')
    assert.deepEqual(s.peers, ['portcullis-gw'])
  })

  test('fails with upstream_tls_failed without a client certificate (TLS 1.3)', async () => {
    const s = await mtlsServer()
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }] } })
    const r = await u.request(request())
    assert.equal(reasonOf(r), 'upstream_tls_failed')
    assert.equal(s.peers.length, 0, 'no request reached the upstream')
  })

  test('fails with upstream_tls_failed without a client certificate (TLS 1.2, refused in the handshake)', async () => {
    const s = await mtlsServer({ maxVersion: 'TLSv1.2' })
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }] } })
    assert.equal(reasonOf(await u.request(request())), 'upstream_tls_failed')
  })

  // openssl s_server is an independent TLS stack that answers a refused client
  // certificate with an alert (Node's https server just closes the socket).
  test('openssl s_server requiring a client certificate accepts ours', async () => {
    const port = await opensslServer()
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${port}` }], tls: withClientCert() })
    const r = await u.request(request())
    assert.equal(r.ok && r.statusCode, 200)
    await text(r)
  })

  test('openssl s_server refuses a client certificate from a CA it does not trust: upstream_tls_failed', async () => {
    const port = await opensslServer()
    const u = upstream({
      targets: [{ url: `https://127.0.0.1:${port}` }],
      tls: { ca: [{ file: upstreamCa.cert }], cert: { file: rogueClient.cert }, key: { file: rogueClient.key } },
    })
    assert.equal(reasonOf(await u.request(request())), 'upstream_tls_failed')
  })

  test('openssl s_server refuses a gateway without a client certificate: upstream_tls_failed', async () => {
    const port = await opensslServer()
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${port}` }], tls: { ca: [{ file: upstreamCa.cert }] } })
    assert.equal(reasonOf(await u.request(request())), 'upstream_tls_failed')
  })
})

describe('upstream server verification', { timeout: 30_000 }, () => {
  test('refuses an upstream certificate from a CA not configured (wrong CA)', async () => {
    const s = await tlsServer(serverCert)
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: rogueCa.cert }] } })
    const r = await u.request(request())
    assert.equal(reasonOf(r), 'upstream_tls_failed')
    assert.equal(s.peers.length, 0)
  })

  test('refuses a private-CA upstream when only the system store is trusted', async () => {
    const s = await tlsServer(serverCert)
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }] })
    assert.equal(reasonOf(await u.request(request())), 'upstream_tls_failed')
  })

  test('verifies the configured serverName and refuses a certificate that does not cover it', async () => {
    const s = await tlsServer(serverCert)
    const good = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }], serverName: 'localhost' } })
    assert.equal(await text(await good.request(request())), 'secure hello')
    assert.deepEqual(s.sni, ['localhost'])
    const bad = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }], serverName: 'payments.internal' } })
    assert.equal(reasonOf(await bad.request(request())), 'upstream_tls_failed')
  })

  test('refuses an upstream below minVersion', async () => {
    const s = await tlsServer(serverCert, { maxVersion: 'TLSv1.2' })
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }], minVersion: 'TLSv1.3' } })
    assert.equal(reasonOf(await u.request(request())), 'upstream_tls_failed')
  })

  test('with hostHeader preserve, the client Host never becomes the SNI or the verified name', async () => {
    const s = await tlsServer(serverCert)
    const u = upstream({ targets: [{ url: `https://localhost:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }] }, hostHeader: 'preserve' })
    for (const host of ['evil.example', 'other.example']) {
      assert.equal(await text(await u.request(request({ clientHost: host }))), 'secure hello')
    }
    assert.deepEqual(s.hosts, ['evil.example', 'other.example'])
    assert.ok(s.sni.length >= 1)
    assert.deepEqual(new Set(s.sni), new Set(['localhost']), 'every connection uses the SNI of the target URL')
  })

  test('sends no SNI to an IP target and verifies its IP SAN', async () => {
    const s = await tlsServer(serverCert)
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }] }, hostHeader: 'preserve' })
    assert.equal(await text(await u.request(request({ clientHost: 'localhost' }))), 'secure hello')
    assert.deepEqual(new Set(s.sni), new Set(['']))
  })
})

describe('upstream SPKI pinning', { timeout: 30_000 }, () => {
  test('accepts an upstream whose key matches a pin (EC key)', async () => {
    const s = await tlsServer(serverCert)
    const u = upstream({
      targets: [{ url: `https://127.0.0.1:${s.port}` }],
      tls: { ca: [{ file: upstreamCa.cert }], spkiPins: [opensslPin(rsaServerCert.cert), opensslPin(serverCert.cert)] },
    })
    assert.equal(await text(await u.request(request())), 'secure hello')
  })

  test('accepts an upstream whose key matches a pin (RSA key)', async () => {
    const s = await tlsServer(rsaServerCert)
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }], spkiPins: [opensslPin(rsaServerCert.cert)] } })
    assert.equal(await text(await u.request(request())), 'secure hello')
  })

  test('refuses a valid, trusted upstream whose key is not pinned', async () => {
    const s = await tlsServer(serverCert)
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ca: [{ file: upstreamCa.cert }], spkiPins: [opensslPin(rsaServerCert.cert)] } })
    const r = await u.request(request())
    assert.equal(reasonOf(r), 'upstream_tls_failed')
    if (!r.ok) assert.equal(r.denial.detail, PIN_MISMATCH_CODE)
    assert.equal(s.peers.length, 0, 'no HTTP request was sent')
  })

  test('a pinned mTLS upstream works end to end', async () => {
    const s = await mtlsServer()
    const u = upstream({ targets: [{ url: `https://127.0.0.1:${s.port}` }], tls: { ...withClientCert(), spkiPins: [opensslPin(serverCert.cert)] } })
    assert.equal(await text(await u.request(request())), 'secure hello')
    assert.deepEqual(s.peers, ['portcullis-gw'])
  })

  test('a TLS failure on one target is retried on another', async () => {
    const wrong = await tlsServer(rsaServerCert)
    const right = await tlsServer(serverCert)
    const u = upstream({
      targets: [{ url: `https://127.0.0.1:${wrong.port}` }, { url: `https://127.0.0.1:${right.port}` }],
      tls: { ca: [{ file: upstreamCa.cert }], spkiPins: [opensslPin(serverCert.cert)] },
    })
    const r = await u.request(request({ retries: 1 }))
    assert.equal(r.attempts, 2)
    assert.equal(r.target, `https://127.0.0.1:${right.port}`)
    await text(r)
  })
})
