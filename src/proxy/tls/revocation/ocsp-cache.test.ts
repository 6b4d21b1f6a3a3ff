/**
 * The OCSP cache against a real `openssl ocsp` responder and a failing HTTP
 * server: one request for concurrent lookups, answers kept no longer than
 * the configured cap, failures remembered with a backoff.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { FixedClock } from '../../../shared/clock.js'
import { TestPki } from '../../../../test/harness/pki.js'
import { PartnerCa, startOcspResponder, type OcspResponder } from '../../../../test/integration/partner-ca.js'
import { OcspCache } from './ocsp-cache.js'

const pki = new TestPki()
const ca = pki.root('ocsp-cache-ca')
const partner = new PartnerCa(pki, ca)
const der = (file: string) => new Uint8Array(execFileSync('openssl', ['x509', '-in', file, '-outform', 'DER']))
let responder: OcspResponder
let failing: Server
let failingUrl = ''
let failingRequests = 0

before(async () => {
  responder = await startOcspResponder(partner, 60)
  failing = createServer((req, res) => {
    failingRequests++
    req.resume()
    setTimeout(() => res.writeHead(500).end(), 200)
  })
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve))
  failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/`
})

after(async () => {
  await responder?.close()
  failing?.close()
})

describe('OcspCache', () => {
  it('shares one request between concurrent lookups and backs off after a failure', async () => {
    const clock = new FixedClock(Date.now())
    const cache = new OcspCache({ clock })
    const leaf = pki.client('ocsp-cache-a', ca)
    const query = { certDer: der(leaf.cert), issuerDer: der(ca.cert), url: failingUrl, timeoutMs: 2000, now: () => Date.now() }
    await Promise.all([cache.load('k', query, 60_000), cache.load('k', query, 60_000), cache.load('k', query, 60_000)])
    assert.equal(failingRequests, 1)
    const entry = cache.peek('k')
    assert.equal(entry?.answer, undefined)
    assert.match(String(entry?.cause), /^http_status: .* answered HTTP 500$/)
    assert.equal(entry?.retryAt, clock.now() + 1000)
    await cache.load('k', query, 60_000)
    assert.equal(cache.peek('k')?.retryAt, clock.now() + 2000, 'the backoff doubles')
  })

  it('keeps an answer no longer than the cap', async () => {
    const clock = new FixedClock(Date.now())
    const cache = new OcspCache({ clock })
    const leaf = pki.client('ocsp-cache-b', ca)
    await responder.restart() // reads the index with the new certificate
    await cache.load('b', { certDer: der(leaf.cert), issuerDer: der(ca.cert), url: responder.url, timeoutMs: 5000, now: () => Date.now() }, 30_000)
    assert.equal(cache.peek('b')?.answer?.status, 'good')
    clock.advance(29_000)
    assert.equal(cache.peek('b')?.answer?.status, 'good')
    clock.advance(2000)
    assert.equal(cache.peek('b')?.answer, undefined, 'expired after cacheOcspFor, well before the responder nextUpdate (60 min)')
  })

  it('drops the least recently used entry beyond maxEntries', async () => {
    const cache = new OcspCache({ clock: new FixedClock(Date.now()), maxEntries: 2 })
    const query = { certDer: new Uint8Array(1), issuerDer: new Uint8Array(1), url: failingUrl, timeoutMs: 100, now: () => Date.now() }
    await Promise.all(['x', 'y'].map((k) => cache.load(k, query, 1000)))
    cache.peek('x')
    await cache.load('z', query, 1000)
    assert.equal(cache.size, 2)
    assert.ok(cache.peek('x') && cache.peek('z'))
    assert.equal(cache.peek('y'), undefined)
  })
})
