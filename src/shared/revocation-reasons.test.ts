import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { crlReasonName, parseRevocationReason, revocationReasonNames, revocationReasons } from './revocation-reasons.js'

describe('revocation reasons', () => {
  test('codes are those of RFC 5280 §5.3.1', () => {
    assert.deepEqual(revocationReasons, {
      unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
      cessationOfOperation: 5, privilegeWithdrawn: 9, aACompromise: 10,
    })
    assert.deepEqual(revocationReasonNames, Object.keys(revocationReasons))
  })

  test('parses exact names only, refusing removeFromCRL, other casing and prototype keys', () => {
    assert.equal(parseRevocationReason('keyCompromise'), 'keyCompromise')
    assert.equal(parseRevocationReason('removeFromCRL'), undefined)
    assert.equal(parseRevocationReason('certificateHold'), undefined, 'revocation is final: nothing is put on hold')
    assert.equal(parseRevocationReason('keycompromise'), undefined)
    assert.equal(parseRevocationReason('toString'), undefined)
    assert.equal(parseRevocationReason('__proto__'), undefined)
  })

  test('names every RFC 5280 code another CA may use, hold included; unassigned codes are undefined', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 8, 9, 10].map(crlReasonName),
      ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'removeFromCRL', 'privilegeWithdrawn', 'aACompromise'],
    )
    for (const code of [7, 11, -1, 255]) assert.equal(crlReasonName(code), undefined, `code ${code}`)
  })
})
