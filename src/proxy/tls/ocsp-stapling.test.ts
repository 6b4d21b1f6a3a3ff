import assert from 'node:assert/strict'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { TestPki, pem, type CertFiles } from '../../../test/harness/pki.js'
import { verifyOcspResponse } from '../../pki/ocsp-client.js'
import { createOcspHttpHandler } from '../../pki/ocsp-http.js'
import { createOcspResponder, type CertStatusResult } from '../../pki/ocsp-responder.js'
import { FixedClock, systemClock, type Clock } from '../../shared/clock.js'
import { OcspStapler, stapleTargetFor, type StapleTarget } from './ocsp-stapling.js'

const pki = new TestPki()
const ca = pki.root('staple-ca')
const signer = pki.leaf('staple-signer', ca, { subject: '/CN=staple-ocsp', eku: 'OCSPSigning', extraExtensions: '1.3.6.1.5.5.7.48.1.5=ASN1:NULL\n' })
const x509 = (path: string): X509Certificate => new X509Certificate(readFileSync(path))
const issuer = x509(ca.cert)

/** A responder of our own over HTTP whose answers the test sets; counts its requests. */
interface Responder {
  readonly url: string
  status: CertStatusResult
  requests: number
  close(): Promise<void>
}
const servers: Server[] = []
after(async () => {
  for (const s of servers) {
    s.closeAllConnections()
    s.close()
  }
})

async function startResponder(validityMs = 3_600_000, status: CertStatusResult = { status: 'good' }): Promise<Responder> {
  const responder = createOcspResponder({
    issuerCertPem: pem(ca.cert),
    signerCertPem: pem(signer.cert),
    signerKey: createPrivateKey(pem(signer.key)),
    status: () => r.status,
    clock: systemClock,
    validityMs,
  })
  const handler = createOcspHttpHandler(responder, { pathPrefix: '/ocsp/' })
  const server = createServer((req, res) => {
    r.requests++
    handler(req, res)
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const r: Responder = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ocsp/`,
    status,
    requests: 0,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return r
}

let seq = 0
/** An openssl-made server certificate whose AIA points at `url`. */
function serverCert(url: string, extra = ''): CertFiles {
  return pki.server(`staple-srv-${++seq}`, ca, { extraExtensions: `authorityInfoAccess=OCSP;URI:${url}\n${extra}` })
}

function target(cert: CertFiles): StapleTarget {
  const t = stapleTargetFor(x509(cert.cert), issuer, 'auto').target
  assert.ok(t)
  return t
}

function stapler(clock: Clock = systemClock, firstResponseWaitMs = 500): { stapler: OcspStapler; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { stapler: new OcspStapler({ clock, log: pino({ level: 'info' }, sink), fetchTimeoutMs: 2000, firstResponseWaitMs }), logs }
}

/** What a handshake would staple for `cert`, and how long the answer took. */
/** Asks for a staple; `isImmediate`: answered before staple() returned, i.e. from memory without waiting on I/O. */
function ask(s: OcspStapler, cert: CertFiles): Promise<{ der: Buffer | undefined; isImmediate: boolean }> {
  let hasReturned = false
  return new Promise((resolve) => {
    s.staple(Buffer.from(x509(cert.cert).raw), (err, der) => {
      assert.equal(err, null)
      resolve({ der, isImmediate: !hasReturned })
    })
    hasReturned = true
  })
}

function statusOf(der: Buffer | undefined, cert: CertFiles): string | undefined {
  return der && verifyOcspResponse(der, { certDer: x509(cert.cert).raw, issuerDer: issuer.raw, now: () => Date.now() }).status
}

const messages = (logs: Record<string, unknown>[], level: number, pattern: RegExp): number =>
  logs.filter((l) => l.level === level && pattern.test(String(l.msg))).length

describe('stapleTargetFor', () => {
  test('a certificate with an OCSP URL and its issuer is a target; off, no URL or no issuer is not', () => {
    const cert = x509(serverCert('http://127.0.0.1:9/ocsp/').cert)
    const t = stapleTargetFor(cert, issuer, 'auto').target
    assert.equal(t?.url, 'http://127.0.0.1:9/ocsp/')
    assert.equal(t?.fingerprint, cert.fingerprint256.replace(/:/g, '').toLowerCase())
    assert.deepEqual(stapleTargetFor(cert, issuer, 'off'), {})
    assert.deepEqual(stapleTargetFor(cert, undefined, 'auto'), {})
    assert.deepEqual(stapleTargetFor(x509(pki.server('staple-no-aia', ca).cert), issuer, 'auto'), {})
  })

  test('a must-staple certificate cannot be switched off, and needs a URL and its issuer', () => {
    const must = x509(serverCert('http://127.0.0.1:9/ocsp/', 'tlsfeature=status_request\n').cert)
    assert.match(stapleTargetFor(must, issuer, 'off').issue ?? '', /must-staple.*cannot be "off"/)
    assert.match(stapleTargetFor(must, undefined, 'auto').issue ?? '', /add its issuer/)
    assert.ok(stapleTargetFor(must, issuer, 'auto').target)
    const mustNoUrl = x509(pki.server('staple-must-no-url', ca, { extraExtensions: 'tlsfeature=status_request\n' }).cert)
    assert.match(stapleTargetFor(mustNoUrl, issuer, 'auto').issue ?? '', /names no http\(s\) OCSP responder/)
  })
})

describe('OcspStapler', { timeout: 30_000 }, () => {
  test('the first handshake waits for the first fetch and gets a good response; later ones are served from memory', async () => {
    const r = await startResponder()
    const cert = serverCert(r.url)
    const { stapler: s, logs } = stapler()
    s.track([target(cert)])
    const first = await ask(s, cert)
    assert.equal(statusOf(first.der, cert), 'good')
    const second = await ask(s, cert)
    assert.ok(second.der?.equals(first.der!))
    assert.equal(second.isImmediate, true, 'answered from memory, synchronously')
    assert.equal(r.requests, 1)
    assert.equal(messages(logs, 30, /stapled/), 1)
    s.track([])
  })

  test('an untracked certificate gets nothing', async () => {
    const { stapler: s } = stapler()
    assert.equal((await ask(s, serverCert('http://127.0.0.1:9/ocsp/'))).der, undefined)
  })

  test('revoked is never stapled and is logged as an error once, across refreshes', async () => {
    const r = await startResponder(2000, { status: 'revoked', revokedAt: Date.now() - 60_000, reason: 'keyCompromise' })
    const cert = serverCert(r.url)
    const { stapler: s, logs } = stapler()
    s.track([target(cert)])
    assert.equal((await ask(s, cert)).der, undefined)
    await sleep(1300) // one refresh at half of the 2 s validity
    assert.ok(r.requests >= 2, `${r.requests} requests`)
    assert.equal((await ask(s, cert)).der, undefined)
    assert.equal(messages(logs, 50, /REVOKED/), 1)
    s.track([])
  })

  test('a refresh that finds the certificate revoked drops the good staple at once', async () => {
    const r = await startResponder(2000)
    const cert = serverCert(r.url)
    const { stapler: s } = stapler()
    s.track([target(cert)])
    assert.equal(statusOf((await ask(s, cert)).der, cert), 'good')
    r.status = { status: 'revoked', revokedAt: Date.now(), reason: 'superseded' }
    await sleep(1300)
    assert.equal((await ask(s, cert)).der, undefined)
    s.track([])
  })

  test('keeps the last good response while the responder is down, until nextUpdate; then staples nothing, warning once', async () => {
    const r = await startResponder(2000)
    const cert = serverCert(r.url)
    const clock = new FixedClock(Date.now())
    const { stapler: s, logs } = stapler(clock)
    s.track([target(cert)])
    const good = (await ask(s, cert)).der
    assert.equal(statusOf(good, cert), 'good')
    await r.close()
    await sleep(1300) // the refresh fails
    assert.ok(messages(logs, 40, /fetch for stapling failed.*last good response is served/) >= 1)
    assert.ok((await ask(s, cert)).der?.equals(good!), 'the last good response is still served')
    clock.advance(2500) // past nextUpdate
    assert.equal((await ask(s, cert)).der, undefined)
    assert.equal((await ask(s, cert)).der, undefined)
    assert.equal(messages(logs, 40, /expired/), 1)
    s.track([])
  })

  test('a responder that is down costs the first handshake nothing; one that hangs at most the first-response wait', async () => {
    const down = await startResponder()
    await down.close()
    const cert = serverCert(down.url)
    const { stapler: s, logs } = stapler(systemClock, 2000)
    s.track([target(cert)])
    const askedAt = performance.now()
    const refused = { ...(await ask(s, cert)), ms: performance.now() - askedAt }
    assert.equal(refused.der, undefined)
    // Generous bounds: the machine may be loaded; what matters is refused ≪ the 2 s wait ≤ hanging ≪ forever.
    assert.ok(refused.ms < 1000, `${refused.ms} ms`)

    const hanging = createServer(() => undefined)
    servers.push(hanging)
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    const slow = serverCert(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}/ocsp/`)
    s.track([target(cert), target(slow)])
    const started = performance.now()
    const waited = await ask(s, slow)
    const waitedMs = performance.now() - started
    assert.equal(waited.der, undefined)
    assert.ok(waitedMs >= 1950 && waitedMs < 4000, `${waitedMs} ms`)
    await sleep(1200) // the refused certificate's first retry fails the same way
    assert.equal(messages(logs, 40, /failed \(http:\/\/127\.0\.0\.1:\d+\/ocsp\/: ECONNREFUSED\)/), 1)
    s.track([])
  })

  test('a swapped certificate gets its own response; the dropped one is forgotten', async () => {
    const r = await startResponder()
    const old = serverCert(r.url)
    const fresh = serverCert(r.url)
    const { stapler: s } = stapler()
    s.track([target(old)])
    assert.equal(statusOf((await ask(s, old)).der, old), 'good')
    s.track([target(fresh)])
    assert.equal((await ask(s, old)).der, undefined)
    assert.equal(statusOf((await ask(s, fresh)).der, fresh), 'good')
    assert.equal(r.requests, 2)
    s.track([])
  })
})
