import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { TestPki } from '../../test/harness/pki.js'
import { identityOf } from '../../test/integration/test-identity.js'
import type { Identity } from './context.js'
import { clientCertValues, xfccElement } from './client-cert-headers.js'

describe('client certificate headers', { timeout: 30_000 }, () => {
  const pki = new TestPki()
  let identity: Identity
  let interPem: string

  before(() => {
    const root = pki.root('cch-root')
    const inter = pki.intermediate('cch-inter', root)
    const leaf = pki.client('cch-leaf', inter, { san: 'URI:spiffe://td.test/a,DNS:a.internal' }, [inter])
    identity = identityOf(leaf.cert, [inter.cert])
    interPem = inter.cert
  })

  test('Client-Cert is an RFC 8941 byte sequence that openssl reads back as the same certificate', () => {
    const { clientCert } = clientCertValues(identity)
    assert.match(clientCert, /^:[A-Za-z0-9+/]+={0,2}:$/)
    const derFile = join(pki.dir, 'cch-roundtrip.der')
    writeFileSync(derFile, Buffer.from(clientCert.slice(1, -1), 'base64'))
    const fp = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', derFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' })
    assert.equal(fp.trim().split('=')[1]!.replace(/:/g, '').toLowerCase(), identity.fingerprint256)
  })

  test('Client-Cert-Chain lists the intermediates (not the leaf) as byte sequences', () => {
    const { clientCertChain } = clientCertValues(identity)
    const items = String(clientCertChain).split(', ')
    assert.equal(items.length, 1)
    const derFile = join(pki.dir, 'cch-chain0.der')
    writeFileSync(derFile, Buffer.from(items[0]!.slice(1, -1), 'base64'))
    const subject = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', derFile, '-noout', '-subject'], { encoding: 'utf8' })
    assert.match(subject, /CN\s*=\s*cch-inter/)
    assert.ok(interPem)
  })

  test('values are computed once per Identity object', () => {
    assert.equal(clientCertValues(identity), clientCertValues(identity))
  })

  test('XFCC follows Envoy: Hash, quoted Subject, one URI and one DNS pair per SAN, quoting values with , ; =', () => {
    const custom: Identity = {
      ...identity,
      subject: 'CN=a,O=Acme',
      san: { dns: ['a.internal', 'b.internal'], uri: ['spiffe://td/x', 'https://x.test/p?a=b'], email: [], ip: [] },
    }
    assert.equal(
      xfccElement(custom),
      `Hash=${identity.fingerprint256};Subject="CN=a,O=Acme";URI=spiffe://td/x;URI="https://x.test/p?a=b";DNS=a.internal;DNS=b.internal`,
    )
  })

  test('XFCC leaves out values that could break out of their quotes, never the hash', () => {
    const hostile: Identity = {
      ...identity,
      subject: 'CN=x\\",By=spiffe://forged',
      san: { dns: ['ok.internal', 'bad"dns'], uri: ['spiffe://td/x\\'], email: [], ip: [] },
    }
    assert.equal(xfccElement(hostile), `Hash=${identity.fingerprint256};DNS=ok.internal`)
    const unicode: Identity = { ...identity, subject: 'CN=caf\u00e9', san: { dns: [], uri: [], email: [], ip: [] } }
    assert.equal(xfccElement(unicode), `Hash=${identity.fingerprint256}`)
  })
})
