import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createPrivateKey, randomInt } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { AsnConvert } from '@peculiar/asn1-schema'
import { OCSPResponse } from '@peculiar/asn1-ocsp'
import { TestPki, pem, type CaFiles, type CertFiles } from '../../test/harness/pki.js'
import { FixedClock } from '../shared/clock.js'
import { createOcspResponder, respond, type CertStatusResult, type OcspResponderDeps } from './ocsp-responder.js'

const pki = new TestPki()
const ca = pki.root('resp-ca')
const otherCa = pki.root('resp-other-ca')
const NOCHECK = '1.3.6.1.5.5.7.48.1.5=ASN1:NULL\n'
const signer = pki.leaf('resp-signer', ca, { subject: '/CN=resp-ocsp', eku: 'OCSPSigning', extraExtensions: NOCHECK })
const good = pki.client('resp-good', ca)
const revoked = pki.client('resp-revoked', ca)
const unknown = pki.client('resp-unknown', ca)
const foreign = pki.client('resp-foreign', otherCa)

const serialOf = (c: CertFiles): string =>
  execFileSync('openssl', ['x509', '-in', c.cert, '-noout', '-serial'], { encoding: 'utf8' }).trim().slice('serial='.length).toLowerCase()
const REVOKED_AT = Math.floor(Date.now() / 1000) * 1000 - 3_600_000

/** The inventory: good and revoked are known, everything else unknown. */
const inventory = new Map<string, CertStatusResult>([
  [serialOf(good), { status: 'good' }],
  [serialOf(revoked), { status: 'revoked', revokedAt: REVOKED_AT, reason: 'keyCompromise' }],
])

function deps(over: Partial<OcspResponderDeps> = {}): OcspResponderDeps {
  return {
    issuerCertPem: pem(ca.cert),
    signerCertPem: pem(signer.cert),
    signerKey: createPrivateKey(pem(signer.key)),
    status: (serial) => inventory.get(serial) ?? { status: 'unknown' },
    clock: new FixedClock(Date.now()),
    validityMs: 3_600_000,
    ...over,
  }
}

let seq = 0
function request(certs: CertFiles[], args: string[] = ['-no_nonce'], issuer: CaFiles = ca): { der: Buffer; file: string } {
  const file = join(pki.dir, `r${++seq}.req`)
  // Options first: openssl applies a digest option (-sha256) only to the -cert options after it.
  execFileSync('openssl', ['ocsp', '-issuer', issuer.cert, ...args, ...certs.flatMap((c) => ['-cert', c.cert]), '-reqout', file], { stdio: 'ignore' })
  return { der: readFileSync(file), file }
}

/**
 * openssl's view of a response: its text, and whether the signature (and the
 * nonce, given the request) verified against `trust`. `responder` trusts that
 * certificate directly as the responder (-VAfile) instead of via the chain.
 */
function judge(resp: Buffer, req?: string, trust = ca.cert, responder?: string): { text: string; verified: boolean } {
  const file = join(pki.dir, `r${++seq}.resp`)
  writeFileSync(file, resp)
  const trustArgs = responder ? ['-VAfile', responder, '-CAfile', trust] : ['-CAfile', trust]
  const r = spawnSync('openssl', ['ocsp', '-respin', file, ...(req ? ['-reqin', req] : []), ...trustArgs, '-resp_text'], { encoding: 'utf8' })
  return { text: r.stdout, verified: r.status === 0 && /Response verify OK/.test(r.stderr) }
}

const responseStatus = (der: Buffer): number => AsnConvert.parse(der, OCSPResponse).responseStatus

describe('OCSP responder', { timeout: 60_000 }, () => {
  const responder = createOcspResponder(deps())

  test('answers good, revoked (time and reason) and unknown in request order, signed by the delegated signer', async () => {
    const req = request([good, revoked, unknown])
    const answer = await responder(req.der)
    assert.equal(answer.responseStatus, 'successful')
    assert.deepEqual(answer.certStatuses, ['good', 'revoked', 'unknown'])
    assert.equal(answer.isCacheable, false) // contains unknown
    const { text, verified } = judge(answer.der, req.file)
    assert.ok(verified, text)
    assert.deepEqual([...text.matchAll(/Cert Status: (\w+)/g)].map((m) => m[1]), ['good', 'revoked', 'unknown'])
    assert.match(text, /Revocation Reason: keyCompromise \(0x1\)/)
    assert.match(text, new RegExp(`Revocation Time: ${opensslTime(REVOKED_AT)}`))
    assert.match(text, new RegExp(`Responder Id: ${signerSki()}`)) // byKey
    assert.match(text, /Subject: CN\s?=\s?resp-ocsp/) // signer certificate included
  })

  test('sets thisUpdate to now and nextUpdate to now + validity', async () => {
    const now = Date.UTC(2030, 5, 1, 8, 0, 0, 250)
    const clock = new FixedClock(now)
    const a = await createOcspResponder(deps({ clock, validityMs: 7_200_000, signerCertPem: pem(longSigner().cert), signerKey: createPrivateKey(pem(longSigner().key)) }))(request([good]).der)
    assert.equal(a.producedAt, Date.UTC(2030, 5, 1, 8, 0, 0))
    assert.equal(a.nextUpdate, Date.UTC(2030, 5, 1, 10, 0, 0))
    const text = judge(a.der).text
    assert.match(text, /This Update: Jun  1 08:00:00 2030 GMT/)
    assert.match(text, /Next Update: Jun  1 10:00:00 2030 GMT/)
  })

  test('never lets nextUpdate pass the signer certificate notAfter', async () => {
    const soon = pki.leaf('resp-short-signer', ca, { subject: '/CN=short', eku: 'OCSPSigning', notAfter: new Date(Date.now() + 600_000) })
    const a = await createOcspResponder(deps({ signerCertPem: pem(soon.cert), signerKey: createPrivateKey(pem(soon.key)), validityMs: 86_400_000 }))(request([good]).der)
    const notAfter = Date.parse(execFileSync('openssl', ['x509', '-in', soon.cert, '-noout', '-enddate'], { encoding: 'utf8' }).trim().slice('notAfter='.length))
    assert.equal(a.nextUpdate, notAfter)
  })

  test('answers internalError once the signer certificate has expired', async () => {
    const clock = new FixedClock(Date.now() + 60 * 86_400_000)
    const a = await createOcspResponder(deps({ clock }))(request([good]).der)
    assert.equal(a.responseStatus, 'internalError')
    assert.equal(responseStatus(a.der), 2)
  })

  test('omits the revocation reason for unspecified', async () => {
    const r = createOcspResponder(deps({ status: () => ({ status: 'revoked', revokedAt: REVOKED_AT, reason: 'unspecified' }) }))
    const text = judge((await r(request([revoked]).der)).der).text
    assert.match(text, /Cert Status: revoked/)
    assert.doesNotMatch(text, /Revocation Reason/)
  })

  test('matches CertIDs hashed with SHA-256 and passes the normalised serial to the lookup', async () => {
    const seen: string[] = []
    const r = createOcspResponder(deps({ status: (s) => (seen.push(s), inventory.get(s) ?? { status: 'unknown' }) }))
    const req = request([revoked], ['-no_nonce', '-sha256'])
    const a = await r(req.der)
    assert.deepEqual(a.certStatuses, ['revoked'])
    assert.deepEqual(seen, [serialOf(revoked).replace(/^(00)+/, '')])
    assert.match(judge(a.der, req.file).text, /Hash Algorithm: sha256/)
  })

  test('answers unauthorized, unsigned, when no CertID is for our issuer', async () => {
    const a = await responder(request([foreign], ['-no_nonce'], otherCa).der)
    assert.equal(a.responseStatus, 'unauthorized')
    assert.equal(responseStatus(a.der), 6)
    assert.equal(AsnConvert.parse(a.der, OCSPResponse).responseBytes, undefined)
  })

  test('answers unknown for a foreign CertID next to one of ours', async () => {
    const ours = request([good])
    const theirs = request([foreign], ['-no_nonce'], otherCa)
    // Splice: our request with the foreign CertID appended.
    const { OCSPRequest } = await import('@peculiar/asn1-ocsp')
    const merged = AsnConvert.parse(ours.der, OCSPRequest)
    merged.tbsRequest.requestList.push(...AsnConvert.parse(theirs.der, OCSPRequest).tbsRequest.requestList)
    const a = await responder(Buffer.from(AsnConvert.serialize(merged)))
    assert.deepEqual(a.certStatuses, ['good', 'unknown'])
    // openssl accepts a delegated signer only when every CertID names its CA,
    // so the signature is checked with the signer trusted directly.
    assert.equal(judge(a.der).verified, false)
    assert.ok(judge(a.der, undefined, ca.cert, signer.cert).verified)
  })

  test('echoes the nonce, which openssl verifies, and marks the answer not cacheable', async () => {
    const req = request([good], ['-nonce'])
    const a = await responder(req.der)
    assert.equal(a.isCacheable, false)
    const { text, verified } = judge(a.der, req.file)
    assert.ok(verified, text)
    assert.match(text, /OCSP Nonce/)
    const plain = await responder(request([good]).der)
    assert.equal(plain.isCacheable, true)
    assert.doesNotMatch(judge(plain.der).text, /OCSP Nonce/)
  })

  test('answers malformedRequest for garbage, truncated and tampered requests and never throws', async () => {
    const valid = request([good, revoked]).der
    for (const bad of [Buffer.alloc(0), Buffer.from('hello'), valid.subarray(0, 20), Buffer.concat([valid, Buffer.from([0])])]) {
      const a = await responder(bad)
      assert.equal(a.responseStatus, 'malformedRequest')
      assert.equal(responseStatus(a.der), 1)
    }
    // Random single-byte corruptions: every answer is a well-formed OCSPResponse.
    for (let i = 0; i < 300; i++) {
      const t = Buffer.from(valid)
      const at = randomInt(t.length)
      t[at] = t[at]! ^ (1 << randomInt(8))
      const a = await responder(t)
      assert.ok(['successful', 'malformedRequest', 'unauthorized'].includes(a.responseStatus), a.responseStatus)
      AsnConvert.parse(a.der, OCSPResponse)
    }
  })

  test('answers internalError when the status lookup fails or breaks its contract', async () => {
    const throwing = createOcspResponder(deps({ status: () => { throw new Error('db down') } }))
    assert.equal((await throwing(request([good]).der)).responseStatus, 'internalError')
    const rejecting = createOcspResponder(deps({ status: () => Promise.reject(new Error('db down')) }))
    assert.equal((await rejecting(request([good]).der)).responseStatus, 'internalError')
    const bogus = createOcspResponder(deps({ status: () => ({ status: 'revoked', revokedAt: 0, reason: 'removeFromCRL' as 'superseded' }) }))
    assert.equal((await bogus(request([good]).der)).responseStatus, 'internalError')
  })

  test('can sign with an RSA signer and with the CA key itself', async () => {
    const rsa = pki.leaf('resp-rsa-signer', ca, { subject: '/CN=rsa-ocsp', eku: 'OCSPSigning', keyType: 'rsa' })
    const viaRsa = await respond(request([revoked]).der, deps({ signerCertPem: pem(rsa.cert), signerKey: createPrivateKey(pem(rsa.key)) }))
    assert.ok(judge(viaRsa).verified)
    assert.match(judge(viaRsa).text, /sha256WithRSAEncryption/)
    const viaCa = await respond(request([revoked]).der, deps({ signerCertPem: pem(ca.cert), signerKey: createPrivateKey(pem(ca.key)) }))
    assert.ok(judge(viaCa).verified)
  })

  test('refuses at start-up a signer without OCSPSigning, from another CA, or with the wrong key', () => {
    assert.throws(() => createOcspResponder(deps({ signerCertPem: pem(good.cert), signerKey: createPrivateKey(pem(good.key)) })), /OCSPSigning/)
    const alien = pki.leaf('resp-alien-signer', otherCa, { subject: '/CN=alien', eku: 'OCSPSigning' })
    assert.throws(() => createOcspResponder(deps({ signerCertPem: pem(alien.cert), signerKey: createPrivateKey(pem(alien.key)) })), /not issued/)
    assert.throws(() => createOcspResponder(deps({ signerKey: createPrivateKey(pem(good.key)) })), /does not match/)
    assert.throws(() => createOcspResponder(deps({ validityMs: 0 })), RangeError)
  })

  test('a response for a revoked certificate fails openssl verification when the signer is not trusted', async () => {
    const a = await responder(request([revoked]).der)
    assert.equal(judge(a.der, undefined, otherCa.cert).verified, false)
  })
})

let long: CertFiles | undefined
/** A signer valid well into the future, for tests that pin the clock in 2030. */
function longSigner(): CertFiles {
  long ??= pki.leaf('resp-long-signer', ca, { subject: '/CN=long', eku: 'OCSPSigning', notBefore: new Date(Date.UTC(2020, 0, 1)), notAfter: new Date(Date.UTC(2040, 0, 1)) })
  return long
}

function signerSki(): string {
  const text = execFileSync('openssl', ['x509', '-in', signer.cert, '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8' })
  return (/([0-9A-F]{2}(:[0-9A-F]{2})+)/.exec(text)?.[1] ?? 'missing').replace(/:/g, '')
}

function opensslTime(ms: number): string {
  const d = new Date(ms)
  const mon = d.toUTCString().slice(8, 11)
  const day = String(d.getUTCDate()).padStart(2, ' ')
  return `${mon} ${day} ${d.toISOString().slice(11, 19)} ${d.getUTCFullYear()} GMT`
}
