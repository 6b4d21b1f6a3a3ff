/**
 * Lookups in the sorted serial table and the scope a CRL declares, on CRLs
 * made by `openssl ca -gencrl` (entries written straight to the CA's index,
 * as `openssl ca -revoke` writes them).
 */
import assert from 'node:assert/strict'
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { TestPki } from '../../../../test/harness/pki.js'
import { PartnerCa } from '../../../../test/integration/partner-ca.js'
import { parseCrl, type ParsedCrl } from './crl-der.js'
import { RevocationList } from './revocation-list.js'

const pki = new TestPki()
const ca = pki.root('list-ca')
const partner = new PartnerCa(pki, ca)
const serials = ['01', '00FF', '0A0B0C', '7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', '1234']
appendFileSync(
  join(pki.dir, 'list-ca.db', 'index.txt'),
  serials.map((s, i) => `R\t351231000000Z\t240101000000Z${i === 0 ? ',keyCompromise' : ''}\t${s}\tunknown\t/CN=s${i}\n`).join(''),
)
const crl = parseCrl(partner.crl())

/** The list the worker's reply would make, with some fields changed. */
function asList(over: Partial<ParsedCrl> = {}, origin = 'test.crl') {
  const { tbs: _t, signatureAlgorithm: _a, signature: _s, ...rest } = { ...crl, ...over }
  return RevocationList.from({ ...rest, signatureCheck: 'valid', signed: undefined }, origin)
}

describe('RevocationList', () => {
  it('finds every listed serial in canonical form, with its date and reason', () => {
    const list = asList()
    assert.equal(list.size, 5)
    assert.deepEqual(list.find('1'), { revokedAt: Date.UTC(2024, 0, 1), reason: 'keyCompromise' })
    assert.equal(list.find('ff')?.reason, 'unspecified')
    for (const s of ['a0b0c', '7fffffffffffffffffffffffffffffffffffffff', '1234']) assert.ok(list.find(s), s)
  })

  it('does not find serials that are not listed, shorter or longer than any key', () => {
    const list = asList()
    for (const s of ['0', '2', 'fe', '100', '1235', 'a0b0d', '80000000000000000000000000000000000000000', 'ffffffffffffffffffffffffffffffffffffffffff']) {
      assert.equal(list.find(s), undefined, s)
    }
  })

  it('is the same issue only as a list with the same times, number and size', () => {
    assert.ok(asList().isSameIssue(asList({}, 'other origin')))
    assert.equal(asList().isSameIssue(undefined), false)
    assert.equal(asList().isSameIssue(asList({ thisUpdate: 0 })), false)
    assert.equal(asList().isSameIssue(asList({ crlNumber: 'ff' })), false)
  })

  it('keeps a CRL with issuingDistributionPoint to its scope', () => {
    const scoped = (over: Partial<ParsedCrl>) => asList(over, 'idp.crl')
    const leaf = { isCa: false, crlUrls: ['http://crl.example/a.crl'] }
    const ca = { isCa: true, crlUrls: [] }
    assert.match(String(scoped({ onlyUserCerts: true }).scopeProblem(ca)), /end-entity certificates only/)
    assert.equal(scoped({ onlyUserCerts: true }).scopeProblem(leaf), undefined)
    assert.match(String(scoped({ onlyCaCerts: true }).scopeProblem(leaf)), /CA certificates only/)
    assert.match(String(scoped({ scopeUrls: ['http://crl.example/b.crl'] }).scopeProblem(leaf)), /does not name/)
    assert.equal(scoped({ scopeUrls: ['http://crl.example/a.crl'] }).scopeProblem(leaf), undefined)
  })
})
