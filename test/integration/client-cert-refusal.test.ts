/**
 * Refused client certificates end to end, through the real gateway: real TLS
 * on loopback, openssl-made certificates, a recording upstream that must
 * never see a refused caller.
 *
 * Four listeners share one config so each case runs against every policy:
 * - `closed`: mode required, default `rejectWithProblem: false` — the
 *   connection is closed with no HTTP exchange and the reason is logged once
 *   as a `type: "handshake"` line whose detail tells the operator what to fix;
 * - `problem`: mode required, `rejectWithProblem: true` — the handshake
 *   finishes and every request is answered with the reason as problem+json
 *   (status from src/shared/reasons.ts), over HTTP/1.1 and HTTP/2;
 * - `optional` / `optional-problem`: mode optional — a PRESENTED certificate
 *   that fails verification is refused exactly the same way; only a client
 *   that sends none is anonymous, even on an `allowAnonymous` route.
 *
 * Independent clients: `curl` prints the problem JSON; `openssl s_client`
 * sees the connection closed without a response.
 */
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect as http2Connect } from 'node:http2'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { reasons, type Reason } from '../../src/shared/reasons.js'
import { attempt, send, waitFor, type ClientOptions, type ClientResponse } from '../harness/client.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'

const run = promisify(execFile)
const DAY = 86_400_000

let pki: TestPki
let root: CaFiles
let otherRoot: CaFiles
let server: CertFiles
let alice: CertFiles
let stranger: CertFiles
let expired: CertFiles
let future: CertFiles
let serverOnly: CertFiles
let upstream: TestUpstream
let gw: TestGateway

function listener(name: string, mode: 'required' | 'optional', rejectWithProblem: boolean): string {
  return `
  - name: ${name}
    port: 0
    tls:
      certificates:
        - cert: { file: ${server.chain} }
          key: { file: ${server.key} }
      clientAuth:
        mode: ${mode}
        rejectWithProblem: ${rejectWithProblem}
        trustBundle: [{ file: ${root.cert} }]`
}

function config(upstreamUrl: string): string {
  return `
version: 1
listeners:${listener('closed', 'required', false)}${listener('problem', 'required', true)}${listener('optional', 'optional', false)}${listener('optional-problem', 'optional', true)}
identities: {}
upstreams:
  app:
    targets: [{ url: ${upstreamUrl} }]
routes:
  - name: anon
    match: { path: { exact: /anon } }
    access: { allowAnonymous: true }
    upstream: app
  - name: any-cert
    match: { path: { prefix: /api } }
    access: { allowAnyClientCert: true }
    upstream: app
`
}

/** One refused case: who connects, the reason expected, and what its log detail must name. */
interface RefusalCase {
  readonly name: string
  readonly reason: Reason
  readonly certs: () => CertFiles | undefined
  /** Values an operator needs in the detail (dates, issuer), read independently of the gateway. */
  readonly detailNames: () => readonly string[]
}

const iso = (openSslDate: string) => new Date(openSslDate).toISOString()
const x509 = (c: CertFiles) => new X509Certificate(readFileSync(c.cert))

const cases: readonly RefusalCase[] = [
  {
    name: 'a certificate from an unknown CA',
    reason: 'cert_unknown_ca',
    certs: () => stranger,
    // The issuer's name, as the certificate states it.
    detailNames: () => ['other-root'],
  },
  {
    name: 'an expired certificate',
    reason: 'cert_expired',
    certs: () => expired,
    detailNames: () => [iso(x509(expired).validTo)],
  },
  {
    name: 'a certificate not yet valid',
    reason: 'cert_not_yet_valid',
    certs: () => future,
    detailNames: () => [iso(x509(future).validFrom)],
  },
  {
    name: 'a certificate with EKU serverAuth only',
    reason: 'cert_wrong_usage',
    certs: () => serverOnly,
    detailNames: () => ['1.3.6.1.5.5.7.3.1'],
  },
  {
    name: 'no certificate (mode required)',
    reason: 'client_cert_required',
    certs: () => undefined,
    detailNames: () => [],
  },
]

before(async () => {
  pki = new TestPki()
  root = pki.root('root')
  otherRoot = pki.root('other-root')
  server = pki.server('gateway', root)
  alice = pki.client('alice', root)
  // Same subject as a trusted client, different issuer: the name alone must not admit it.
  stranger = pki.client('stranger', otherRoot, { subject: '/CN=alice/O=Portcullis Test' })
  expired = pki.client('expired', root, { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
  future = pki.client('future', root, { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) })
  serverOnly = pki.client('server-only', root, { eku: 'serverAuth' })
  upstream = await startUpstream()
  gw = await startGateway({ yaml: config(upstream.url) })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

/** The handshake lines of one listener logged since `from`, after the log has settled. */
async function handshakeLines(listener: string, from: number): Promise<LogLine[]> {
  const pick = () => gw.logs.slice(from).filter((l) => l.type === 'handshake' && l.listener === listener)
  await waitFor(() => pick().length > 0)
  // A second line would arrive right after the first: give it the chance to.
  await new Promise((r) => setTimeout(r, 50))
  return pick()
}

function clientOpts(listener: string, certs: CertFiles | undefined, path: string, http2: boolean): ClientOptions {
  return { port: gw.port(listener), path, ca: root.cert, ...(certs ? { cert: certs.chain, key: certs.key } : {}), http2 }
}

function assertProblem(res: ClientResponse, reason: Reason): void {
  assert.equal(res.status, reasons[reason].status)
  assert.equal(res.headers['content-type'], 'application/problem+json')
  const body = res.json()
  assert.equal(body.reason, reason)
  assert.equal(body.status, reasons[reason].status)
  assert.equal(body.detail, undefined, 'the detail stays in the log')
}

describe('client certificate refusal through the gateway', { timeout: 60_000 }, () => {
  test('admits a valid client certificate on every listener (control)', async () => {
    for (const name of ['closed', 'problem', 'optional', 'optional-problem']) {
      for (const http2 of [false, true]) {
        const before = upstream.requests.length
        const res = await send(clientOpts(name, alice, '/api/x', http2))
        assert.equal(res.status, 200, `${name} http2=${http2}`)
        assert.equal(upstream.requests.length, before + 1)
      }
    }
  })

  for (const c of cases) {
    for (const http2 of [false, true]) {
      const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

      test(`closes the connection for ${c.name} and logs ${c.reason} once (${proto})`, async () => {
        const logFrom = gw.logs.length
        const upFrom = upstream.requests.length
        const certs = c.certs()
        const out = await attempt(clientOpts('closed', certs, '/api/x', http2))
        assert.equal(out.kind, 'closed', out.kind === 'response' ? `got HTTP ${out.res.status} ${out.res.body}` : '')
        const lines = await handshakeLines('closed', logFrom)
        assert.equal(lines.length, 1, JSON.stringify(lines))
        const line = lines[0]!
        assert.equal(line.reason, c.reason)
        assert.equal(typeof line.detail, 'string')
        assert.ok((line.detail as string).length > 0, 'detail present')
        for (const value of c.detailNames()) assert.ok((line.detail as string).includes(value), `detail ${JSON.stringify(line.detail)} names ${value}`)
        if (certs) {
          // The line identifies the certificate an operator must look at.
          assert.equal(line.fingerprint, x509(certs).fingerprint256.replace(/:/g, '').toLowerCase())
        } else {
          assert.equal(line.fingerprint, undefined)
        }
        assert.equal(gw.logs.slice(logFrom).filter((l) => l.type === 'request' && l.listener === 'closed').length, 0, 'no HTTP exchange')
        assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
      })

      test(`answers ${c.name} with problem+json ${c.reason} when rejectWithProblem is on (${proto})`, async () => {
        const logFrom = gw.logs.length
        const upFrom = upstream.requests.length
        const out = await attempt(clientOpts('problem', c.certs(), '/api/x', http2))
        assert.equal(out.kind, 'response', out.kind === 'closed' ? out.code : '')
        assertProblem(out.res, c.reason)
        const lines = await handshakeLines('problem', logFrom)
        assert.equal(lines.length, 1, JSON.stringify(lines))
        assert.equal(lines[0]!.reason, c.reason)
        await waitFor(() => gw.logs.slice(logFrom).some((l) => l.type === 'request'))
        const request = gw.logs.slice(logFrom).find((l) => l.type === 'request' && l.listener === 'problem')
        assert.equal(request?.reason, c.reason)
        assert.equal(request?.status, reasons[c.reason].status)
        assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
      })
    }
  }

  test('answers every request of a refused HTTP/2 connection with the denial', async () => {
    const upFrom = upstream.requests.length
    const session = http2Connect(`https://localhost:${gw.port('problem')}`, {
      host: '127.0.0.1', servername: 'localhost',
      ca: readFileSync(root.cert), cert: readFileSync(expired.chain), key: readFileSync(expired.key),
    })
    try {
      const one = (path: string) =>
        new Promise<{ status: number; reason: unknown }>((resolve, reject) => {
          const stream = session.request({ ':path': path })
          let status = 0
          let body = ''
          stream.on('response', (h) => (status = Number(h[':status'])))
          stream.on('data', (d: Buffer) => (body += d.toString('utf8')))
          stream.on('end', () => resolve({ status, reason: (JSON.parse(body) as { reason?: unknown }).reason }))
          stream.on('error', reject)
        })
      // The anonymous route too: the refused certificate decides, not the route.
      const answers = await Promise.all([one('/api/a'), one('/api/b'), one('/anon'), one('/nowhere')])
      for (const a of answers) assert.deepEqual(a, { status: 403, reason: 'cert_expired' })
    } finally {
      session.destroy()
    }
    assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
  })

  describe('mode optional', () => {
    test('serves the anonymous route to a client with no certificate (control)', async () => {
      for (const http2 of [false, true]) {
        const res = await send(clientOpts('optional', undefined, '/anon', http2))
        assert.equal(res.status, 200)
      }
    })

    for (const [what, certs, reason] of [
      ['an expired', () => expired, 'cert_expired'],
      ['an unknown-CA', () => stranger, 'cert_unknown_ca'],
      ['a serverAuth-only', () => serverOnly, 'cert_wrong_usage'],
    ] as const) {
      for (const http2 of [false, true]) {
        const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

        test(`refuses ${what} certificate instead of treating it as anonymous, on an allowAnonymous route (${proto})`, async () => {
          const logFrom = gw.logs.length
          const upFrom = upstream.requests.length
          const out = await attempt(clientOpts('optional', certs(), '/anon', http2))
          assert.equal(out.kind, 'closed', out.kind === 'response' ? `got HTTP ${out.res.status} ${out.res.body}` : '')
          const lines = await handshakeLines('optional', logFrom)
          assert.equal(lines.length, 1, JSON.stringify(lines))
          assert.equal(lines[0]!.reason, reason)
          assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
        })

        test(`answers ${what} certificate on an allowAnonymous route with problem+json ${reason} when rejectWithProblem is on (${proto})`, async () => {
          const upFrom = upstream.requests.length
          const out = await attempt(clientOpts('optional-problem', certs(), '/anon', http2))
          assert.equal(out.kind, 'response', out.kind === 'closed' ? out.code : '')
          assertProblem(out.res, reason)
          assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
        })
      }
    }
  })

  describe('independent clients', () => {
    for (const http of ['--http1.1', '--http2']) {
      test(`curl ${http} with an expired certificate prints the problem JSON (rejectWithProblem)`, async () => {
        const upFrom = upstream.requests.length
        const port = gw.port('problem')
        const { stdout } = await run(
          'curl',
          ['-sS', http, '--max-time', '10', '--cacert', root.cert, '--cert', expired.chain, '--key', expired.key,
            '--resolve', `localhost:${port}:127.0.0.1`, '-w', '\n%{http_code} %{content_type} %{http_version}', `https://localhost:${port}/api/x`],
          { timeout: 15_000 },
        )
        const newline = stdout.lastIndexOf('\n')
        const body = JSON.parse(stdout.slice(0, newline)) as Record<string, unknown>
        const [code, type, version] = stdout.slice(newline + 1).split(' ')
        assert.equal(Number(code), reasons.cert_expired.status)
        assert.equal(type, 'application/problem+json')
        assert.equal(version, http === '--http2' ? '2' : '1.1')
        assert.equal(body.reason, 'cert_expired')
        assert.equal(body.status, 403)
        assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
      })
    }

    /**
     * s_client keeps stdin open, so it exits only when the server closes the
     * connection; an answered keep-alive request would keep it running
     * until our timer kills it.
     */
    async function sClient(certs: CertFiles, request: string): Promise<{ stdout: string; exitedAlone: boolean }> {
      const child = spawn('openssl', [
        's_client', '-connect', `127.0.0.1:${gw.port('closed')}`, '-servername', 'localhost', '-CAfile', root.cert,
        '-cert', certs.cert, '-key', certs.key, '-verify_return_error', '-ign_eof',
      ], { stdio: ['pipe', 'pipe', 'pipe'] })
      let stdout = ''
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('latin1')
      })
      child.stdin.on('error', () => {})
      child.stdin.write(request)
      let exitedAlone = true
      const timer = setTimeout(() => {
        exitedAlone = false
        child.kill()
      }, 5000)
      await new Promise((resolve) => child.once('exit', resolve))
      clearTimeout(timer)
      return { stdout, exitedAlone }
    }

    test('openssl s_client with a valid certificate gets an HTTP answer (control)', async () => {
      const { stdout } = await sClient(alice, 'GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      assert.match(stdout, /HTTP\/1\.1 200 /)
    })

    test('openssl s_client with an unknown-CA certificate sees the connection closed without a response', async () => {
      const logFrom = gw.logs.length
      const upFrom = upstream.requests.length
      const { stdout, exitedAlone } = await sClient(stranger, 'GET /api/x HTTP/1.1\r\nHost: localhost\r\n\r\n')
      assert.ok(exitedAlone, 'the server closed the connection')
      assert.doesNotMatch(stdout, /HTTP\/1\.[01] \d{3}/)
      const lines = await handshakeLines('closed', logFrom)
      assert.equal(lines.length, 1)
      assert.equal(lines[0]!.reason, 'cert_unknown_ca')
      assert.equal(upstream.requests.length, upFrom, 'nothing reached the upstream')
    })
  })
})
