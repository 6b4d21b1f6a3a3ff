import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DEFAULT_RENEWAL_RATIO, renewalDue } from './renewal.js'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 1)
/** A 30-day certificate: two thirds is day 20. */
const cert = { notBefore: T0, notAfter: T0 + 30 * DAY }

describe('renewalDue', () => {
  test('is not due right after issue', () => {
    assert.equal(renewalDue(cert, T0), false)
    assert.equal(renewalDue(cert, T0 + DAY), false)
  })

  test('is not due one millisecond before two thirds of the lifetime', () => {
    assert.equal(renewalDue(cert, T0 + 20 * DAY - 1), false)
  })

  test('is due at exactly two thirds of the lifetime and after', () => {
    assert.equal(renewalDue(cert, T0 + 20 * DAY), true)
    assert.equal(renewalDue(cert, T0 + 25 * DAY), true)
  })

  test('is due when expired, at notAfter and later', () => {
    assert.equal(renewalDue(cert, T0 + 30 * DAY), true)
    assert.equal(renewalDue(cert, T0 + 400 * DAY), true)
  })

  test('is due when not yet valid (a clock step back, or a certificate from the future)', () => {
    assert.equal(renewalDue(cert, T0 - 1), true)
  })

  test('is due for an empty or inverted window', () => {
    assert.equal(renewalDue({ notBefore: T0, notAfter: T0 }, T0), true)
    assert.equal(renewalDue({ notBefore: T0 + DAY, notAfter: T0 }, T0), true)
  })

  test('honours a custom ratio', () => {
    assert.equal(renewalDue(cert, T0 + 14 * DAY, 0.5), false)
    assert.equal(renewalDue(cert, T0 + 15 * DAY, 0.5), true)
    assert.equal(renewalDue(cert, T0 + 30 * DAY - 1, 1), false)
  })

  test('defaults to two thirds', () => {
    assert.equal(DEFAULT_RENEWAL_RATIO, 2 / 3)
  })

  test('rejects a ratio outside (0, 1] and non-finite times', () => {
    assert.throws(() => renewalDue(cert, T0, 0), RangeError)
    assert.throws(() => renewalDue(cert, T0, 1.5), RangeError)
    assert.throws(() => renewalDue(cert, T0, Number.NaN), RangeError)
    assert.throws(() => renewalDue(cert, Number.NaN), RangeError)
  })
})
