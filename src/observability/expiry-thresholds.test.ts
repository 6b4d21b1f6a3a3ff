import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EXPIRED_STEP, expiryStep, formatThreshold } from './expiry-thresholds.js'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 1)
const thresholds = [30 * DAY, 7 * DAY, DAY]

/** Plays a certificate through the given instants as the monitor does: act on the announcement, remember what was reached. */
function announcements(notAfter: number, instants: readonly number[], list = thresholds): string[] {
  const announced = new Set<number>()
  const said: string[] = []
  for (const now of instants) {
    const { announce, reached } = expiryStep(notAfter, now, list, announced)
    if (!announce) continue
    said.push(announce.event === 'expired' ? 'expired' : formatThreshold(announce.thresholdMs))
    for (const step of reached) announced.add(step)
  }
  return said
}

describe('expiryStep', () => {
  test('announces nothing while more time is left than the largest threshold', () => {
    assert.deepEqual(expiryStep(T0 + 31 * DAY, T0, thresholds, new Set()), { announce: undefined, reached: [] })
    assert.equal(expiryStep(T0 + 30 * DAY + 1, T0, thresholds, new Set()).announce, undefined)
  })

  test('a threshold is reached at exactly that much time left', () => {
    assert.deepEqual(expiryStep(T0 + 30 * DAY, T0, thresholds, new Set()).announce, { event: 'expiring', thresholdMs: 30 * DAY })
  })

  test('announces each threshold once as time passes, then the expiry', () => {
    const notAfter = T0 + 40 * DAY
    const hourly = Array.from({ length: 45 * 24 }, (_, h) => T0 + h * 3_600_000)
    assert.deepEqual(announcements(notAfter, hourly), ['30d', '7d', '1d', 'expired'])
  })

  test('a certificate first seen inside several thresholds gets only the most urgent one, and the skipped ones never come', () => {
    const notAfter = T0 + 5 * DAY
    const first = expiryStep(notAfter, T0, thresholds, new Set())
    assert.deepEqual(first.announce, { event: 'expiring', thresholdMs: 7 * DAY })
    assert.deepEqual([...first.reached].sort((a, b) => a - b), [7 * DAY, 30 * DAY])
    assert.deepEqual(announcements(notAfter, [T0, T0 + DAY, T0 + 4.5 * DAY, T0 + 6 * DAY]), ['7d', '1d', 'expired'])
  })

  test('an already expired certificate is announced as expired once, whatever the thresholds', () => {
    const d = expiryStep(T0 - 1, T0, thresholds, new Set())
    assert.deepEqual(d.announce, { event: 'expired' })
    assert.ok(d.reached.includes(EXPIRED_STEP), 'expired is recorded as reached')
    assert.deepEqual(announcements(T0 - 1, [T0, T0 + DAY]), ['expired'])
    assert.deepEqual(expiryStep(T0 - 1, T0, [], new Set()).announce, { event: 'expired' }, 'even with no threshold')
  })

  test('notAfter itself is still valid: expired only after it', () => {
    assert.deepEqual(expiryStep(T0, T0, thresholds, new Set([30 * DAY, 7 * DAY])).announce, { event: 'expiring', thresholdMs: DAY })
    assert.deepEqual(expiryStep(T0, T0 + 1, thresholds, new Set([30 * DAY, 7 * DAY, DAY])).announce, { event: 'expired' })
  })

  test('a threshold added later is announced only when more urgent than what was said', () => {
    const notAfter = T0 + 10 * DAY
    const announced = new Set([30 * DAY])
    const withFourteen = [30 * DAY, 14 * DAY, 7 * DAY, DAY]
    assert.deepEqual(expiryStep(notAfter, T0, withFourteen, announced).announce, { event: 'expiring', thresholdMs: 14 * DAY })
    const later = new Set([30 * DAY, 7 * DAY])
    assert.equal(expiryStep(T0 + 6 * DAY, T0, withFourteen, later).announce, undefined, '7d was said; 14d is less urgent')
  })

  test('the order of the thresholds does not matter', () => {
    const notAfter = T0 + 40 * DAY
    const hourly = Array.from({ length: 45 * 24 }, (_, h) => T0 + h * 3_600_000)
    assert.deepEqual(announcements(notAfter, hourly, [DAY, 30 * DAY, 7 * DAY]), ['30d', '7d', '1d', 'expired'])
  })

  test('a clock stepping back does not announce again', () => {
    const notAfter = T0 + 20 * DAY
    assert.deepEqual(announcements(notAfter, [T0, T0 - 20 * DAY, T0 + DAY]), ['30d'])
  })
})

describe('formatThreshold', () => {
  test('writes the largest whole unit, as config does', () => {
    assert.equal(formatThreshold(30 * DAY), '30d')
    assert.equal(formatThreshold(36 * 3_600_000), '36h')
    assert.equal(formatThreshold(90 * 60_000), '90m')
    assert.equal(formatThreshold(1500), '1500ms')
    assert.equal(formatThreshold(45_000), '45s')
  })
})
