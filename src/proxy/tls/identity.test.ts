import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { describe, it } from 'node:test'
import { TestPki, pem } from '../../../test/harness/pki.js'
import { readCertFields } from './cert-fields.js'
import { identityFromCertificate, isSpiffeId } from './identity.js'

const der = (path: string) => new X509Certificate(pem(path)).raw
const opensslFingerprint = (path: string) =>
  execFileSync('openssl', ['x509', '-in', path, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().split('=')[1]!.replace(/:/g, '').toLowerCase()

describe('isSpiffeId (SPIFFE-ID spec, section 2)', { timeout: 5_000 }, () => {
  it('accepts trust domains with and without paths', () => {
    for (const id of ['spiffe://example.org', 'spiffe://example.org/ns/prod/sa/orders', 'spiffe://a-b_c.d/x.y-z_W']) assert.equal(isSpiffeId(id), true, id)
  })
  it('refuses what the spec forbids', () => {
    for (const id of [
      'spiffe://Example.org/a', // trust domain must be lowercase
      'spiffe://example.org/', // no trailing slash
      'spiffe://example.org/a//b', // no empty segment
      'spiffe://example.org/a/../b', // no dot segments
      'spiffe://example.org/./b',
      'spiffe://example.org:8443/a', // no port
      'spiffe://user@example.org/a', // no user info
      'spiffe://example.org/a?x=1', // no query
      'spiffe://example.org/a#f', // no fragment
      'spiffe:///a', // trust domain required
      'SPIFFE://example.org/a', // scheme is lowercase
      'https://example.org/a',
    ]) {
      assert.equal(isSpiffeId(id), false, id)
    }
  })
})

describe('identityFromCertificate', { timeout: 20_000 }, () => {
  const pki = new TestPki()
  const root = pki.root('id-root')
  const inter = pki.intermediate('id-int', root)
  const build = (path: string) => {
    const d = der(path)
    return identityFromCertificate(d, readCertFields(d), { issuerDer: der(inter.cert), intermediatesDer: [der(inter.cert)] })
  }

  it('takes the one spiffe URI SAN as spiffeId, beside other URIs', () => {
    const c = pki.client('one-spiffe', inter, { san: 'URI:spiffe://acme.test/ns/a,URI:https://acme.test/x' })
    const id = build(c.cert)
    assert.equal(id.spiffeId, 'spiffe://acme.test/ns/a')
    assert.deepEqual(id.san.uri, ['spiffe://acme.test/ns/a', 'https://acme.test/x'])
  })

  it('has no spiffeId when there are two spiffe URIs or a malformed one', () => {
    assert.equal(build(pki.client('two-spiffe', inter, { san: 'URI:spiffe://acme.test/a,URI:spiffe://acme.test/b' }).cert).spiffeId, undefined)
    assert.equal(build(pki.client('bad-spiffe', inter, { san: 'URI:spiffe://acme.test/a/../b' }).cert).spiffeId, undefined)
  })

  it('fingerprints leaf and issuer as openssl does and keeps the DER', () => {
    const c = pki.client('fp', inter, { san: 'DNS:fp.example' })
    const id = build(c.cert)
    assert.equal(id.fingerprint256, opensslFingerprint(c.cert))
    assert.equal(id.issuerFingerprint256, opensslFingerprint(inter.cert))
    assert.deepEqual(id.der, der(c.cert))
    assert.equal(id.chainDer.length, 1)
    assert.ok(Object.isFrozen(id) && Object.isFrozen(id.san) && Object.isFrozen(id.san.dns) && Object.isFrozen(id.subjectFields))
  })
})
