import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { crlRegenerationReason, shouldRegenerate } from './crl-publisher.js'

const H = 3_600_000
const crl = { thisUpdate: 0, nextUpdate: 24 * H }

describe('crlRegenerationReason', () => {
  test('keeps a fresh CRL until two thirds of its validity have passed', () => {
    assert.equal(crlRegenerationReason(crl, 16 * H - 1), undefined)
    assert.equal(crlRegenerationReason(crl, 16 * H), 'refresh_due')
    assert.equal(shouldRegenerate(crl, 16 * H - 1), false)
    assert.equal(shouldRegenerate(crl, 16 * H), true)
  })

  test('honours a custom ratio and refuses an out-of-range one', () => {
    assert.equal(crlRegenerationReason(crl, 12 * H, { ratio: 0.5 }), 'refresh_due')
    assert.equal(crlRegenerationReason(crl, 12 * H - 1, { ratio: 0.5 }), undefined)
    assert.throws(() => crlRegenerationReason(crl, 0, { ratio: 0 }), RangeError)
    assert.throws(() => crlRegenerationReason(crl, 0, { ratio: 1.5 }), RangeError)
  })

  test('rebuilds when missing, expired, not yet valid or behind the latest revocation', () => {
    assert.equal(crlRegenerationReason(undefined, 0), 'missing')
    assert.equal(crlRegenerationReason(crl, 24 * H), 'expired')
    assert.equal(crlRegenerationReason(crl, -1), 'not_yet_valid')
    assert.equal(crlRegenerationReason({ ...crl, revision: 4 }, H, { latestRevision: 5 }), 'revoked')
    assert.equal(crlRegenerationReason(crl, H, { latestRevision: 1 }), 'revoked')
    assert.equal(crlRegenerationReason({ ...crl, revision: 5 }, H, { latestRevision: 5 }), undefined)
    assert.equal(shouldRegenerate({ ...crl, revision: 4 }, H, 2 / 3, 5), true)
  })
})
