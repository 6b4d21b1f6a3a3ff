import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose'
import { TestPki } from '../../test/harness/pki.js'
import { identityOf } from '../../test/integration/test-identity.js'
import { FixedClock } from '../shared/clock.js'
import type { Identity } from './context.js'
import { IdentityAssertionSigner, type IdentityAssertionConfig } from './identity-assertion.js'

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0)
const cfg = (over: Partial<IdentityAssertionConfig> = {}): IdentityAssertionConfig => ({
  issuer: 'https://portcullis.test',
  ttl: 60_000,
  jwksPath: '/.well-known/portcullis/jwks.json',
  ...over,
})

describe('IdentityAssertionSigner', { timeout: 60_000 }, () => {
  const pki = new TestPki()
  let spiffe: Identity
  let plain: Identity
  const source = { baseDir: pki.dir, env: {} as Record<string, string | undefined> }

  before(() => {
    const ca = pki.root('assert-ca')
    const notAfter = new Date(T0 + 365 * 86_400_000)
    spiffe = identityOf(pki.client('svc-a', ca, { san: 'URI:spiffe://td.test/ns/a/sa/orders', notAfter }).cert)
    plain = identityOf(pki.client('partner-b', ca, { notAfter }).cert)
  })

  test('signs an ES256 JWT that jose verifies against the published JWKS, with the claims upstreams rely on', async () => {
    const clock = new FixedClock(T0)
    const signer = await IdentityAssertionSigner.create(cfg(), { source, clock })
    const token = await signer.sign(spiffe, 'orders')
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(signer.jwks() as never), {
      issuer: 'https://portcullis.test',
      audience: 'orders',
      algorithms: ['ES256'],
      currentDate: new Date(T0),
    })
    assert.equal(protectedHeader.alg, 'ES256')
    assert.equal(protectedHeader.kid, signer.kid)
    assert.equal(payload.sub, 'spiffe://td.test/ns/a/sa/orders')
    assert.equal(payload.iat, T0 / 1000)
    assert.equal(payload.nbf, T0 / 1000)
    assert.equal(payload.exp, T0 / 1000 + 60)
    assert.match(String(payload.jti), /^[0-9a-f-]{36}$/)
    const expected = createHash('sha256').update(spiffe.der).digest('base64url')
    assert.deepEqual((payload as JWTPayload & { cnf: unknown }).cnf, { 'x5t#S256': expected })
  })

  test('uses the subject DN as sub when the certificate has no SPIFFE id', async () => {
    const signer = await IdentityAssertionSigner.create(cfg(), { source, clock: new FixedClock(T0) })
    const token = await signer.sign(plain, 'billing')
    const { payload } = await jwtVerify(token, createLocalJWKSet(signer.jwks() as never), { currentDate: new Date(T0) })
    assert.equal(payload.sub, plain.subject)
    assert.ok(plain.subject.includes('CN=partner-b'))
  })

  test('rejects a tampered token, a wrong audience and a token from another key', async () => {
    const signer = await IdentityAssertionSigner.create(cfg(), { source, clock: new FixedClock(T0) })
    const jwks = createLocalJWKSet(signer.jwks() as never)
    const token = await signer.sign(spiffe, 'orders')
    const [h, p, s] = token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'spiffe://td.test/ns/admin' })).toString('base64url')}.${s}`
    await assert.rejects(jwtVerify(forged, jwks, { currentDate: new Date(T0) }), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' })
    const sig = Buffer.from(s, 'base64url')
    sig[10] = sig[10]! ^ 0xff
    await assert.rejects(jwtVerify(`${h}.${p}.${sig.toString('base64url')}`, jwks, { currentDate: new Date(T0) }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    })
    await assert.rejects(jwtVerify(token, jwks, { audience: 'billing', currentDate: new Date(T0) }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' })
    const other = await IdentityAssertionSigner.create(cfg(), { source, clock: new FixedClock(T0) })
    await assert.rejects(jwtVerify(await other.sign(spiffe, 'orders'), jwks, { currentDate: new Date(T0) }), { code: 'ERR_JWKS_NO_MATCHING_KEY' })
    await assert.rejects(jwtVerify(token, jwks, { currentDate: new Date(T0 + 61_000) }), { code: 'ERR_JWT_EXPIRED' })
  })

  test('reuses a token until 20% of its lifetime is left, per certificate and audience', async () => {
    const clock = new FixedClock(T0)
    const signer = await IdentityAssertionSigner.create(cfg({ ttl: 100_000 }), { source, clock })
    const first = signer.sign(spiffe, 'orders')
    assert.ok(first instanceof Promise, 'the first call signs')
    assert.equal(signer.sign(spiffe, 'orders'), first, 'a concurrent caller shares the pending signature')
    const token = await first
    clock.advance(79_000)
    assert.equal(signer.sign(spiffe, 'orders'), token, 'cached token returned synchronously')
    const otherAudience = await signer.sign(spiffe, 'billing')
    assert.notEqual(otherAudience, token)
    const otherCert = await signer.sign(plain, 'orders')
    assert.notEqual(otherCert, token)
    clock.advance(1_000)
    const renewed = signer.sign(spiffe, 'orders')
    assert.ok(renewed instanceof Promise, 'at 80% of the lifetime a new token is signed')
    const next = await renewed
    assert.notEqual(next, token)
    const { payload } = await jwtVerify(next, createLocalJWKSet(signer.jwks() as never), { currentDate: new Date(clock.now()) })
    assert.equal(payload.iat, (T0 + 80_000) / 1000)
  })

  test('re-signs when the clock moved back before the cached token was issued', async () => {
    const clock = new FixedClock(T0)
    const signer = await IdentityAssertionSigner.create(cfg(), { source, clock })
    const token = await signer.sign(spiffe, 'orders')
    clock.set(T0 - 5_000)
    const again = await signer.sign(spiffe, 'orders')
    assert.notEqual(again, token)
  })

  test('never issues a token that outlives the certificate', async () => {
    const clock = new FixedClock(T0)
    const signer = await IdentityAssertionSigner.create(cfg({ ttl: 3_600_000 }), { source, clock })
    const shortLived = { ...spiffe, fingerprint256: 'ab'.repeat(32), notAfter: T0 + 90_000 }
    const token = await signer.sign(shortLived, 'orders')
    const { payload } = await jwtVerify(token, createLocalJWKSet(signer.jwks() as never), { currentDate: new Date(T0) })
    assert.equal(payload.exp, (T0 + 90_000) / 1000)
  })

  test('publishes kid as the RFC 7638 thumbprint of the public key', async () => {
    const signer = await IdentityAssertionSigner.create(cfg(), { source, clock: new FixedClock(T0) })
    const [key] = signer.jwks().keys
    assert.ok(key)
    assert.equal(signer.jwks().keys.length, 1)
    const canonical = JSON.stringify({ crv: key.crv, kty: key.kty, x: key.x, y: key.y })
    assert.equal(key.kid, createHash('sha256').update(canonical).digest('base64url'))
    assert.deepEqual(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'], 'no private member (d) is published')
    const token = await signer.sign(spiffe, 'orders')
    assert.equal(decodeProtectedHeader(token).kid, key.kid)
  })

  test('keeps a generated key across a reload when given the previous signer', async () => {
    const clock = new FixedClock(T0)
    const first = await IdentityAssertionSigner.create(cfg(), { source, clock })
    const reloaded = await IdentityAssertionSigner.create(cfg({ issuer: 'https://other' }), { source, clock, previous: first })
    assert.equal(reloaded.kid, first.kid)
    const fresh = await IdentityAssertionSigner.create(cfg(), { source, clock })
    assert.notEqual(fresh.kid, first.kid)
  })

  describe('with a configured key made by openssl', () => {
    let keyFile: string
    let pubFile: string
    let encryptedFile: string
    before(() => {
      keyFile = join(pki.dir, 'assertion.key')
      pubFile = join(pki.dir, 'assertion.pub')
      encryptedFile = join(pki.dir, 'assertion.enc.key')
      execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile])
      execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', pubFile])
      execFileSync('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', keyFile, '-out', encryptedFile, '-passout', 'pass:s3cret'])
    })

    test('signs with it, and openssl verifies the signature with its own public key', async () => {
      const signer = await IdentityAssertionSigner.create(cfg({ key: { file: 'assertion.key' } }), { source, clock: new FixedClock(T0) })
      const token = await signer.sign(spiffe, 'orders')
      const [h, p, s] = token.split('.') as [string, string, string]
      const raw = Buffer.from(s, 'base64url')
      assert.equal(raw.length, 64)
      writeFileSync(join(pki.dir, 'jwt.data'), `${h}.${p}`)
      writeFileSync(join(pki.dir, 'jwt.sig'), rawEcdsaToDer(raw))
      const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', join(pki.dir, 'jwt.sig'), join(pki.dir, 'jwt.data')], {
        encoding: 'utf8',
      })
      assert.match(out, /Verified OK/)
    })

    test('reads an encrypted key with its passphrase and refuses a wrong one', async () => {
      const plainSigner = await IdentityAssertionSigner.create(cfg({ key: { file: 'assertion.key' } }), { source, clock: new FixedClock(T0) })
      const withPass = await IdentityAssertionSigner.create(cfg({ key: { file: 'assertion.enc.key' }, passphrase: { env: 'PASS' } }), {
        source: { ...source, env: { PASS: 's3cret' } },
        clock: new FixedClock(T0),
      })
      assert.equal(withPass.kid, plainSigner.kid)
      await assert.rejects(
        IdentityAssertionSigner.create(cfg({ key: { file: 'assertion.enc.key' }, passphrase: { env: 'PASS' } }), {
          source: { ...source, env: { PASS: 'wrong' } },
          clock: new FixedClock(T0),
        }),
        (err: Error) => err.message.startsWith('identityAssertion.key: cannot read') && !err.message.includes('BEGIN'),
      )
    })

    test('refuses an RSA key and a P-384 key', async () => {
      const rsa = join(pki.dir, 'assertion-rsa.key')
      const p384 = join(pki.dir, 'assertion-p384.key')
      execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa])
      execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', p384])
      for (const file of [rsa, p384]) {
        await assert.rejects(IdentityAssertionSigner.create(cfg({ key: { file } }), { source, clock: new FixedClock(T0) }), /EC P-256/)
      }
    })
  })
})

/** JOSE's r||s signature as the DER ECDSA-Sig-Value openssl expects. */
function rawEcdsaToDer(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let i = 0
    while (i < b.length - 1 && b[i] === 0) i++
    let v = b.subarray(i)
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v])
    return Buffer.concat([Buffer.from([0x02, v.length]), v])
  }
  const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}
