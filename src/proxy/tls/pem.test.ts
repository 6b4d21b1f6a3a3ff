import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PemError, splitPem } from './pem.js'

const block = (label: string, body = 'AAEC') => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`

describe('splitPem', { timeout: 5_000 }, () => {
  it('splits blocks in order and ignores text between them', () => {
    const blocks = splitPem(`Bag Attributes: x\n${block('CERTIFICATE')}subject=CN=x\n${block('PRIVATE KEY', 'AwQF')}`)
    assert.deepEqual(blocks.map((b) => b.label), ['CERTIFICATE', 'PRIVATE KEY'])
    assert.deepEqual([...blocks[1]!.der], [3, 4, 5])
    assert.equal(blocks[0]!.text, block('CERTIFICATE').trimEnd())
  })

  it('refuses a BEGIN without its END, or with another label', () => {
    assert.throws(() => splitPem('-----BEGIN CERTIFICATE-----\nAAEC\n'), PemError)
    assert.throws(() => splitPem('-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----\n'), PemError)
    assert.throws(() => splitPem(`-----BEGIN CERTIFICATE-----\nAAEC\n${block('CERTIFICATE')}`), PemError)
  })

  it('refuses bodies that are not base64', () => {
    assert.throws(() => splitPem(block('CERTIFICATE', 'AA*C')), PemError)
    assert.throws(() => splitPem(block('CERTIFICATE', 'AAE')), PemError)
    assert.throws(() => splitPem(block('CERTIFICATE', '')), PemError)
  })

  it('returns no blocks for text without PEM', () => {
    assert.deepEqual(splitPem('hello'), [])
  })
})
