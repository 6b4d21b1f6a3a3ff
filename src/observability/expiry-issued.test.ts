import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { issuedName, selectDue, type IssuedSummary } from './expiry-issued.js'

const DAY = 86_400_000
const NOW = Date.UTC(2026, 0, 1)
let seq = 0

function cert(holder: string, notBefore: number, notAfter: number, partner: string | undefined = 'acme'): IssuedSummary {
  const serial = (++seq).toString(16)
  return { serial, subject: `CN=${holder}`, partner, profile: 'partner', holder: `${partner}/${holder}`, notBefore, notAfter, fingerprint256: serial.padStart(64, '0') }
}

describe('selectDue', () => {
  test('keeps current certificates within the window, soonest first', () => {
    const a = cert('a', NOW - 80 * DAY, NOW + 10 * DAY)
    const b = cert('b', NOW - 80 * DAY, NOW + 2 * DAY)
    const c = cert('c', NOW - 10 * DAY, NOW + 80 * DAY)
    const { due, superseded } = selectDue([a, b, c], NOW, 30 * DAY)
    assert.deepEqual(due.map((d) => d.subject), ['CN=b', 'CN=a'])
    assert.equal(superseded, 0)
  })

  test('a certificate renewed by its holder (a later one that outlives it) is superseded', () => {
    const old = cert('a', NOW - 80 * DAY, NOW + 5 * DAY)
    const renewed = cert('a', NOW - DAY, NOW + 89 * DAY)
    const { due, superseded } = selectDue([old, renewed], NOW, 30 * DAY)
    assert.deepEqual(due, [])
    assert.equal(superseded, 1)
  })

  test('an earlier-issued certificate that lives longer does not supersede a later one', () => {
    const longOld = cert('a', NOW - 300 * DAY, NOW + 60 * DAY)
    const shortNew = cert('a', NOW - DAY, NOW + 5 * DAY)
    const { due, superseded } = selectDue([longOld, shortNew], NOW, 30 * DAY)
    assert.deepEqual(due.map((d) => d.serial), [shortNew.serial])
    assert.equal(superseded, 0)
  })

  test('certificates issued at the same instant do not supersede each other', () => {
    const x = cert('a', NOW - DAY, NOW + 5 * DAY)
    const y = cert('a', NOW - DAY, NOW + 6 * DAY)
    assert.equal(selectDue([x, y], NOW, 30 * DAY).due.length, 2)
  })

  test('only the same holder supersedes: another partner with the same subject does not', () => {
    const mine = cert('a', NOW - 80 * DAY, NOW + 5 * DAY, 'acme')
    const theirs = cert('a', NOW - DAY, NOW + 89 * DAY, 'globex')
    assert.deepEqual(selectDue([mine, theirs], NOW, 30 * DAY).due.map((d) => d.partner), ['acme'])
  })

  test('a window of exactly the time left includes the certificate', () => {
    const a = cert('a', NOW - DAY, NOW + 30 * DAY)
    assert.equal(selectDue([a], NOW, 30 * DAY).due.length, 1)
    assert.equal(selectDue([a], NOW, 30 * DAY - 1).due.length, 0)
  })
})

test('issuedName is the partner, or the profile in parentheses (never a valid partner name)', () => {
  assert.equal(issuedName({ partner: 'acme', profile: 'partner' }), 'acme')
  assert.equal(issuedName({ partner: undefined, profile: 'server' }), '(server)')
})
