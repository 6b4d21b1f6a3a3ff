import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CertificateSightings } from './certificate-sightings.js'

const OURS = 'a'.repeat(64)
const THEIRS = 'b'.repeat(64)
const id = (serialNumber: string, issuerFingerprint256: string | undefined = OURS) => ({ serialNumber, issuerFingerprint256 })

test('notes only certificates of watched issuers, one entry per certificate with its latest time', () => {
  const s = new CertificateSightings()
  s.record(id('0A1B'), 1) // before watch: ignored
  s.watch(OURS.toUpperCase())
  s.record(id('0A1B'), 5)
  s.record(id('a1b'), 9) // the same certificate, spelled differently
  s.record(id('A1B'), 7) // older: ignored
  s.record(id('c2', THEIRS), 9)
  s.record({ serialNumber: 'd3', issuerFingerprint256: undefined }, 9) // issuer unknown
  assert.deepEqual(s.take(), { sightings: [{ serial: 'a1b', issuerFingerprint256: OURS, at: 9 }], dropped: 0 })
  assert.deepEqual(s.take(), { sightings: [], dropped: 0 }, 'take empties it')
})

test('is bounded: new certificates past the bound are dropped and counted; known ones keep updating', () => {
  const s = new CertificateSightings(2)
  s.watch(OURS)
  s.record(id('1'), 1)
  s.record(id('2'), 1)
  s.record(id('3'), 1)
  s.record(id('4'), 1)
  s.record(id('1'), 8)
  const { sightings, dropped } = s.take()
  assert.equal(dropped, 2)
  assert.deepEqual(sightings.map((x) => [x.serial, x.at]), [['1', 8], ['2', 1]])
})

test('restore puts back a failed flush without undoing newer sightings', () => {
  const s = new CertificateSightings()
  s.watch(OURS)
  s.record(id('1'), 5)
  s.record(id('2'), 5)
  const { sightings } = s.take()
  s.record(id('1'), 9) // seen again while the write was failing
  s.restore(sightings)
  assert.deepEqual(s.take().sightings.map((x) => [x.serial, x.at]), [['1', 9], ['2', 5]])
})
