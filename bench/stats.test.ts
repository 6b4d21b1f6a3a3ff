import assert from 'node:assert/strict'
import { test } from 'node:test'
import { percentile, summarize } from './stats.js'

test('percentile is nearest-rank: p50 of 1..10 is 5, p99 and p99.9 are the largest', () => {
  const sorted = Float64Array.from({ length: 10 }, (_, i) => i + 1)
  assert.equal(percentile(sorted, 50), 5)
  assert.equal(percentile(sorted, 99), 10)
  assert.equal(percentile(sorted, 99.9), 10)
  assert.equal(percentile(sorted, 0), 1)
})

test('percentile p99.9 of 10,000 values picks the 9,990th', () => {
  const sorted = Float64Array.from({ length: 10_000 }, (_, i) => i + 1)
  assert.equal(percentile(sorted, 99.9), 9990)
  assert.equal(percentile(sorted, 99), 9900)
})

test('percentile of nothing is NaN', () => {
  assert.ok(Number.isNaN(percentile([], 50)))
})

test('summarize gives min, median and max, and the middle mean for an even count', () => {
  assert.deepEqual(summarize([30, 10, 20]), { min: 10, median: 20, max: 30, runs: 3 })
  assert.deepEqual(summarize([4, 1, 3, 2]), { min: 1, median: 2.5, max: 4, runs: 4 })
})

test('summarize leaves failed runs (NaN) out, and has nothing to say about none', () => {
  assert.deepEqual(summarize([Number.NaN, 5, 7]), { min: 5, median: 6, max: 7, runs: 2 })
  assert.equal(summarize([Number.NaN]), undefined)
})
