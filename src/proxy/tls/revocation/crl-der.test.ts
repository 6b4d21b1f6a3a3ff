/**
 * CRLs made by `openssl ca -gencrl` (the independent side) read by crl-der.ts,
 * directly and through the worker pool, including a signature check against
 * the right and the wrong key.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import { TestPki } from '../../../../test/harness/pki.js'
import { PartnerCa } from '../../../../test/integration/partner-ca.js'
import { crlDersOf, parseCrl } from './crl-der.js'
import { CrlParserPool } from './crl-parser-pool.js'

const pki = new TestPki()
const root = pki.root('crl-der-ca')
const partner = new PartnerCa(pki, root)
const alice = pki.client('crl-der-alice', root)
const bob = pki.client('crl-der-bob', root)
partner.revoke(alice.cert, 'keyCompromise')
partner.revoke(bob.cert, 'certificateHold')
const der = partner.crl({ seconds: 3600 })
const serial = (file: string) =>
  execFileSync('openssl', ['x509', '-in', file, '-noout', '-serial'], { encoding: 'utf8' }).trim().replace(/^serial=/, '').toLowerCase().replace(/^0+/, '')
const keyOf = (file: string) => createPublicKey(readFileSync(file))

const pool = new CrlParserPool({ idleMs: 1000 })
after(() => pool.close())

describe('parseCrl', () => {
  it('reads issuer, times, number and every revoked serial with its reason', () => {
    const crl = parseCrl(der)
    assert.equal(crl.issuer, 'O=Portcullis Test,CN=crl-der-ca')
    assert.ok(crl.nextUpdate !== undefined && Math.abs(crl.nextUpdate - crl.thisUpdate - 3_600_000) < 2000)
    assert.equal(crl.crlNumber, '1000')
    assert.equal(crl.unusable, undefined)
    assert.equal(crl.revokedAt.length, 2)
    assert.equal(crl.keys.length, 2 * crl.keyWidth)
    const hex = [0, 1].map((i) => Buffer.from(crl.keys.subarray(i * crl.keyWidth, (i + 1) * crl.keyWidth)).toString('hex').replace(/^0+/, ''))
    assert.deepEqual(new Set(hex), new Set([serial(alice.cert), serial(bob.cert)]))
    assert.ok(hex[0]!.padStart(40, '0') < hex[1]!.padStart(40, '0'), 'ascending')
    assert.equal(crl.reasons[hex.indexOf(serial(alice.cert))], 1)
    assert.equal(crl.reasons[hex.indexOf(serial(bob.cert))], 6)
  })

  it('reads PEM with several CRLs and refuses text without one', () => {
    const pemText = (d: Buffer) => `-----BEGIN X509 CRL-----\n${d.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END X509 CRL-----\n`
    assert.equal(crlDersOf(Buffer.from(pemText(der) + pemText(der))).length, 2)
    assert.deepEqual(crlDersOf(Buffer.from(pemText(der)))[0], der)
    assert.throws(() => crlDersOf(Buffer.from('-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n')))
  })

  it('refuses truncated or trailing bytes', () => {
    assert.throws(() => parseCrl(der.subarray(0, der.length - 1)))
    assert.throws(() => parseCrl(Buffer.concat([der, Buffer.from([0])])))
  })

  it('keeps the scope of an issuingDistributionPoint', () => {
    const crl = parseCrl(partner.crl({ extensions: 'issuingDistributionPoint=critical,@idp\n[idp]\nfullname=URI:http://crl.example/ca.crl\nonlyuser=TRUE' }))
    assert.equal(crl.unusable, undefined)
    assert.equal(crl.onlyUserCerts, true)
    assert.equal(crl.onlyCaCerts, false)
    assert.deepEqual(crl.scopeUrls, ['http://crl.example/ca.crl'])
  })

  it('marks what it cannot interpret as unusable: delta, indirect, partial, unknown critical', () => {
    const cases: [string, RegExp][] = [
      ['2.5.29.27=critical,ASN1:INTEGER:5', /delta CRL/],
      ['issuingDistributionPoint=critical,@idp\n[idp]\nindirectCRL=TRUE', /indirect CRL/],
      ['issuingDistributionPoint=critical,@idp\n[idp]\nonlysomereasons=keyCompromise', /only some revocation reasons/],
      ['1.2.3.4=critical,ASN1:NULL', /unknown critical CRL extension 1\.2\.3\.4/],
    ]
    for (const [extensions, expected] of cases) assert.match(String(parseCrl(partner.crl({ extensions })).unusable), expected, extensions)
    assert.equal(parseCrl(partner.crl({ extensions: '1.2.3.4=ASN1:NULL' })).unusable, undefined, 'a non-critical unknown extension is ignored')
  })

  it('marks a CRL without entries as usable with no serials', () => {
    const other = new TestPki()
    const ca = other.root('crl-der-empty')
    const crl = parseCrl(new PartnerCa(other, ca).crl())
    assert.equal(crl.keys.length, 0)
    assert.equal(crl.revokedAt.length, 0)
  })
})

describe('CrlParserPool', () => {
  it('parses in a worker and checks the signature against the issuer key', async () => {
    const [crl] = await pool.parse(new Uint8Array(der), keyOf(root.cert))
    assert.equal(crl!.signatureCheck, 'valid')
    assert.equal(crl!.signed, undefined)
    assert.equal(crl!.revokedAt.length, 2)
  })

  it('reports a signature by another key as invalid', async () => {
    const stranger = new TestPki().root('crl-der-stranger')
    const [crl] = await pool.parse(new Uint8Array(der), keyOf(stranger.cert))
    assert.equal(crl!.signatureCheck, 'invalid')
  })

  it('keeps the signed part when no key is given, to verify later', async () => {
    const [crl] = await pool.parse(Buffer.from(der))
    assert.ok(crl!.signed)
    assert.equal(await pool.verify(crl!.signed, keyOf(root.cert)), 'valid')
  })

  it('rejects malformed input and keeps working', async () => {
    await assert.rejects(pool.parse(Buffer.from('not a crl at all')))
    const [crl] = await pool.parse(Buffer.from(der))
    assert.equal(crl!.issuer, 'O=Portcullis Test,CN=crl-der-ca')
  })
})
