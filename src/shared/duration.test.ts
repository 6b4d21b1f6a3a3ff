import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseDuration, parseSize } from './duration.js'

test('parses durations into milliseconds', () => {
  assert.equal(parseDuration('250ms'), 250)
  assert.equal(parseDuration('10s'), 10_000)
  assert.equal(parseDuration('1.5m'), 90_000)
  assert.equal(parseDuration('2h'), 7_200_000)
  assert.equal(parseDuration('30d'), 2_592_000_000)
})

test('rejects malformed durations', () => {
  for (const bad of ['', '10', 's', '-1s', '1 w', '1e3s']) assert.equal(parseDuration(bad), undefined, bad)
})

test('parses sizes into bytes', () => {
  assert.equal(parseSize('512'), 512)
  assert.equal(parseSize('16KiB'), 16384)
  assert.equal(parseSize('1MiB'), 1048576)
  assert.equal(parseSize('10MB'), 10_000_000)
  assert.equal(parseSize('1 GiB'), 1024 ** 3)
  assert.equal(parseSize('1TB'), undefined)
})
