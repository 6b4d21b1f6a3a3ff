import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import { OCSPRequest, id_pkix_ocsp_nonce, type Version } from '@peculiar/asn1-ocsp'
import { Extension } from '@peculiar/asn1-x509'
import { TestPki } from '../../test/harness/pki.js'
import { parseOcspRequest } from './ocsp-request.js'

const pki = new TestPki()
const ca = pki.root('req-ca')
const a = pki.client('req-a', ca)
const b = pki.client('req-b', ca)

function opensslRequest(name: string, args: string[]): Buffer {
  const out = join(pki.dir, `${name}.der`)
  execFileSync('openssl', ['ocsp', '-issuer', ca.cert, ...args, '-reqout', out], { stdio: 'ignore' })
  return readFileSync(out)
}

/** Re-encodes an openssl request with its extensions replaced (to build requests openssl will not make). */
function withExtensions(der: Buffer, exts: Extension[]): Buffer {
  const req = AsnConvert.parse(der, OCSPRequest)
  req.tbsRequest.requestExtensions = exts
  return Buffer.from(AsnConvert.serialize(req))
}

function nonceExt(len: number, critical = false): Extension {
  const inner = AsnConvert.serialize(new OctetString(new Uint8Array(len).fill(7)))
  return new Extension({ extnID: id_pkix_ocsp_nonce, critical, extnValue: new OctetString(inner) })
}

const plain = opensslRequest('plain', ['-cert', a.cert, '-cert', b.cert, '-no_nonce'])

describe('parseOcspRequest', () => {
  test('reads every CertID and the nonce of an openssl request', () => {
    const withNonce = opensslRequest('nonce', ['-cert', a.cert, '-nonce'])
    const parsed = parseOcspRequest(withNonce)
    assert.notEqual(parsed, 'malformed')
    if (parsed === 'malformed') return
    assert.equal(parsed.certIds.length, 1)
    assert.equal(parsed.nonce?.extnID, id_pkix_ocsp_nonce)
    const two = parseOcspRequest(plain)
    assert.ok(two !== 'malformed' && two.certIds.length === 2 && two.nonce === undefined)
  })

  test('accepts nonces of 1 and 32 octets and refuses 0 and 33 (RFC 8954)', () => {
    assert.notEqual(parseOcspRequest(withExtensions(plain, [nonceExt(1)])), 'malformed')
    assert.notEqual(parseOcspRequest(withExtensions(plain, [nonceExt(32)])), 'malformed')
    assert.equal(parseOcspRequest(withExtensions(plain, [nonceExt(0)])), 'malformed')
    assert.equal(parseOcspRequest(withExtensions(plain, [nonceExt(33)])), 'malformed')
  })

  test('accepts a legacy raw nonce within the size limit', () => {
    const raw = new Extension({ extnID: id_pkix_ocsp_nonce, critical: false, extnValue: new OctetString(new Uint8Array(16).fill(1)) })
    assert.notEqual(parseOcspRequest(withExtensions(plain, [raw])), 'malformed')
    const rawLong = new Extension({ extnID: id_pkix_ocsp_nonce, critical: false, extnValue: new OctetString(new Uint8Array(40).fill(1)) })
    assert.equal(parseOcspRequest(withExtensions(plain, [rawLong])), 'malformed')
  })

  test('refuses duplicate extensions and unknown critical ones, ignores unknown non-critical ones', () => {
    assert.equal(parseOcspRequest(withExtensions(plain, [nonceExt(16), nonceExt(16)])), 'malformed')
    const unknown = (critical: boolean) => new Extension({ extnID: '1.2.3.4', critical, extnValue: new OctetString(new Uint8Array([5, 0])) })
    assert.equal(parseOcspRequest(withExtensions(plain, [unknown(true)])), 'malformed')
    assert.notEqual(parseOcspRequest(withExtensions(plain, [unknown(false)])), 'malformed')
  })

  test('refuses more CertIDs than the limit', () => {
    assert.equal(parseOcspRequest(plain, 1), 'malformed')
    assert.notEqual(parseOcspRequest(plain, 2), 'malformed')
  })

  test('refuses trailing bytes, truncation, indefinite length, an empty list and non-OCSP DER', () => {
    assert.equal(parseOcspRequest(Buffer.concat([plain, Buffer.from([0])])), 'malformed')
    assert.equal(parseOcspRequest(plain.subarray(0, plain.length - 1)), 'malformed')
    assert.equal(parseOcspRequest(new Uint8Array(0)), 'malformed')
    assert.equal(parseOcspRequest(Buffer.from([0x30, 0x80, 0x00, 0x00])), 'malformed')
    assert.equal(parseOcspRequest(Buffer.from('3004' + '3002' + '3000', 'hex')), 'malformed')
    assert.equal(parseOcspRequest(Buffer.from(readFileSync(ca.cert, 'utf8').split('\n').slice(1, -2).join(''), 'base64')), 'malformed')
  })

  test('refuses a version other than v1', () => {
    const req = AsnConvert.parse(plain, OCSPRequest)
    req.tbsRequest.version = 1 as Version
    assert.equal(parseOcspRequest(Buffer.from(AsnConvert.serialize(req))), 'malformed')
  })
})
